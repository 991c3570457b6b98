"""The MLflow Model Registry as this platform uses it: one registered model per dataset contract,
aliases `challenger` (newest registered) and `champion` (the one that scores)."""

from __future__ import annotations

import os
from typing import Any

import pandas as pd

from mlplatform.config.active import SETTINGS

CHAMPION = "champion"
CHALLENGER = "challenger"


def registered_model_name(contract_name: str) -> str:
    return SETTINGS.registry.model_name or f"{contract_name}_classifier"


def current_champion(client: Any, model_name: str) -> Any | None:
    """The model version holding `champion`, or None when there is none (or no model yet)."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(model_name, CHAMPION)
    except MlflowException as error:
        if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        raise


def load_sklearn_model(model_uri: str) -> Any:
    """Load a scikit-learn model from this platform's registry.

    MLflow refuses to deserialize models unless MLFLOW_ALLOW_PICKLE_DESERIALIZATION is true; the
    models here were all written by `trained_model`, so it defaults to true for this platform
    (an operator who sets it to false keeps that choice).
    """
    import mlflow.sklearn

    os.environ.setdefault("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true")
    return mlflow.sklearn.load_model(model_uri)


def model_input_columns(model_uri: str) -> list[str]:
    """The input column names recorded in a logged model's signature."""
    from mlflow.models import get_model_info

    signature = get_model_info(model_uri).signature
    if signature is None:
        raise ValueError(f"{model_uri} has no signature; cannot tell its input columns")
    return list(signature.inputs.input_names())


def metrics_on_test_split(
    model_uri: str, features: pd.DataFrame, threshold: float
) -> tuple[dict[str, float] | None, str]:
    """The model's metrics on this features table's test split, or None with the reason it
    cannot score it (its inputs are not all among the features)."""
    from mlplatform.core.evaluate import classification_metrics
    from mlplatform.core.train import split_xy

    columns = model_input_columns(model_uri)
    missing = [c for c in columns if c not in features.columns]
    if missing:
        return None, f"{model_uri} needs columns the features lack: {missing}"
    model = load_sklearn_model(model_uri)
    x_test, y_test = split_xy(features, "test", columns)
    return classification_metrics(y_test, model.predict_proba(x_test)[:, 1], threshold), model_uri


def champion_metric(
    client: Any, model_name: str, features: pd.DataFrame, metric: str
) -> tuple[Any | None, float | None, str]:
    """(champion version, its `metric` on the new test split, how that was obtained)."""
    champion = current_champion(client, model_name)
    if champion is None:
        return None, None, "no champion yet"
    threshold = float(champion.tags.get("decision_threshold", 0.5))
    metrics, basis = metrics_on_test_split(
        f"models:/{model_name}/{champion.version}", features, threshold
    )
    if metrics is None:
        return champion, None, basis
    return champion, metrics[metric], f"champion v{champion.version} on the new test split"
