"""Registration in the MLflow Model Registry.

The new version gets the `challenger` alias, is reloaded from the registry by that alias and
checked (it must reproduce its test metrics, and its signature must be exactly the feature
columns), and only then, if it is at least as good as the current champion on the new test split,
takes `champion`. The two checks are this asset's own (blocking) checks, so a version that fails
them never holds `champion`.
"""

from collections.abc import Iterator
from typing import Any

import dagster as dg
import pandas as pd

from mlplatform.assets.common import metric_metadata
from mlplatform.checks.common import gate_result, gate_specs
from mlplatform.config.active import GATES, SETTINGS
from mlplatform.config.gates import gates_for
from mlplatform.resources.contract import DatasetContract
from mlplatform.resources.mlflow import failing_on_error
from mlplatform.stages import carried_out, stage_asset

gates = GATES.registered_model_version


class RegisteredModelVersionConfig(dg.Config):
    promotion_metric: str = SETTINGS.registry.promotion_metric
    promotion_tolerance: float = SETTINGS.registry.promotion_tolerance


@stage_asset(
    "registration",
    kinds={"mlflow"},
    # One registration at a time: reading the champion and moving the alias must not interleave.
    pool="registration",
    io_manager_key="json_io_manager",
    description=(
        "The trained model as a new version in the MLflow Model Registry, aliased `challenger`; "
        "promoted to `champion` only when it reloads correctly and is at least as good as the "
        "current champion."
    ),
    check_specs=gate_specs(
        "registered_model_version",
        gates,
        {
            "reproduces_test_metrics": (
                "Reloaded from the registry by alias, the version reproduces its test metrics."
            ),
            "signature_matches_features": "The version's signature inputs are the feature columns.",
        },
    ),
)
def registered_model_version(
    context: dg.AssetExecutionContext,
    config: RegisteredModelVersionConfig,
    trained_model: dict[str, Any],
    features: pd.DataFrame,
    dataset_contract: DatasetContract,
    mlflow: dg.ResourceParam[Any],
) -> Iterator[dg.Output | dg.AssetCheckResult]:
    from mlflow.tracking import MlflowClient

    from mlplatform.core import quality
    from mlplatform.core.promote import decide_promotion
    from mlplatform.registry import (
        CHALLENGER,
        CHAMPION,
        champion_metric,
        metrics_on_test_split,
        model_input_columns,
        registered_model_name,
    )

    contract = dataset_contract.load()
    name = registered_model_name(contract.name)
    client = MlflowClient()
    with carried_out(context, "registration"), failing_on_error(mlflow):
        # A retried attempt finds the version its first attempt registered.
        existing = client.search_model_versions(
            f"name='{name}' and tags.dagster_run_id='{context.run_id}' "
            f"and tags.dagster_partition='{context.partition_key}'"
        )
        version = (
            existing[0]
            if existing
            else mlflow.register_model(
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
        )
        client.set_registered_model_alias(name, CHALLENGER, version.version)

        by_alias = f"models:/{name}@{CHALLENGER}"
        reproduced, basis = metrics_on_test_split(
            by_alias, features, trained_model["decision_threshold"]
        )
        registry_gates = gates_for(contract.name).registered_model_version
        reproduction = quality.reproduces(
            trained_model["test_metrics"],
            reproduced or {},
            registry_gates.reproduces_test_metrics.tolerance,
        )
        if reproduced is None:
            reproduction.summary = basis
        signature = quality.signature_matches(
            model_input_columns(by_alias), trained_model["input_columns"]
        )
        verified = reproduction.passed and signature.passed
        # The model's floors are re-applied here: this asset may run in a later run than the
        # one whose checks blocked it (a re-execution, a UI click), and must not promote then.
        model_gates = gates_for(contract.name).trained_model
        below_floor = [
            name
            for name in ("accuracy", "roc_auc", "pr_auc")
            if getattr(model_gates, name).blocking
            and not quality.metric_floor(
                name, trained_model["test_metrics"][name], getattr(model_gates, name).min
            ).passed
        ]

        champion, champion_value, basis = champion_metric(
            client, name, features, config.promotion_metric
        )
        decision = decide_promotion(
            config.promotion_metric,
            trained_model["test_metrics"][config.promotion_metric],
            champion_value,
            config.promotion_tolerance,
        )
        promote = verified and not below_floor and decision.promote
        reason = (
            decision.reason
            if verified and not below_floor
            else f"below the gate floors for {below_floor}"
            if below_floor
            else "failed its registry checks"
        )
        if promote:
            client.set_registered_model_alias(name, CHAMPION, version.version)
        context.log.info(
            f"{name} v{version.version}: {'promoted to' if promote else 'did not take'} "
            f"{CHAMPION} ({reason}; {basis})"
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
        "promoted": promote,
        "promotion_reason": reason,
        "previous_champion_version": None if champion is None else str(champion.version),
        "previous_champion_metric": champion_value,
    }
    yield dg.Output(
        record,
        metadata={
            "model_name": name,
            "version": str(version.version),
            "aliases": dg.MetadataValue.json(aliases),
            "promoted_to_champion": promote,
            "promotion_reason": f"{reason} ({basis})",
            "mlflow_run_id": trained_model["mlflow_run_id"],
            "registry_uri": mlflow.get_registry_uri(),
            **metric_metadata("test_", trained_model["test_metrics"]),
        },
    )
    asset = "registered_model_version"
    yield gate_result(asset, "reproduces_test_metrics", gates.reproduces_test_metrics, reproduction)
    yield gate_result(
        asset, "signature_matches_features", gates.signature_matches_features, signature
    )
