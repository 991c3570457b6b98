"""Jobs: the training pipeline, end to end, one daily partition per run, and the retraining that
the drift sensor asks for."""

import dagster as dg

from mlplatform.config.active import ORCHESTRATION
from mlplatform.stages import daily_partitions

RUN_TAGS = {
    # Run monitoring stops (and fails) a run still going after this long.
    "dagster/max_runtime": str(ORCHESTRATION.max_runtime_seconds),
}

# After deployment: realized performance, run per scored day as outcomes arrive (its own job,
# automation/monitoring.py), not in the day's training run.
MONITORING_GROUP = "monitoring"

training_pipeline = dg.define_asset_job(
    name="training_pipeline",
    selection=dg.AssetSelection.all() - dg.AssetSelection.groups(MONITORING_GROUP),
    partitions_def=daily_partitions,
    tags=RUN_TAGS,
    description="Raw data to a registered, champion-gated model and the day's batch scores.",
)

retraining = dg.define_asset_job(
    name="retraining",
    selection=dg.AssetSelection.assets("features").downstream()
    - dg.AssetSelection.groups(MONITORING_GROUP),
    partitions_def=daily_partitions,
    tags=RUN_TAGS,
    description=(
        "Features, training, registration and scores again for one day, on the validated data "
        "already stored (asked for by the drift sensor)."
    ),
)
