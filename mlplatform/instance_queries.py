"""Every question the platform asks Dagster's instance, each a named query.

Assets, checks, sensors, resources, the run launcher, monitoring and `mlplatform recover` read the
instance (its runs, event log, check history, backfills, run launcher) through these functions and
nowhere else. Dagster's public API answers most of them; where it has no public name (a check's
history for one partition, a backfill's status, what a run launcher says of a run's worker), the
private module is imported here and only here (and in the step preload), so that a Dagster upgrade
that moves one breaks this module and its tests (mlplatform_tests/test_instance_queries.py), not
the platform's layers one by one.

Imports nothing but Dagster: the run launcher (loaded with the instance) and the log formatter
(loaded by dagster.yaml) use it, and neither may load the settings.
"""

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import dagster as dg
from dagster._core.definitions.events import AssetKeyPartitionKey
from dagster._core.event_api import PartitionKeyFilter
from dagster._core.execution.backfill import BulkActionsFilter, BulkActionStatus
from dagster._core.launcher import CheckRunHealthResult, WorkerStatus
from dagster._core.storage.asset_check_execution_record import (
    AssetCheckExecutionRecordStatus as CheckStatus,
)

# Run tags Dagster sets (dagster._core.storage.tags has no public name for them): their strings,
# stable across releases because stored runs carry them.
PARTITION_TAG = "dagster/partition"
PARTITION_RANGE_START_TAG = "dagster/asset_partition_range_start"
PARTITION_RANGE_END_TAG = "dagster/asset_partition_range_end"
BACKFILL_ID_TAG = "dagster/backfill"
WILL_RETRY_TAG = "dagster/will_retry"
AUTO_RETRY_RUN_ID_TAG = "dagster/auto_retry_run_id"
MAX_RETRIES_TAG = "dagster/max_retries"
MAX_RUNTIME_TAG = "dagster/max_runtime"

# Queued or going: Dagster's NOT_FINISHED_STATUSES (dagster._core.storage.dagster_run).
NOT_FINISHED_STATUSES = (
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.SUSPENDED,
    dg.DagsterRunStatus.CANCELING,
)
FINISHED_STATUSES = (
    dg.DagsterRunStatus.SUCCESS,
    dg.DagsterRunStatus.FAILURE,
    dg.DagsterRunStatus.CANCELED,
)
# Handed to a worker that has not ended it: what run monitoring watches.
LIVE_STATUSES = (
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
)
# A check execution that has an outcome (planned and skipped ones have none).
_COMPLETED_CHECK_STATUSES = frozenset({CheckStatus.SUCCEEDED, CheckStatus.FAILED})


