"""Run config for the Launchpad, derived from the settings models: each setting's type, bounds and
allowed values are declared once (in `mlplatform.config.settings`), its default once (in the YAML).

A value the Launchpad's schema can check (a misspelt choice: Dagster turns a `Literal` into an
enum) is refused before the run starts, with the allowed values listed; one only the settings model
can check (a bound, a rule across fields) fails its step at once, never retried.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import dagster as dg
from pydantic import ConfigDict, ValidationError, create_model, model_validator
from pydantic.fields import FieldInfo

from mlplatform.config.loading import StrictModel, describe_validation_error


class LaunchpadConfig(dg.Config):
    """Run config whose invalid values fail fast: retrying cannot fix a setting."""

    # As in the settings files (StrictModel): `.inf` and `.nan` pass every one-sided bound.
    model_config = ConfigDict(allow_inf_nan=False)

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as error:
            raise dg.Failure(
                description=describe_validation_error(f"run config {type(self).__name__}", error),
                allow_retries=False,
            ) from None


def launchpad_config(
    name: str,
    section: StrictModel,
    fields: Iterable[str] | None = None,
    rules: Iterable[str] | None = None,
) -> type[LaunchpadConfig]:
    """A `dg.Config` class with `section`'s fields (or those named), their types, bounds and
    descriptions, and the loaded values as defaults. The section's rules across fields come too:
    all of them with all its fields, else those named in `rules` (they read only kept fields)."""
    model = type(section)
    kept = list(model.model_fields) if fields is None else list(fields)
    validators = model.__pydantic_decorators__.model_validators
    chosen = list(validators) if fields is None else list(rules or ())
    declared = {
        field: (
            model.model_fields[field].annotation,
            FieldInfo.merge_field_infos(model.model_fields[field], default=getattr(section, field)),
        )
        for field in kept
    }
    copied = {
        rule: model_validator(mode=validators[rule].info.mode)(validators[rule].func)  # type: ignore[call-overload]
        for rule in chosen
    }
    return create_model(  # type: ignore[call-overload,no-any-return]
        name,
        __base__=LaunchpadConfig,
        __doc__=model.__doc__,
        __validators__=copied,
        **declared,
    )
