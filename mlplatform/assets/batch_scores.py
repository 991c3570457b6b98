"""Deployment: the `champion` model, resolved from the registry when this runs, scores the day.

Scoring is its own path beside training: it reads the day's features, not today's registration, so
a day whose challenger is blocked by a gate is still scored by the champion that is there. In a run
it shares the champion lane with training and registration (`mlplatform.stages.definition`) and
waits until they have settled, retries included (`mlplatform.stages.lane`), so it scores with the
version this run's registration left as champion.
"""

from typing import TYPE_CHECKING, Any

import dagster as dg
import pandas as pd

from mlplatform.assets.common import preview
from mlplatform.config.active import CONTRACT
from mlplatform.instance_queries import latest_materialization
from mlplatform.resources.mlflow import CHAMPION, MlflowResource
from mlplatform.stages import carried_out, partition_day, stage_asset, step_name
from mlplatform.stages.lane import settled_model_steps

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion

    from mlplatform.core.contract import Contract


def rows_of_the_day(
    context: dg.AssetExecutionContext, features: pd.DataFrame, contract: "Contract"
) -> pd.DataFrame:
    """The features' rows of the partition's own day (a window's older days are not scored)."""
    from mlplatform.core.days import on_day

    on_the_day = on_day(features[contract.event_time], partition_day(context))
    if not on_the_day.any():
        raise dg.Failure(
            f"{step_name(context)}: the features hold no rows of this day to score",
            allow_retries=False,
        )
    # A one-day window is the day itself: no copy of it.
    return features if on_the_day.all() else features[on_the_day]


def score_with_version(
    context: dg.AssetExecutionContext,
    model: Any,
    day_rows: pd.DataFrame,
    input_columns: list[str],
    contract: "Contract",
    name: str,
    version: "ModelVersion",
) -> tuple[pd.DataFrame, float]:
    """Every row's score and decision by one registered version, and the threshold it applied."""
    from mlplatform.core.models import decision_threshold
    from mlplatform.core.score import score_rows

    # The decision the model itself makes (its `predict`), so these scores agree with `mlflow
    # models serve` and any pyfunc user of the version. A version registered before models carried
    # their threshold applies the one tagged on it.
    threshold = decision_threshold(model)
    if threshold is None:
        threshold = float(version.tags.get("decision_threshold", 0.5))
        context.log.warning(
            f"{name} v{version.version} does not apply its own threshold: using its "
            f"decision_threshold tag ({threshold:g})"
        )
    scores = score_rows(
        model,
        day_rows,
        input_columns,
        threshold,
        id_column=contract.id,
        event_time_column=contract.event_time,
        model_version=str(version.version),
    )
    return scores, threshold


def why_this_version(instance: dg.DagsterInstance, day: str, champion_version: str) -> str:
    """Why the champion scored this day and not a model trained for it, from the instance."""
    from mlplatform.checks.gate_history import failed_blocking_checks

    registered = latest_materialization(instance, "registered_model_version", day)
    if registered is not None and registered.asset_materialization is not None:
        metadata = {k: v.value for k, v in registered.asset_materialization.metadata.items()}
        version = str(metadata.get("version"))
        if version == champion_version:
            return f"the model trained for {day} (v{version}) is the champion"
        reason = metadata.get("promotion_reason")
        return f"v{version}, trained for {day}, did not take champion: {reason}"
    blocked = failed_blocking_checks(instance, "trained_model", day)
    if blocked:
        return f"the model trained for {day} failed its blocking gates {blocked}: not registered"
    return f"no model was registered for {day}"


@stage_asset(
    "deployment",
    kinds={"mlflow", "pandas", "parquet"},
    # Not on upstream updates alone: features are written before training, and a scoring run of
    # its own would race the training run's registration. The day's runs (schedule, sensors, a
    # click) include it, behind training in the champion lane.
    automated=False,
    description=(
        "Scores, decisions and model version for every transaction of the partition's day, from "
        "the model holding the `champion` alias when this runs, whatever today's challenger did."
    ),
)
def batch_scores(
    context: dg.AssetExecutionContext,
    features: pd.DataFrame,
    mlflow: MlflowResource,
) -> dg.Output[pd.DataFrame]:
    # Not before this run's training and registration have settled, retries included.
    model_steps_failed = settled_model_steps(context)
    with carried_out(context, "deployment"):
        contract = CONTRACT
        name = mlflow.model_name_for(contract.name)
        # Scoring only reads the registry: as the read-only account, when there is one.
        with mlflow.reading():
            champion = mlflow.current_champion(name)
            if champion is None:
                raise dg.Failure(
                    f"{step_name(context)}: no champion yet: {name} has no version with the "
                    f"'{CHAMPION}' alias, so the day cannot be scored. The first model that "
                    "passes its gates becomes champion; score the day again then.",
                    allow_retries=False,
                )
            # Resolve the alias once and load that exact version, so the scores and the version
            # they name cannot disagree if the alias moves meanwhile.
            uri = f"models:/{name}/{champion.version}"
            model, input_columns = mlflow.load_with_inputs(uri)
        day_rows = rows_of_the_day(context, features, contract)
        scores, threshold = score_with_version(
            context, model, day_rows, input_columns, contract, name, champion
        )
    why = why_this_version(context.instance, context.partition_key, str(champion.version))
    if model_steps_failed:
        why = f"{model_steps_failed}; {why}"
    context.log.info(f"{name} v{champion.version} scored {len(scores)} rows: {why}")
    alert_rate = float(scores["decision"].mean()) if len(scores) else 0.0
    return dg.Output(
        scores,
        metadata={
            "dagster/row_count": len(scores),
            "model_name": name,
            "model_version": str(champion.version),
            "model_uri": f"models:/{name}@{CHAMPION} (v{champion.version})",
            "why_this_version": why,
            "decision_threshold": dg.MetadataValue.float(threshold),
            "alerts": int(scores["decision"].sum()),
            "alert_rate": dg.MetadataValue.float(round(alert_rate, 6)),
            "mean_score": dg.MetadataValue.float(round(float(scores["score"].mean()), 6)),
            "preview": preview(context, scores.sort_values("score", ascending=False)),
        },
    )