def _utc(timestamp: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(timestamp, tz=dt.UTC)


# Runs ---------------------------------------------------------------------------------------------


def unfinished_runs(instance: dg.DagsterInstance) -> Sequence[dg.DagsterRun]:
    """Every run queued or going (NOT_FINISHED_STATUSES), however old, newest first."""
    return instance.get_runs(dg.RunsFilter(statuses=list(NOT_FINISHED_STATUSES)))


def live_run_records(
    instance: dg.DagsterInstance, partition: str | None = None
) -> Sequence[dg.RunRecord]:
    """The records of the runs handed to a worker and not ended (LIVE_STATUSES), of one partition
    when `partition` is given, newest first."""
    tags = {PARTITION_TAG: partition} if partition is not None else None
    return instance.get_run_records(dg.RunsFilter(statuses=list(LIVE_STATUSES), tags=tags))


def run_records_created_since(
    instance: dg.DagsterInstance, since: float | None = None, job: str | None = None
) -> Sequence[dg.RunRecord]:
    """The records of the runs created after `since` (a Unix time; every run when None), of `job`
    when given, newest first. Both filters are applied by the run storage."""
    created_after = _utc(since) if since is not None else None
    return instance.get_run_records(dg.RunsFilter(created_after=created_after, job_name=job))


def run_records_updated_since(instance: dg.DagsterInstance, since: float) -> Sequence[dg.RunRecord]:
    """The records of the runs whose record changed after `since` (a Unix time): every run that
    ended since then among them."""
    return instance.get_run_records(dg.RunsFilter(updated_after=_utc(since)))


def run_records_with_statuses(
    instance: dg.DagsterInstance, statuses: Iterable[str]
) -> Sequence[dg.RunRecord]:
    """The records of every run in one of `statuses` (DagsterRunStatus values), however old."""
    wanted = [dg.DagsterRunStatus(status) for status in statuses]
    return instance.get_run_records(dg.RunsFilter(statuses=wanted))


def run_count(instance: dg.DagsterInstance, job: str, status: str) -> int:
    """How many runs of `job` the instance holds in `status` (a DagsterRunStatus value), counted
    by the run storage."""
    return instance.get_runs_count(
        dg.RunsFilter(job_name=job, statuses=[dg.DagsterRunStatus(status)])
    )


def newest_finished_run_record(instance: dg.DagsterInstance, job: str) -> dg.RunRecord | None:
    """The record of the newest run of `job` that has finished (succeeded, failed or was
    cancelled), or None."""
    finished = [
        dg.DagsterRunStatus.SUCCESS,
        dg.DagsterRunStatus.FAILURE,
        dg.DagsterRunStatus.CANCELED,
    ]
    records = instance.get_run_records(
        dg.RunsFilter(job_name=job, statuses=finished), limit=1, order_by="create_timestamp"
    )
    return records[0] if records else None


def job_has_runs(instance: dg.DagsterInstance, job: str) -> bool:
    """Whether the instance holds any run of `job`."""
    return bool(instance.get_run_ids(dg.RunsFilter(job_name=job), limit=1))


def runs_waiting_for_retry(
    instance: dg.DagsterInstance, limit: int, updated_after: float | None = None
) -> list[dg.RunRecord]:
    """Failed runs Dagster said it would retry (`dagster/will_retry`) whose retry it has not
    recorded launching (no `dagster/auto_retry_run_id`): among the `limit` newest failed runs to
    be retried (changed after `updated_after`, a Unix time, when given), newest first."""
    records = instance.get_run_records(
        dg.RunsFilter(
            statuses=[dg.DagsterRunStatus.FAILURE],
            tags={WILL_RETRY_TAG: "true"},
            updated_after=_utc(updated_after) if updated_after is not None else None,
        ),
        limit=limit,
    )
    return [record for record in records if AUTO_RETRY_RUN_ID_TAG not in record.dagster_run.tags]


def run_group(instance: dg.DagsterInstance, run_id: str) -> list[dg.DagsterRun]:
    """The runs of `run_id`'s group: the run it re-executes (if any), it, and every retry or
    re-execution of those; empty when the run is unknown."""
    try:
        group = instance.get_run_group(run_id)
    except dg.DagsterRunNotFoundError:
        return []
    return list(group[1]) if group else []


def run_tagged(instance: dg.DagsterInstance, tags: dict[str, str]) -> dg.DagsterRun | None:
    """The newest run carrying all of `tags`, or None."""
    runs = instance.get_runs(dg.RunsFilter(tags=tags), limit=1)
    return runs[0] if runs else None


def earlier_live_run_of_partition(
    instance: dg.DagsterInstance, run: dg.DagsterRun
) -> dg.DagsterRun | None:
    """The live run (starting, started, cancelling) of `run`'s partition that was created before
    it and overlaps its assets (a run without an asset selection covers all), whose worker is not
    known to be dead; None when there is none or `run` is not of one partition."""
    partition = run.tags.get(PARTITION_TAG)
    if partition is None:
        return None
    records = live_run_records(instance, partition)
    own = instance.get_run_record_by_id(run.run_id)
    own_key = (own.create_timestamp, run.run_id) if own is not None else None
    for record in sorted(records, key=lambda r: (r.create_timestamp, r.dagster_run.run_id)):
        other = record.dagster_run
        if other.run_id == run.run_id:
            continue
        if own_key is not None and (record.create_timestamp, other.run_id) > own_key:
            continue  # it came second: it is the one to refuse
        if not _assets_overlap(run.asset_selection, other.asset_selection):
            continue
        if worker_known_dead(instance, other):
            continue
        return other
    return None


def _assets_overlap(ours: Any, theirs: Any) -> bool:
    return ours is None or theirs is None or bool(set(ours) & set(theirs))


# Run workers --------------------------------------------------------------------------------------


class RunWorker(NamedTuple):
    pid: int
    started_at: float


def run_worker(instance: dg.DagsterInstance, run_id: str) -> RunWorker | None:
    """The process that runs `run_id`: the one that reported its start, from the run's RUN_START
    event (None before it has)."""
    records = instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.RUN_START, limit=1
    ).records
    for record in records:
        event = record.event_log_entry
        if event.dagster_event is not None and event.dagster_event.pid is not None:
            return RunWorker(event.dagster_event.pid, event.timestamp)
    return None


