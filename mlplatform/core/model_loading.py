"""A registered model loaded back from its downloaded MLflow folder, so that a crafted model cannot
run code, or read or load a file of the host, where it is loaded:

- its file is the skops file inside its own folder (never pickle, never a path that resolves
  elsewhere, symlinks included);
- it holds only the types of the platform's model families (`models.SKOPS_TRUSTED_FORMS`), never
  the trusted-type list written beside the model, each in the one form skops writes it in, so no
  trusted type is called with arguments from the file;
- what loads is a model of the platform (a family's pipeline, the soft vote, or the calibrated,
  thresholded model training registers), not any other object.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections import defaultdict
from typing import Any

from mlplatform.core.models import SKOPS_TRUSTED_FORMS

# The one callable a partial may wrap: HistGradientBoosting's numeric preprocessor. check_array only
# validates and converts an array, whatever its keyword arguments.
_PARTIAL_FUNCTION = "sklearn.utils.validation.check_array"


class UntrustedModelError(ValueError):
    """A registered model asks for pickle, lies outside its folder, holds a type or callable this
    code does not trust, or is not a model of the platform's families."""


def load_trusted_skops(model_uri: str, local: str, flavor: dict[str, Any]) -> Any:
    """The model of a downloaded MLflow model folder (`local`, its sklearn `flavor`), refused with
    `UntrustedModelError` unless it passes every rule of this module. `model_uri` names it in the
    errors."""
    import skops.io

    serialization = flavor.get("serialization_format")
    if serialization != "skops":
        raise UntrustedModelError(
            f"{model_uri}: stored as '{serialization}'; only the skops format is loaded "
            "(pickle can run code on load)"
        )
    path = _model_file(model_uri, local, flavor.get("pickled_model", "model.skops"))
    untrusted = sorted(set(skops.io.get_untrusted_types(file=path)) - set(SKOPS_TRUSTED_FORMS))
    if untrusted:
        raise UntrustedModelError(
            f"{model_uri}: holds types this platform does not trust: {untrusted}"
        )
    with zipfile.ZipFile(path) as archive:
        schema = json.loads(archive.read("schema.json"))
    _refuse_untrusted_forms(model_uri, schema)
    model = skops.io.load(path, trusted=list(SKOPS_TRUSTED_FORMS))
    if not isinstance(model, _platform_model_types()):
        kind = type(model)
        raise UntrustedModelError(
            f"{model_uri}: holds a {kind.__module__}.{kind.__qualname__}, not a model of the "
            "platform's families"
        )
    return model


def _model_file(model_uri: str, local: str, pickled_model: Any) -> str:
    """The model's file: `pickled_model` resolved (symlinks too) inside the folder `local`."""
    folder = os.path.realpath(local)
    if isinstance(pickled_model, str) and pickled_model:
        path = os.path.realpath(os.path.join(folder, pickled_model))
        if os.path.commonpath([folder, path]) == folder and path != folder:
            return path
    raise UntrustedModelError(
        f"{model_uri}: its model file {pickled_model!r} is not inside the model's own folder"
    )


def _refuse_untrusted_forms(model_uri: str, schema: dict[str, Any]) -> None:
    """Refuse a skops `schema` (its schema.json) in which a type of `SKOPS_TRUSTED_FORMS` is written
    in another form, a partial wraps anything but check_array, or check_array is anywhere but in
    such a partial. Read before loading: a form decides what runs while the file loads."""
    # skops builds each `__id__` once and hands that object to every place naming the id, whatever
    # the state written there: the check_array a partial holds must not be claimed elsewhere, nor
    # its place taken by another object under its id.
    partial_function_ids: dict[int, set[bool]] = defaultdict(set)

    def visit(state: Any, partial_function: bool = False) -> None:
        if isinstance(state, list):
            for item in state:
                visit(item)
            return
        if not isinstance(state, dict):
            return
        loader = state.get("__loader__")
        if loader is not None:
            name = f"{state.get('__module__')}.{state.get('__class__')}"
            form = SKOPS_TRUSTED_FORMS.get(name)
            if form is not None and form != loader:
                raise UntrustedModelError(
                    f"{model_uri}: holds {name} as {loader}; the platform's models hold it only "
                    f"as {form} (the form decides what runs at load)"
                )
            if (name == _PARTIAL_FUNCTION) != partial_function:
                raise UntrustedModelError(
                    f"{model_uri}: holds {name} where this platform trusts only "
                    f"functools.partial({_PARTIAL_FUNCTION}, ...) (HistGradientBoosting's own)"
                )
            if "__id__" in state:
                partial_function_ids[state["__id__"]].add(partial_function)
            if loader == "PartialNode":
                content = state.get("content") or {}
                visit(content.get("func"), partial_function=True)
                for part in ("args", "kwds", "namespace"):
                    visit(content.get(part))
                return
        for value in state.values():
            visit(value)

    visit(schema)
    if any(len(places) > 1 for places in partial_function_ids.values()):
        raise UntrustedModelError(
            f"{model_uri}: gives the id of a partial's {_PARTIAL_FUNCTION} to another object"
        )


def _platform_model_types() -> tuple[type, ...]:
    """What training makes of the families: a family's pipeline, the soft vote of them, either
    calibrated, and the registered model that applies its decision threshold to one of these."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.ensemble import VotingClassifier
    from sklearn.model_selection import FixedThresholdClassifier
    from sklearn.pipeline import Pipeline

    return (FixedThresholdClassifier, CalibratedClassifierCV, VotingClassifier, Pipeline)
