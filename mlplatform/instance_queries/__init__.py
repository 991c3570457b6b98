"""Every question the platform asks Dagster's instance, each a named query.

Assets, checks, sensors, resources, the run launcher, monitoring, reports and `mlplatform
recover` read the instance (its runs, event log, check history, backfills, run launcher) through
these functions and nowhere else; import them from here. Dagster's public API answers most of
them; where it has no public name (a check's history for one partition, a backfill's status, what
a run launcher says of a run's worker), the name comes from `dagster_internals`, the one module of
mlplatform/ that imports Dagster's private modules (the step preload aside), so that a Dagster
upgrade that moves one breaks that module and the tests of these queries
(mlplatform_tests/test_instance_queries.py), not the platform's layers one by one.

Imports nothing but Dagster: the run launcher (loaded with the instance) and the log formatter
(loaded by dagster.yaml) use it, and neither may load the settings.
"""

from mlplatform.instance_queries.backfills import (
    asset_backfill_partitions_to_come,
    backfill_has_run_of_partition,
    backfill_status,
    requested_backfills,
)
from mlplatform.instance_queries.check_history import (
    check_execution_failed,
    check_execution_passed,
    completed_check_executions,
)
from mlplatform.instance_queries.dagster_internals import (
    CheckRunHealthResult,
    CheckStatus,
    WorkerStatus,
)
from mlplatform.instance_queries.materializations import (
    asset_keys,
    last_materialization_times,
    latest_materialization,
    latest_partition_materializations,
    materialization_metadata_of_run,
    materializations_after,
    materializations_of_partitions,
    materialized_partitions,
)
from mlplatform.instance_queries.run_logs import (
    assets_materialized_in_run,
    check_evaluation_entries,
    last_run_event_record,
    last_step_events,
    planned_steps,
    run_events,
    step_stats,
)
from mlplatform.instance_queries.runs import (
    job_has_runs,
    live_run_records,
    newest_finished_run_record,
    newest_run_status_change_id,
    run_count,
    run_group,
    run_records_created_since,
    run_records_updated_since,
    run_records_with_statuses,
    run_status_changes_after,
    run_tagged,
    runs_by_id,
    runs_waiting_for_retry,
    unfinished_runs,
)
from mlplatform.instance_queries.tags import (
    AUTO_RETRY_RUN_ID_TAG,
    BACKFILL_ID_TAG,
    FINISHED_STATUSES,
    LIVE_STATUSES,
    MAX_RETRIES_TAG,
    MAX_RUNTIME_TAG,
    NOT_FINISHED_STATUSES,
    PARTITION_RANGE_END_TAG,
    PARTITION_RANGE_START_TAG,
    PARTITION_TAG,
    WILL_RETRY_TAG,
)
from mlplatform.instance_queries.workers import (
    RunWorker,
    WorkerHealthUnknown,
    earlier_live_run_of_partition,
    run_worker,
    runs_with_dead_workers,
    worker_known_dead,
)

__all__ = [
    "AUTO_RETRY_RUN_ID_TAG",
    "BACKFILL_ID_TAG",
    "FINISHED_STATUSES",
    "LIVE_STATUSES",
    "MAX_RETRIES_TAG",
    "MAX_RUNTIME_TAG",
    "NOT_FINISHED_STATUSES",
    "PARTITION_RANGE_END_TAG",
    "PARTITION_RANGE_START_TAG",
    "PARTITION_TAG",
    "WILL_RETRY_TAG",
    "CheckRunHealthResult",
    "CheckStatus",
    "RunWorker",
    "WorkerHealthUnknown",
    "WorkerStatus",
    "asset_backfill_partitions_to_come",
    "asset_keys",
    "assets_materialized_in_run",
    "backfill_has_run_of_partition",
    "backfill_status",
    "check_evaluation_entries",
    "check_execution_failed",
    "check_execution_passed",
    "completed_check_executions",
    "earlier_live_run_of_partition",
    "job_has_runs",
    "last_materialization_times",
    "last_run_event_record",
    "last_step_events",
    "latest_materialization",
    "latest_partition_materializations",
    "live_run_records",
    "materialization_metadata_of_run",
    "materializations_after",
    "materializations_of_partitions",
    "materialized_partitions",
    "newest_finished_run_record",
    "newest_run_status_change_id",
    "planned_steps",
    "requested_backfills",
    "run_count",
    "run_events",
    "run_group",
    "run_records_created_since",
    "run_records_updated_since",
    "run_records_with_statuses",
    "run_status_changes_after",
    "run_tagged",
    "run_worker",
    "runs_by_id",
    "runs_waiting_for_retry",
    "runs_with_dead_workers",
    "step_stats",
    "unfinished_runs",
    "worker_known_dead",
]