class WorkerHealthUnknown(RuntimeError):
    """The instance's run launcher cannot tell whether a run's worker lives."""


def runs_with_dead_workers(
    instance: dg.DagsterInstance,
) -> list[tuple[dg.DagsterRun, CheckRunHealthResult]]:
    """The live runs whose worker the instance's run launcher reports gone (failed, or not found),
    each with what the launcher said. Raises WorkerHealthUnknown when the launcher cannot tell."""
    launcher = instance.run_launcher
    if not launcher.supports_check_run_worker_health:
        raise WorkerHealthUnknown(
            f"the instance's run launcher ({type(launcher).__name__}) cannot tell whether a run's "
            "worker lives: dagster.yaml should name mlplatform.automation.run_launcher"
        )
    gone = []
    for record in live_run_records(instance):
        health = launcher.check_run_worker_health(record.dagster_run)
        if health.status in (WorkerStatus.FAILED, WorkerStatus.NOT_FOUND):
            gone.append((record.dagster_run, health))
    return gone


def worker_known_dead(instance: dg.DagsterInstance, run: dg.DagsterRun) -> bool:
    """Whether the instance's run launcher says the worker of `run` (STARTED) is not running; False
    when it cannot tell (a launcher without health checks, or one that fails to answer)."""
    launcher = instance.run_launcher
    if run.status != dg.DagsterRunStatus.STARTED or not launcher.supports_check_run_worker_health:
        return False
    try:
        health = launcher.check_run_worker_health(run)
    except Exception:  # a launcher that cannot tell (no Docker socket here, say): trust the status
        return False
    return health.status not in (WorkerStatus.RUNNING, WorkerStatus.SUCCESS)


# A run's plan and events --------------------------------------------------------------------------


def planned_steps(instance: dg.DagsterInstance, run: dg.DagsterRun) -> dict[str, Any]:
    """The steps `run`'s whole plan executes (ExecutionStepSnaps: key, tags, inputs, entity keys),
    by step key; empty when the run has no plan. A step process's own plan holds that step alone:
    this is the run's."""
    if not run.execution_plan_snapshot_id:
        return {}
    plan = instance.get_execution_plan_snapshot(run.execution_plan_snapshot_id)
    return {step.key: step for step in plan.steps if step.key in plan.step_keys_to_execute}


def last_step_events(
    instance: dg.DagsterInstance, run_id: str, event_types: Iterable[dg.DagsterEventType]
) -> dict[str, str]:
    """Each step's last event among `event_types` in run `run_id`, by step key (its
    DagsterEventType value)."""
    last: dict[str, str] = {}
    for entry in instance.all_logs(run_id, of_type=set(event_types)):
        if entry.step_key is not None and entry.dagster_event_type is not None:
            last[entry.step_key] = entry.dagster_event_type.value
    return last


