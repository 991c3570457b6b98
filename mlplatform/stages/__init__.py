"""What defines a pipeline stage: its daily partitions, owner, automation condition, retry policy,
step resources and error policy, declared once here and shared by every asset and check.

Automation (jobs, schedules, sensors) sits above the stages and triggers them; nothing here knows
it."""

from mlplatform.stages.definition import (
    AFTER_UPSTREAM_GATES,
    OWNER,
    daily_partitions,
    day_of_partition_key,
    partition_day,
    partition_key_of,
    retry_policy,
    stage_asset,
    stage_multi_asset,
    stage_output,
    step_tags,
)
from mlplatform.stages.error_policy import carried_out, optional_work, step_name

__all__ = [
    "AFTER_UPSTREAM_GATES",
    "OWNER",
    "carried_out",
    "daily_partitions",
    "day_of_partition_key",
    "optional_work",
    "partition_day",
    "partition_key_of",
    "retry_policy",
    "stage_asset",
    "stage_multi_asset",
    "stage_output",
    "step_name",
    "step_tags",
]
