"""Read a Dagster instance's run and event storage into the plain records of `history`, through
the named queries of `mlplatform.instance_queries`.

Every read is bounded by what its caller shows, not by the instance's history: runs through
storage-side filters (created or updated after a time, a job, unfinished statuses), run totals as
storage-side counts, check evaluations and the newest partitions from the instance's check and
asset indexes, and a run's own event log only for a bounded number of runs. That last read is the
dear one on the SQLite storage of `make dev`: the first read of each run's event-log file checks its
schema revision, tens of milliseconds a run. A finished run never changes, so what its event log
holds is read once and kept while the run stays in the window.
"""

import os
import threading
from collections.abc import Iterable
from pathlib import Path

import dagster as dg

from mlplatform import instance_queries as queries
from mlplatform.monitoring.history import (
    ACTIVE_STATUSES,
    FINISHED_STATUSES,
    QUEUED_STATUSES,
    CheckEvaluation,
    Materialization,
    RunRecord,
    ScoredDayPerformance,
    StepRecord,
)

PARTITION_TAG = queries.PARTITION_TAG
# Evaluated executions of a check compared to find its latest evaluation: executions are numbered
# when planned, and runs of different days may evaluate out of that order.
LATEST_CHECK_CANDIDATES = 10
# Check executions read per query while going back through a window: a small first page (most
# scrapes need only the newest), doubling up to the last size.
FIRST_CHECK_PAGE = 32
LAST_CHECK_PAGE = 512
# How far past a window's start a check's executions are read: longer than any run lasts.
CHECK_SLACK_SECONDS = 86400.0


class InstanceError(RuntimeError):
    """The Dagster instance cannot be found or opened."""


def open_instance(dagster_home: str | None = None) -> dg.DagsterInstance:
    """The instance in `dagster_home` (default: $DAGSTER_HOME), with an error naming what to set."""
    home = dagster_home or os.environ.get("DAGSTER_HOME")
    if not home:
        raise InstanceError(
            "DAGSTER_HOME is not set: point it (or --dagster-home) at the Dagster instance folder "
            "(`make dev` uses .mlplatform/dagster_home)"
        )
    if not Path(home).is_dir():
        raise InstanceError(f"DAGSTER_HOME={home}: not a folder")
    return dg.DagsterInstance.from_config(str(Path(home).resolve()))


def run_record(record: dg.RunRecord) -> RunRecord:
    run = record.dagster_run
    return RunRecord(
        run_id=run.run_id,
        job=run.job_name,
        status=run.status.value,
        partition=run.tags.get(PARTITION_TAG),
        created=record.create_timestamp.timestamp(),
        started=record.start_time,
        ended=record.end_time,
    )


def read_runs(
    instance: dg.DagsterInstance, since: float | None = None, job: str | None = None
) -> list[RunRecord]:
    """The runs created after `since` (a Unix time; every run when None), of `job` when given,
    newest first. Both filters are applied by the run storage."""
    return [run_record(r) for r in queries.run_records_created_since(instance, since, job)]


def read_unfinished_runs(instance: dg.DagsterInstance) -> list[RunRecord]:
    """Runs queued or going, however old: a run stuck for a week is still going."""
    statuses = (*QUEUED_STATUSES, *ACTIVE_STATUSES)
    return [run_record(r) for r in queries.run_records_with_statuses(instance, statuses)]


def read_runs_updated_since(instance: dg.DagsterInstance, since: float) -> list[RunRecord]:
    """Runs whose record changed after `since`: every run that ended since then among them."""
    return [run_record(r) for r in queries.run_records_updated_since(instance, since)]


def count_finished_runs(
    instance: dg.DagsterInstance, jobs: Iterable[str]
) -> dict[tuple[str, str], int]:
    """(job, final status) -> finished runs in the whole instance, counted by the run storage."""
    return {
        (job, status): queries.run_count(instance, job, status)
        for job in sorted(set(jobs))
        for status in FINISHED_STATUSES
    }


def _numeric(value: object) -> float | None:
    raw = getattr(value, "value", value)
    if isinstance(raw, bool):
        return float(raw)
    if isinstance(raw, int | float):
        return float(raw)
    return None


def read_steps(instance: dg.DagsterInstance, run: RunRecord) -> tuple[StepRecord, ...]:
    return tuple(
        StepRecord(
            run_id=run.run_id,
            job=run.job,
            step=stats.step_key,
            status=stats.status.value if stats.status is not None else None,
            started=stats.start_time,
            ended=stats.end_time,
        )
        for stats in queries.step_stats(instance, run.run_id)
    )


def check_evaluation(entry: dg.EventLogEntry) -> CheckEvaluation | None:
    event = entry.dagster_event
    if event is None or event.event_type != dg.DagsterEventType.ASSET_CHECK_EVALUATION:
        return None
    evaluation = event.event_specific_data
    return CheckEvaluation(
        run_id=entry.run_id,
        asset=evaluation.asset_key.to_user_string(),
        check=evaluation.check_name,
        severity=evaluation.severity.value,
        passed=evaluation.passed,
        partition=evaluation.partition,
        timestamp=entry.timestamp,
        observed=_numeric(evaluation.metadata.get("observed")),
        inconclusive=_numeric(evaluation.metadata.get("inconclusive")) == 1.0,
    )