def assets_materialized_in_run(instance: dg.DagsterInstance, run_id: str) -> set[dg.AssetKey]:
    """The assets run `run_id` materialized (any partition)."""
    return {
        entry.dagster_event.asset_key
        for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
        if entry.dagster_event is not None and entry.dagster_event.asset_key is not None
    }


def check_evaluation_entries(instance: dg.DagsterInstance, run_id: str) -> list[dg.EventLogEntry]:
    """The check evaluations in run `run_id`'s own event log, in the order they happened."""
    records = instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
    ).records
    return [record.event_log_entry for record in records]


def step_stats(instance: dg.DagsterInstance, run_id: str) -> Sequence[Any]:
    """Each step of run `run_id` with its status, start and end (RunStepKeyStatsSnapshot)."""
    return instance.get_run_step_stats(run_id)


# Asset checks -------------------------------------------------------------------------------------


def completed_check_executions(
    instance: dg.DagsterInstance,
    asset: str | dg.AssetKey,
    check: str,
    partition: str | None = None,
    limit: int = 100,
    cursor: int | None = None,
) -> list[Any]:
    """The `limit` newest executions of a check that have an outcome (passed or failed; planned
    and skipped ones have none), of one partition when given, older than the execution `cursor`
    (a record id) when given: AssetCheckExecutionRecords (`status`, `partition`, `event`, `id`),
    newest first. The partition is filtered in storage: taking the newest N over all partitions and
    filtering afterwards misses a day once N newer days were checked."""
    key = dg.AssetKey.from_user_string(asset) if isinstance(asset, str) else asset
    return list(
        instance.event_log_storage.get_asset_check_execution_history(
            dg.AssetCheckKey(key, check),
            limit=limit,
            cursor=cursor,
            status=set(_COMPLETED_CHECK_STATUSES),
            partition_filter=None if partition is None else PartitionKeyFilter(key=partition),
        )
    )


def check_execution_failed(record: Any) -> bool:
    """Whether a check execution record (of `completed_check_executions`) failed."""
    return record.status == CheckStatus.FAILED


def check_execution_passed(record: Any) -> bool:
    """Whether a check execution record (of `completed_check_executions`) passed."""
    return record.status == CheckStatus.SUCCEEDED


# Materializations ---------------------------------------------------------------------------------


def materialized_partitions(
    instance: dg.DagsterInstance, asset: str, partitions: Iterable[str] | None = None
) -> set[str]:
    """The partitions of `asset` (of `partitions`, when given: one grouped query of the asset's
    partition index) materialized at least once."""
    if partitions is None:
        return set(instance.get_materialized_partitions(dg.AssetKey(asset)))
    latest_ids = instance.get_latest_storage_id_by_partition(
        dg.AssetKey(asset), dg.DagsterEventType.ASSET_MATERIALIZATION, partitions=set(partitions)
    )
    return set(latest_ids)


def latest_materialization(
    instance: dg.DagsterInstance, asset: str, partition: str | None = None
) -> dg.EventLogRecord | None:
    """The newest materialization of `asset` (of its `partition`, when given), or None."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(
            asset_key=dg.AssetKey(asset),
            asset_partitions=[partition] if partition is not None else None,
        ),
        limit=1,
    ).records
    return records[0] if records else None


def materializations_of_partitions(
    instance: dg.DagsterInstance, asset: str, partitions: Iterable[str], limit: int
) -> Sequence[dg.EventLogRecord]:
    """The `limit` newest materializations of `asset` in any of `partitions`, newest first."""
    return instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=sorted(partitions)),
        limit=limit,
    ).records


def materializations_after(
    instance: dg.DagsterInstance, asset: str, after_storage_id: int | None, limit: int
) -> Sequence[dg.EventLogRecord]:
    """The first `limit` materializations of `asset` stored after `after_storage_id` (all, from
    the first, when None), oldest first: a cursor's way through them."""
    return instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), after_storage_id=after_storage_id),
        limit=limit,
        ascending=True,
    ).records


