"""The Model Registry part of the MLflow resource: one registered model per dataset contract, its
versions and their aliases (`challenger`, the newest registered; `champion`, the one that scores),
every move of `champion` recorded with its reason; registered models loaded back (skops only,
trusted types only: `core.model_loading.load_trusted_skops`) and scored on a features table's test
rows.

`MlflowResource` is made of this class and the tracking part (resources/mlflow.py): the methods
here use its `client`, `tracking_uri` and `registered_model_name`.
"""

from __future__ import annotations

import os
import tempfile
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    from mlflow.entities.model_registry import ModelVersion

CHAMPION = "champion"
CHALLENGER = "challenger"


class ModelRegistry:
    """The registry's methods of `MlflowResource` (no state of their own)."""

    def model_name_for(self, contract_name: str) -> str:
        """The registered model of a dataset contract."""
        return self.registered_model_name or f"{contract_name}_classifier"

    def current_champion(self, model_name: str) -> ModelVersion | None:
        """The model version holding `champion`, or None when there is none (or no model yet)."""
        return self.version_by_alias(model_name, CHAMPION)

    def register_version(
        self, model_uri: str, model_name: str, tags: dict[str, str]
    ) -> ModelVersion:
        """A new version of `model_name` (created if need be) for a logged model."""
        import mlflow

        # mlflow.register_model resolves a logged model's `models:/m-...` URI to its source and
        # run; it reads the process-wide URIs, which setup_for_execution set to this resource's.
        return mlflow.register_model(model_uri, model_name, tags=tags)

    def describe_model(self, model_name: str, description: str) -> None:
        """The registered model's description (what it predicts), shown in the registry's UI."""
        self.client.update_registered_model(model_name, description=description)

    def describe_version(self, model_name: str, version: str, description: str) -> None:
        self.client.update_model_version(model_name, version, description=description)

    def set_alias(self, model_name: str, alias: str, version: str) -> None:
        self.client.set_registered_model_alias(model_name, alias, version)

    def move_champion(
        self, model_name: str, version: str, reason: str, evidence: dict[str, Any] | None = None
    ) -> str | None:
        """Give `champion` to `version`, recording on it why, on what evidence, and which version
        held the alias before (the one a rollback returns to). Registration, a promotion on live
        outcomes and a rollback all move the alias here, so every move says why in the registry.
        The version that held `champion` before (None: none did)."""
        import json
        import time

        current = self.current_champion(model_name)
        previous = None if current is None else str(current.version)
        if previous == str(version):
            return previous
        self.client.set_registered_model_alias(model_name, CHAMPION, str(version))
        self.tag_version(
            model_name,
            str(version),
            {
                "champion_reason": reason[:4000],
                "champion_evidence": json.dumps(evidence or {}, default=str, sort_keys=True)[:4000],
                "champion_since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "previous_champion": previous or "",
            },
        )
        return previous

    def predecessor_of(self, model_name: str, version: str) -> str | None:
        """The version that held `champion` before `version` took it (None: none did, or
        `version` never held it)."""
        tags = self.client.get_model_version(model_name, str(version)).tags
        return tags.get("previous_champion") or None

    def version_by_alias(self, model_name: str, alias: str) -> ModelVersion | None:
        """The version holding `alias`, or None when no version does."""
        from mlflow.exceptions import MlflowException

        try:
            return self.client.get_model_version_by_alias(model_name, alias)
        except MlflowException as error:
            if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                return None
            raise

    def tag_version(self, model_name: str, version: str, tags: dict[str, str]) -> None:
        for key, value in tags.items():
            self.client.set_model_version_tag(model_name, version, key, value)

    def _model_version_of(self, model_uri: str) -> ModelVersion:
        """The version a `models:/<name>/<version>` or `models:/<name>@<alias>` URI names."""
        reference = model_uri.removeprefix("models:/")
        if "@" in reference:
            name, alias = reference.split("@", 1)
            return self.client.get_model_version_by_alias(name, alias)
        name, version = reference.rsplit("/", 1)
        return self.client.get_model_version(name, version)

    def _download(self, model_uri: str, into: str, path: str = "") -> str:
        """A registered model's files (or the one at `path` in it), downloaded into `into`.
        Resolved through this resource's own registry: MLflow's own `models:/` resolution reads
        the process-wide registry URI whatever it is given."""
        import mlflow.artifacts

        version = self._model_version_of(model_uri)
        location = self.client.get_model_version_download_uri(version.name, version.version)
        return mlflow.artifacts.download_artifacts(
            artifact_uri=f"{location.rstrip('/')}/{path}" if path else location,
            dst_path=into,
            tracking_uri=self.tracking_uri,
        )

    def model_input_columns(self, model_uri: str) -> list[str]:
        """The input column names recorded in a registered model's signature."""
        from mlflow.models import Model

        with tempfile.TemporaryDirectory() as folder:
            return _input_columns(
                model_uri, Model.load(self._download(model_uri, folder, "MLmodel"))
            )

    def load_sklearn_model(self, model_uri: str) -> Any:
        """A registered scikit-learn model (see `_load`)."""
        return self._load(model_uri)[0]

    def load_with_inputs(self, model_uri: str) -> tuple[Any, list[str]]:
        """A registered scikit-learn model and its signature's input columns, from one download."""
        model, description = self._load(model_uri)
        return model, _input_columns(model_uri, description)

    def _load(self, model_uri: str) -> tuple[Any, Any]:
        """The model and its MLmodel description. Loaded in the skops format only, from inside its
        own folder, trusting only the types this code's model families are made of in the form
        skops writes them (`SKOPS_TRUSTED_FORMS`), never the list written in the model's own files,
        and only if it is a model of those families: any other version is refused, so a crafted
        model cannot run code or read a file where it is loaded (`core.model_loading`)."""
        from mlflow.models import Model

        from mlplatform.core.model_loading import load_trusted_skops

        with tempfile.TemporaryDirectory() as folder:
            local = self._download(model_uri, folder)
            description = Model.load(os.path.join(local, "MLmodel"))
            flavor = description.flavors.get("sklearn", {})
            return load_trusted_skops(model_uri, local, flavor), description

    def test_scores(self, model_uri: str, features: pd.DataFrame) -> tuple[Any | None, str]:
        """The model's scores on this features table's test split (None, with the reason, when its
        inputs are not all among the features)."""
        from mlplatform.core.train import split_xy

        model, columns = self.load_with_inputs(model_uri)
        missing = [c for c in columns if c not in features.columns]
        if missing:
            return None, f"{model_uri} needs columns the features lack: {missing}"
        x_test, _ = split_xy(features, "test", columns)
        return model.predict_proba(x_test)[:, 1], model_uri

    def compare_with_champion(
        self,
        model_name: str,
        features: pd.DataFrame,
        challenger_scores: Any,
        challenger_threshold: float,
        metric: str,
        *,
        seed: int,
        resamples: int,
    ) -> dict[str, Any]:
        """The champion scored on the same test rows as the challenger, and the two compared there
        (`core.promote.champion_comparison`); no difference without a champion, or when the
        champion cannot score these features (`basis` says which)."""
        from mlplatform.core.features import test_labels
        from mlplatform.core.promote import champion_comparison

        champion = self.current_champion(model_name)
        if champion is None:
            return {"champion_version": None, "basis": "no champion yet", "difference": None}
        version = str(champion.version)
        scores, basis = self.test_scores(f"models:/{model_name}/{version}", features)
        if scores is None:
            return {"champion_version": version, "basis": basis, "difference": None}
        return champion_comparison(
            test_labels(features), challenger_scores, challenger_threshold, scores,
            float(champion.tags.get("decision_threshold", 0.5)), version, metric,
            seed=seed, resamples=resamples,
        )  # fmt: skip


def _input_columns(model_uri: str, description: Any) -> list[str]:
    if description.signature is None:
        raise ValueError(f"{model_uri} has no signature; cannot tell its input columns")
    return list(description.signature.inputs.input_names())
