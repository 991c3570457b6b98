"""Jobs: the training pipeline, end to end, one daily partition per run."""

import dagster as dg

from mlplatform.assets.common import daily_partitions
from mlplatform.resources.mlflow import end_mlflow_on_run_finished

training_pipeline = dg.define_asset_job(
    name="training_pipeline",
    selection=dg.AssetSelection.all(),
    partitions_def=daily_partitions,
    hooks={end_mlflow_on_run_finished},
    description=(
        "Raw transactions to a registered, champion-gated model and the day's batch scores."
    ),
)