def materialization_metadata_of_run(
    instance: dg.DagsterInstance, asset: str, run_id: str, among_newest: int = 20
) -> dict[str, Any] | None:
    """The metadata (plain values) of the materialization of `asset` by run `run_id`, looked for
    among the asset's `among_newest` newest materializations; None when not there."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset)), limit=among_newest
    ).records
    for record in records:
        if record.run_id == run_id and record.asset_materialization is not None:
            return {k: v.value for k, v in record.asset_materialization.metadata.items()}
    return None


def latest_partition_materializations(
    instance: dg.DagsterInstance, key: dg.AssetKey, newest: int
) -> Sequence[dg.EventLogRecord]:
    """The latest materialization of each of the `newest` newest partitions of `key` (partition
    keys sorted), from the asset index: the storage id of each partition's latest materialization
    (one grouped query), then those records only."""
    latest_ids = instance.get_latest_storage_id_by_partition(
        key, dg.DagsterEventType.ASSET_MATERIALIZATION
    )
    kept = sorted(latest_ids, reverse=True)[:newest]
    if not kept:
        return []
    return instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, storage_ids=[latest_ids[p] for p in kept]),
        limit=len(kept),
    ).records


def asset_keys(instance: dg.DagsterInstance) -> list[dg.AssetKey]:
    """Every asset the instance holds a record of, from the asset index."""
    return [record.asset_entry.asset_key for record in instance.get_asset_records()]


def last_materialization_times(instance: dg.DagsterInstance) -> dict[dg.AssetKey, float]:
    """Asset -> Unix time of its newest materialization, from the asset index (one query)."""
    latest: dict[dg.AssetKey, float] = {}
    for record in instance.get_asset_records():
        entry = record.asset_entry.last_materialization
        if entry is not None:
            latest[record.asset_entry.asset_key] = entry.timestamp
    return latest


# Backfills ----------------------------------------------------------------------------------------


def requested_backfills(instance: dg.DagsterInstance) -> Sequence[Any]:
    """The backfills in progress (REQUESTED: still submitting or waiting for their runs)."""
    return instance.get_backfills(filters=BulkActionsFilter(statuses=[BulkActionStatus.REQUESTED]))


def backfill_status(instance: dg.DagsterInstance, backfill_id: str) -> str | None:
    """The status of a backfill (a BulkActionStatus value: REQUESTED, COMPLETED_SUCCESS,
    CANCELED...), or None when the instance holds no such backfill."""
    backfill = instance.get_backfill(backfill_id)
    return backfill.status.value if backfill is not None else None


def backfill_has_run_of_partition(
    instance: dg.DagsterInstance, backfill_id: str, partition: str
) -> bool:
    """Whether backfill `backfill_id` has created a run of `partition`."""
    tags = {BACKFILL_ID_TAG: backfill_id, PARTITION_TAG: partition}
    return bool(instance.get_run_ids(dg.RunsFilter(tags=tags), limit=1))


def asset_backfill_partitions_to_come(
    backfill: Any, asset_graph: Any, key: dg.AssetKey, partitions: Iterable[str]
) -> list[str]:
    """The `partitions` of `key` an asset backfill targets and has neither materialized nor given
    up on (failed, or downstream of a failure). Raises when the backfill cannot be read against
    `asset_graph` (its definitions have changed since)."""
    data = backfill.get_asset_backfill_data(asset_graph)
    return [
        partition
        for partition in partitions
        if (target := AssetKeyPartitionKey(key, partition)) in data.target_subset
        and target not in data.materialized_subset
        and target not in data.failed_and_downstream_subset
    ]
