"""Run workers: the process that runs a run, what the run launcher says of it, and the partition
guard's question (an earlier live run of the same day whose worker is not known to be dead)."""

from typing import Any, NamedTuple

import dagster as dg

from mlplatform.instance_queries.dagster_internals import CheckRunHealthResult, WorkerStatus
from mlplatform.instance_queries.runs import live_run_records
from mlplatform.instance_queries.tags import PARTITION_TAG


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
