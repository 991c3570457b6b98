"""Registration in the MLflow Model Registry: the new version is the `challenger`; it becomes the
`champion` only when at least as good as the current champion on the new test split."""

from typing import Any

import dagster as dg
import pandas as pd

from mlplatform.assets.common import OWNER, daily_partitions, metric_metadata
from mlplatform.config.active import SETTINGS
from mlplatform.resources.contract import DatasetContract
from mlplatform.resources.mlflow import (
    failing_on_error,
    load_sklearn_model,
    model_input_columns,
)

CHAMPION = "champion"
CHALLENGER = "challenger"


class RegisteredModelVersionConfig(dg.Config):
    model_name: str | None = SETTINGS.registry.model_name
    promotion_metric: str = SETTINGS.registry.promotion_metric
    promotion_tolerance: float = SETTINGS.registry.promotion_tolerance


def registered_model_name(configured: str | None, contract_name: str) -> str:
    return configured or f"{contract_name}_classifier"


def current_champion(client: Any, model_name: str) -> Any | None:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(model_name, CHAMPION)
    except MlflowException as error:
        if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        raise


def champion_metric_on(
    champion: Any, model_name: str, features: pd.DataFrame, metric: str
) -> tuple[float | None, str]:
    """The champion's `metric` on this features table's test split, or None with the reason it
    cannot score it."""
    from mlplatform.core.evaluate import classification_metrics
    from mlplatform.core.train import split_xy

    uri = f"models:/{model_name}/{champion.version}"
    columns = model_input_columns(uri)
    missing = [c for c in columns if c not in features.columns]
    if missing:
        return None, f"champion v{champion.version} needs columns the new features lack: {missing}"
    model = load_sklearn_model(uri)
    x_test, y_test = split_xy(features, "test", columns)
    threshold = float(champion.tags.get("decision_threshold", 0.5))
    metrics = classification_metrics(y_test, model.predict_proba(x_test)[:, 1], threshold)
    return metrics[metric], f"champion v{champion.version} on the new test split"


@dg.asset(
    partitions_def=daily_partitions,
    group_name="registry",
    kinds={"mlflow"},
    owners=[OWNER],
    io_manager_key="json_io_manager",
    description=(
        "The trained model as a new version in the MLflow Model Registry, aliased `challenger`; "
        "promoted to `champion` only when at least as good as the current champion."
    ),
)
def registered_model_version(
    context: dg.AssetExecutionContext,
    config: RegisteredModelVersionConfig,
    trained_model: dict[str, Any],
    features: pd.DataFrame,
    dataset_contract: DatasetContract,
    mlflow: dg.ResourceParam[Any],
) -> dg.Output[dict[str, Any]]:
    from mlflow.tracking import MlflowClient

    from mlplatform.core.promote import decide_promotion

    contract = dataset_contract.load()
    name = registered_model_name(config.model_name, contract.name)
    client = MlflowClient()
    with failing_on_error(mlflow):
        version = mlflow.register_model(
            trained_model["model_uri"],
            name,
            tags={
                "dagster_run_id": context.run_id,
                "dagster_partition": context.partition_key,
                "decision_threshold": str(trained_model["decision_threshold"]),
                "code_version": trained_model["code_version"],
                **{f"test_{k}": f"{v:.6f}" for k, v in trained_model["test_metrics"].items()},
            },
        )
        client.set_registered_model_alias(name, CHALLENGER, version.version)

        champion = current_champion(client, name)
        challenger_value = trained_model["test_metrics"][config.promotion_metric]
        champion_value, basis = None, "no champion yet"
        if champion is not None:
            champion_value, basis = champion_metric_on(
                champion, name, features, config.promotion_metric
            )
        decision = decide_promotion(
            config.promotion_metric, challenger_value, champion_value, config.promotion_tolerance
        )
        if decision.promote:
            client.set_registered_model_alias(name, CHAMPION, version.version)
        context.log.info(
            f"{name} v{version.version}: {'promoted to' if decision.promote else 'did not take'} "
            f"{CHAMPION} ({decision.reason}; {basis})"
        )
    aliases = sorted(client.get_model_version(name, version.version).aliases)
    record = {
        "model_name": name,
        "version": str(version.version),
        "aliases": aliases,
        "mlflow_run_id": trained_model["mlflow_run_id"],
        "model_uri": trained_model["model_uri"],
        "decision_threshold": trained_model["decision_threshold"],
        "test_metrics": trained_model["test_metrics"],
        "promoted": decision.promote,
        "promotion_reason": decision.reason,
        "previous_champion_version": None if champion is None else str(champion.version),
        "previous_champion_metric": champion_value,
    }
    return dg.Output(
        record,
        metadata={
            "model_name": name,
            "version": str(version.version),
            "aliases": dg.MetadataValue.json(aliases),
            "promoted_to_champion": decision.promote,
            "promotion_reason": f"{decision.reason} ({basis})",
            "mlflow_run_id": trained_model["mlflow_run_id"],
            "registry_uri": mlflow.get_registry_uri(),
            **metric_metadata("test_", trained_model["test_metrics"]),
        },
    )
