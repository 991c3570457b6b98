"""Runs: by status, time, job, tag and id; a run's group; run status changes."""

import datetime as dt
from collections.abc import Iterable, Sequence

import dagster as dg

from mlplatform.instance_queries.tags import (
    AUTO_RETRY_RUN_ID_TAG,
    LIVE_STATUSES,
    NOT_FINISHED_STATUSES,
    PARTITION_TAG,
    WILL_RETRY_TAG,
)


def _utc(timestamp: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(timestamp, tz=dt.UTC)


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


def runs_by_id(instance: dg.DagsterInstance, run_ids: Iterable[str]) -> dict[str, dg.DagsterRun]:
    """The runs of `run_ids` the instance holds, by id (one query)."""
    wanted = list(set(run_ids))
    if not wanted:
        return {}
    return {run.run_id: run for run in instance.get_runs(dg.RunsFilter(run_ids=wanted))}


def run_status_changes_after(
    instance: dg.DagsterInstance, event_type: dg.DagsterEventType, after: int, limit: int
) -> Sequence[dg.EventLogRecord]:
    """The first `limit` run status events of `event_type` (RUN_FAILURE, RUN_SUCCESS...) stored
    after storage id `after`, of every run, oldest first: a cursor's way through them."""
    return instance.fetch_run_status_changes(
        dg.RunStatusChangeRecordsFilter(event_type=event_type, after_storage_id=after),
        limit=limit,
        ascending=True,
    ).records


def newest_run_status_change_id(
    instance: dg.DagsterInstance, event_types: Iterable[dg.DagsterEventType]
) -> int:
    """The storage id of the newest run status event of any of `event_types` (0: none yet)."""
    newest = [
        records[0].storage_id
        for kind in event_types
        if (records := instance.fetch_run_status_changes(kind, limit=1).records)
    ]
    return max(newest, default=0)


def run_tagged(instance: dg.DagsterInstance, tags: dict[str, str]) -> dg.DagsterRun | None:
    """The newest run carrying all of `tags`, or None."""
    runs = instance.get_runs(dg.RunsFilter(tags=tags), limit=1)
    return runs[0] if runs else None