def read_check_evaluations(
    instance: dg.DagsterInstance, run: RunRecord
) -> tuple[CheckEvaluation, ...]:
    """The check evaluations in one run's own event log."""
    entries = queries.check_evaluation_entries(instance, run.run_id)
    return tuple(c for entry in entries if (c := check_evaluation(entry)) is not None)


def check_history(
    instance: dg.DagsterInstance, checks: Iterable[tuple[str, str]], since: float
) -> tuple[list[CheckEvaluation], dict[tuple[str, str], CheckEvaluation]]:
    """From the check index: every evaluation of `checks` made after `since`, and the latest
    evaluation of each however old. Each check's executions are read newest first, in growing
    pages, until one reaches back past `since` by CHECK_SLACK_SECONDS (executions are numbered
    when their run plans them, so one evaluated in the window may sit among slightly older ones);
    executions only planned have no outcome."""
    in_window: list[CheckEvaluation] = []
    latest: dict[tuple[str, str], CheckEvaluation] = {}
    for asset, name in sorted(set(checks)):
        key = dg.AssetKey.from_user_string(asset)
        cursor, page_size = None, FIRST_CHECK_PAGE
        newest: list[CheckEvaluation] = []
        while True:
            records = queries.completed_check_executions(
                instance, key, name, limit=page_size, cursor=cursor
            )
            page = [c for r in records if r.event is not None and (c := check_evaluation(r.event))]
            newest += page[: max(0, LATEST_CHECK_CANDIDATES - len(newest))]
            in_window += [c for c in page if c.timestamp >= since]
            reached_back = any(c.timestamp < since - CHECK_SLACK_SECONDS for c in page)
            if reached_back or len(records) < page_size:
                break
            cursor, page_size = records[-1].id, min(2 * page_size, LAST_CHECK_PAGE)
        if newest:
            latest[(asset, name)] = max(newest, key=lambda c: c.timestamp)
    return in_window, latest


def newest_partition_materializations(
    instance: dg.DagsterInstance, partitions_kept: int
) -> list[Materialization]:
    """For each asset, the latest materialization of each of its newest `partitions_kept`
    partitions (partition keys sorted, the newest last), from the asset index
    (`instance_queries.latest_partition_materializations`)."""
    found: list[Materialization] = []
    for key in queries.asset_keys(instance):
        records = queries.latest_partition_materializations(instance, key, partitions_kept)
        for event_record in records:
            entry = event_record.event_log_entry
            materialization = entry.asset_materialization
            if materialization is None:
                continue
            found.append(
                Materialization(
                    run_id=entry.run_id,
                    asset=key.to_user_string(),
                    partition=materialization.partition,
                    timestamp=entry.timestamp,
                    values={
                        name: number
                        for name, value in materialization.metadata.items()
                        if (number := _numeric(value)) is not None
                    },
                )
            )
    return found


def newest_scored_day_performance(
    instance: dg.DagsterInstance, partitions_kept: int, asset: str = "model_performance"
) -> list[ScoredDayPerformance]:
    """The latest materialization of each of the newest `partitions_kept` scored days of the
    realized-performance asset, from the asset index as `newest_partition_materializations` reads
    them. A day that names no model version (nothing scored) is left out."""
    records = queries.latest_partition_materializations(
        instance, dg.AssetKey(asset), partitions_kept
    )
    found = []
    for event_record in records:
        entry = event_record.event_log_entry
        materialization = entry.asset_materialization
        if materialization is None or materialization.partition is None:
            continue
        metadata = materialization.metadata
        version = getattr(metadata.get("model_version"), "value", None)
        if not isinstance(version, str) or version in ("", "none"):
            continue
        verdicts = getattr(metadata.get("live_verdicts"), "value", None)
        found.append(
            ScoredDayPerformance(
                model=str(getattr(metadata.get("model_name"), "value", "")),
                day=materialization.partition,
                version=version,
                timestamp=entry.timestamp,
                values={
                    name: number
                    for name, value in metadata.items()
                    if (number := _numeric(value)) is not None
                },
                verdicts={
                    str(role): {str(k): str(v) for k, v in evidence.items()}
                    for role, evidence in (verdicts or {}).items()
                    if isinstance(evidence, dict)
                },
            )
        )
    return found


def last_materializations(instance: dg.DagsterInstance) -> dict[str, float]:
    """Asset -> Unix time of its newest materialization, from the asset index (one query)."""
    return {
        key.to_user_string(): timestamp
        for key, timestamp in queries.last_materialization_times(instance).items()
    }


class InstanceHistory:
    """The instance, and the steps of finished runs, read once from each run's event log and kept
    until the run is no longer asked for."""

    def __init__(self, instance: dg.DagsterInstance) -> None:
        self.instance = instance
        self._finished_steps: dict[str, tuple[StepRecord, ...]] = {}
        self._lock = threading.Lock()

    def steps(self, runs: Iterable[RunRecord]) -> dict[str, tuple[StepRecord, ...]]:
        """The steps of `runs`; runs not among them are forgotten."""
        by_run: dict[str, tuple[StepRecord, ...]] = {}
        with self._lock:
            for run in runs:
                cached = self._finished_steps.get(run.run_id)
                if cached is None:
                    cached = read_steps(self.instance, run)
                    if run.finished:
                        self._finished_steps[run.run_id] = cached
                by_run[run.run_id] = cached
            self._finished_steps = {
                run_id: steps for run_id, steps in self._finished_steps.items() if run_id in by_run
            }
        return by_run
