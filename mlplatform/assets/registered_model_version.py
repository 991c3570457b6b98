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
from mlplatform.config.gates import FloorGate, gates_for
from mlplatform.config.launchpad import launchpad_config
from mlplatform.resources.contract import DatasetContract
from mlplatform.resources.mlflow import CHALLENGER, CHAMPION, MlflowResource
from mlplatform.stages import carried_out, stage_asset

gates = GATES.registered_model_version


# The promotion rule, per run if need be (platform.yaml `promotion`).
RegisteredModelVersionConfig = launchpad_config("RegisteredModelVersionConfig", SETTINGS.promotion)


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
    mlflow: MlflowResource,
) -> Iterator[dg.Output | dg.AssetCheckResult]:
    from mlplatform.checks.trained_model import champion_scored_in_run
    from mlplatform.core import quality
    from mlplatform.core.promote import decide_promotion

    contract = dataset_contract.load()
    name = mlflow.model_name_for(contract.name)
    with carried_out(context, "registration"), mlflow.run():
        # A retried attempt finds the version its first attempt registered.
        existing = mlflow.client.search_model_versions(
            f"name='{name}' and tags.dagster_run_id='{context.run_id}' "
            f"and tags.dagster_partition='{context.partition_key}'"
        )
        version = (
            existing[0]
            if existing
            else mlflow.register_version(
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
        mlflow.set_alias(name, CHALLENGER, version.version)

        by_alias = f"models:/{name}@{CHALLENGER}"
        reproduced, basis = mlflow.metrics_on_test_split(
            by_alias, features, trained_model["decision_threshold"]
        )
        contract_gates = gates_for(contract.name)
        reproduction = quality.reproduces(
            trained_model["test_metrics"],
            reproduced or {},
            contract_gates.registered_model_version.reproduces_test_metrics.tolerance,
        )
        if reproduced is None:
            reproduction.summary = basis
        signature = quality.signature_matches(
            mlflow.model_input_columns(by_alias), trained_model["input_columns"]
        )

        # Scored once per run: by this run's trained_model check, on these same features, unless
        # `champion` moved since or the check did not run here (a registration alone, a re-run).
        champion = champion_scored_in_run(context.instance, context.run_id, context.partition_key)
        current = mlflow.current_champion(name)
        current_version = None if current is None else str(current.version)
        if champion is None or champion.version != current_version:
            champion = mlflow.score_champion(name, features)
        decision = decide_promotion(
            verified=reproduction.passed and signature.passed,
            test_metrics=trained_model["test_metrics"],
            blocking_floors={
                metric: gate.min
                for metric, gate in contract_gates.trained_model
                if isinstance(gate, FloorGate) and gate.blocking
            },
            metric=config.metric,
            champion_value=champion.metric(config.metric),
            tolerance=config.tolerance,
        )
        if decision.promote:
            mlflow.set_alias(name, CHAMPION, version.version)
        context.log.info(
            f"{name} v{version.version}: {'promoted to' if decision.promote else 'did not take'} "
            f"{CHAMPION} ({decision.reason}; {champion.basis})"
        )
    aliases = sorted(mlflow.client.get_model_version(name, version.version).aliases)
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
        "previous_champion_version": champion.version,
        "previous_champion_metric": decision.champion_value,
    }
    yield dg.Output(
        record,
        metadata={
            "model_name": name,
            "version": str(version.version),
            "aliases": dg.MetadataValue.json(aliases),
            "promoted_to_champion": decision.promote,
            "promotion_reason": f"{decision.reason} ({champion.basis})",
            "mlflow_run_id": trained_model["mlflow_run_id"],
            "registry_uri": mlflow.effective_registry_uri,
            **metric_metadata("test_", trained_model["test_metrics"]),
        },
    )
    asset = "registered_model_version"
    yield gate_result(asset, "reproduces_test_metrics", gates.reproduces_test_metrics, reproduction)
    yield gate_result(
        asset, "signature_matches_features", gates.signature_matches_features, signature
    )
