"""Registration in the MLflow Model Registry.

The new version gets the `challenger` alias, is reloaded from the registry by that alias and
checked (it must reproduce its test metrics, and its signature must be exactly the feature
columns), and only then, if it was shown not worse than the current champion on the same test rows
(non-inferiority, the `not_worse_than_champion` gate) and is not confidently below a blocking floor,
takes `champion`. The two checks are this asset's own (blocking) checks, so a version that fails
them never holds `champion`.
"""

from collections.abc import Iterator
from typing import Any

import dagster as dg
import pandas as pd

from mlplatform.assets.common import metric_metadata
from mlplatform.checks.common import gate_result, gate_specs
from mlplatform.config.active import CONTRACT, GATES, SETTINGS
from mlplatform.core.contract import Contract
from mlplatform.core.promote import PromotionDecision
from mlplatform.resources.mlflow import CHALLENGER, CHAMPION, MlflowResource
from mlplatform.stages import carried_out, stage_asset

gates = GATES.registered_model_version


def model_description(contract: Contract) -> str:
    """What the registered model predicts, from its dataset contract."""
    about = f"{contract.description.strip()}\n\n" if contract.description.strip() else ""
    return (
        f"{about}Scores each `{contract.name}` row (id `{contract.id}`, time "
        f"`{contract.event_time}`): the probability that `{contract.target}` is "
        f"`{contract.positive_label}`; `predict` applies the version's own decision threshold. "
        f"Inputs: the feature columns of the contract ({contract.source}). Versions are trained "
        "daily by mlplatform; `champion` scores, `challenger` is the newest."
    )


def version_description(
    trained_model: dict[str, Any], decision: PromotionDecision, comparison: dict[str, Any]
) -> str:
    """What one version was trained on and why it did or did not take `champion`."""
    days = trained_model.get("window_days") or [trained_model["partition"]]
    sizes = trained_model["split_sizes"]
    roc = trained_model["test_intervals"].get("roc_auc", {})
    outcome = "Promoted to champion" if decision.promote else "Not promoted"
    return (
        f"{trained_model['model_family']} trained for {trained_model['partition']} on "
        f"{days[0]}..{days[-1]} ({len(days)} days; {sizes.get('train', 0)} training, "
        f"{sizes.get('validation', 0)} validation, {sizes.get('test', 0)} test rows); decision "
        f"threshold {trained_model['decision_threshold']:.4g}; test ROC-AUC "
        f"{roc.get('value', float('nan')):.4f} [{roc.get('low', float('nan')):.4f}, "
        f"{roc.get('high', float('nan')):.4f}] on {roc.get('positives', '?')} positives. "
        f"{outcome}: {why_promoted(decision, comparison)}."
    )


def why_promoted(decision: Any, comparison: dict[str, Any]) -> str:
    """The promotion's reason and what the comparison rested on, each said once (without a
    champion both are "no champion yet")."""
    basis = comparison["basis"]
    return decision.reason if basis in decision.reason else f"{decision.reason} ({basis})"


