"""Deployment: the `champion` model, resolved from the registry when this runs, scores the
newest day."""

from typing import Any

import dagster as dg
import pandas as pd

from mlplatform.assets.common import preview
from mlplatform.resources.contract import DatasetContract
from mlplatform.resources.mlflow import CHAMPION, MlflowResource
from mlplatform.stages import carried_out, stage_asset, step_name


@stage_asset(
    "deployment",
    kinds={"mlflow", "pandas", "parquet"},
    description=(
        "Scores, decisions and model version for every transaction of the partition's day, from "
        "the model holding the `champion` alias when this runs."
    ),
)
def batch_scores(
    context: dg.AssetExecutionContext,
    features: pd.DataFrame,
    registered_model_version: dict[str, Any],
    dataset_contract: DatasetContract,
    mlflow: MlflowResource,
) -> dg.Output[pd.DataFrame]:
    from mlplatform.core.days import on_day
    from mlplatform.core.models import decision_threshold
    from mlplatform.core.score import score_rows

    with carried_out(context, "deployment"):
        contract = dataset_contract.load()
        name = registered_model_version["model_name"]
        champion = mlflow.current_champion(name)
        if champion is None:
            raise dg.Failure(
                f"batch_scores: {name} has no '{CHAMPION}' version to score with",
                allow_retries=False,
            )
        # Resolve the alias once and load that exact version, so the scores and the version
        # they name cannot disagree if the alias moves meanwhile.
        uri = f"models:/{name}/{champion.version}"
        model, input_columns = mlflow.load_with_inputs(uri)
        on_the_day = on_day(features[contract.event_time], context.partition_key)
        if not on_the_day.any():
            raise dg.Failure(
                f"{step_name(context)}: the features hold no rows of this day to score",
                allow_retries=False,
            )
        # A one-day window is the day itself: no copy of it.
        day_rows = features if on_the_day.all() else features[on_the_day]
        # The decision the model itself makes (its `predict`), so these scores agree with
        # `mlflow models serve` and any pyfunc user of the version. A version registered before
        # models carried their threshold applies the one tagged on it.
        threshold = decision_threshold(model)
        if threshold is None:
            threshold = float(champion.tags.get("decision_threshold", 0.5))
            context.log.warning(
                f"{name} v{champion.version} does not apply its own threshold: using its "
                f"decision_threshold tag ({threshold:g})"
            )
        scores = score_rows(
            model,
            day_rows,
            input_columns,
            threshold,
            id_column=contract.id,
            event_time_column=contract.event_time,
            model_version=str(champion.version),
        )
    alert_rate = float(scores["decision"].mean()) if len(scores) else 0.0
    return dg.Output(
        scores,
        metadata={
            "dagster/row_count": len(scores),
            "model_name": name,
            "model_version": str(champion.version),
            "model_uri": f"models:/{name}@{CHAMPION} (v{champion.version})",
            "decision_threshold": dg.MetadataValue.float(threshold),
            "alerts": int(scores["decision"].sum()),
            "alert_rate": dg.MetadataValue.float(round(alert_rate, 6)),
            "mean_score": dg.MetadataValue.float(round(float(scores["score"].mean()), 6)),
            "preview": preview(context, scores.sort_values("score", ascending=False)),
        },
    )