@stage_asset(
    "registration",
    kinds={"mlflow"},
    # One registration at a time: reading the champion and moving the alias must not interleave.
    pool="registration",
    io_manager_key="json_io_manager",
    description=(
        "The trained model as a new version in the MLflow Model Registry, aliased `challenger`; "
        "promoted to `champion` only when it reloads correctly, meets its floors and is not worse "
        "than the current champion on the same test rows (with 95% confidence)."
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
    trained_model: dict[str, Any],
    features: pd.DataFrame,
    mlflow: MlflowResource,
) -> Iterator[dg.Output | dg.AssetCheckResult]:
    from mlplatform.checks.trained_model import judged_model_gates
    from mlplatform.core import model_gates
    from mlplatform.core.evaluate import classification_metrics
    from mlplatform.core.features import test_labels
    from mlplatform.core.promote import decide_promotion

    contract = CONTRACT
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
                    # What model_performance widens the estimate's interval by.
                    "estimate_dispersion": str(trained_model.get("estimate_dispersion", 1.0)),
                    "code_version": trained_model["code_version"],
                    **{f"test_{k}": f"{v:.6f}" for k, v in trained_model["test_metrics"].items()},
                },
            )
        )
        mlflow.set_alias(name, CHALLENGER, version.version)

        by_alias = f"models:/{name}@{CHALLENGER}"
        scores, basis = mlflow.test_scores(by_alias, features)
        reproduced = (
            None
            if scores is None
            else classification_metrics(
                test_labels(features), scores, trained_model["decision_threshold"]
            )
        )
        reproduction = model_gates.reproduces(
            trained_model["test_metrics"],
            reproduced or {},
            gates.reproduces_test_metrics.tolerance,
        )
        if reproduced is None:
            reproduction.summary = basis
        signature = model_gates.signature_matches(
            mlflow.model_input_columns(by_alias), trained_model["input_columns"]
        )

        # The champion was scored on these test rows once, by training; again only if
        # `champion` moved since (another day's registration promoted meanwhile).
        current = mlflow.current_champion(name)
        current_version = None if current is None else str(current.version)
        comparison = trained_model["champion_comparison"]
        if comparison["champion_version"] != current_version:
            rule = GATES.trained_model.not_worse_than_champion
            comparison = mlflow.compare_with_champion(
                name, features, scores, trained_model["decision_threshold"], rule.metric,
                seed=SETTINGS.training.random_state,
                resamples=SETTINGS.training.bootstrap_resamples,
            )  # fmt: skip
        judged = judged_model_gates({**trained_model, "champion_comparison": comparison},
                                    GATES.trained_model)  # fmt: skip
        decision = decide_promotion(
            verified=reproduction.passed and signature.passed,
            blocking_floors={
                metric: judged[metric]
                for metric in model_gates.FLOOR_METRICS
                if getattr(GATES.trained_model, metric).blocking
            },
            comparison=judged["not_worse_than_champion"],
            has_champion=current_version is not None,
        )
        if decision.promote:
            mlflow.move_champion(
                name,
                version.version,
                f"registration of {context.partition_key}: {decision.reason}",
                {"gate": "not_worse_than_champion", "comparison": comparison},
            )
        mlflow.tag_version(
            name,
            version.version,
            {
                "promoted": str(decision.promote).lower(),
                "promotion_reason": decision.reason,
                "compared_with_champion": str(comparison["champion_version"]),
                **{
                    f"test_{metric}_interval": "[{low:.4f}, {high:.4f}]".format(**values)
                    for metric, values in trained_model["test_intervals"].items()
                },
                # What the backtest rests on, for judging live performance against it later.
                **{
                    f"test_{key}": str(value)
                    for key, value in next(iter(trained_model["test_intervals"].values())).items()
                    if key in ("positives", "rows")
                },
            },
        )
        mlflow.describe_model(name, model_description(contract))
        mlflow.describe_version(
            name, version.version, version_description(trained_model, decision, comparison)
        )
        context.log.info(
            f"{name} v{version.version}: {'promoted to' if decision.promote else 'did not take'} "
            f"{CHAMPION} ({why_promoted(decision, comparison)})"
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
        "previous_champion_version": current_version,
        "champion_comparison": comparison,
    }
    yield dg.Output(
        record,
        metadata={
            "model_name": name,
            "version": str(version.version),
            "aliases": dg.MetadataValue.json(aliases),
            "promoted_to_champion": decision.promote,
            "promotion_reason": why_promoted(decision, comparison),
            "mlflow_run_id": trained_model["mlflow_run_id"],
            "mlflow_version": mlflow.version_link(name, str(version.version)),
            "registry_uri": mlflow.effective_registry_uri,
            **metric_metadata("test_", trained_model["test_metrics"]),
        },
    )
    asset = "registered_model_version"
    yield gate_result(asset, "reproduces_test_metrics", gates.reproduces_test_metrics, reproduction)
    yield gate_result(
        asset, "signature_matches_features", gates.signature_matches_features, signature
    )
