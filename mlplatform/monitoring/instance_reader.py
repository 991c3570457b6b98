"""Read a Dagster instance's run and event storage into the plain records of `history`.

A finished run never changes, so what its event log holds is read once and kept; runs still queued
or going are read again on every call.
"""

import os
import threading
from collections.abc import Iterable
from pathlib import Path

import dagster as dg

from mlplatform.monitoring.history import (
    CheckEvaluation,
    Materialization,
    RunEvents,
    RunRecord,
    StepRecord,
)

PARTITION_TAG = "dagster/partition"
EVENT_TYPES = {
    dg.DagsterEventType.ASSET_CHECK_EVALUATION,
    dg.DagsterEventType.ASSET_MATERIALIZATION,
}


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


def read_runs(instance: dg.DagsterInstance, since: float | None = None) -> list[RunRecord]:
    """Every run in storage (created after `since`, a Unix time, when given), newest first."""
    import datetime as dt

    filters = (
        dg.RunsFilter(created_after=dt.datetime.fromtimestamp(since, tz=dt.UTC))
        if since is not None
        else None
    )
    return [run_record(r) for r in instance.get_run_records(filters=filters)]


def _numeric(value: object) -> float | None:
    raw = getattr(value, "value", value)
    if isinstance(raw, bool):
        return float(raw)
    if isinstance(raw, int | float):
        return float(raw)
    return None


def read_run_events(instance: dg.DagsterInstance, run: RunRecord) -> RunEvents:
    steps = tuple(
        StepRecord(
            run_id=run.run_id,
            job=run.job,
            step=stats.step_key,
            status=stats.status.value if stats.status is not None else None,
            started=stats.start_time,
            ended=stats.end_time,
        )
        for stats in instance.get_run_step_stats(run.run_id)
    )
    checks: list[CheckEvaluation] = []
    materializations: list[Materialization] = []
    for entry in instance.all_logs(run.run_id, of_type=EVENT_TYPES):
        event = entry.dagster_event
        if event is None:
            continue
        if event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            evaluation = event.event_specific_data
            checks.append(
                CheckEvaluation(
                    run_id=run.run_id,
                    asset=evaluation.asset_key.to_user_string(),
                    check=evaluation.check_name,
                    severity=evaluation.severity.value,
                    passed=evaluation.passed,
                    partition=evaluation.partition,
                    timestamp=entry.timestamp,
                    observed=_numeric(evaluation.metadata.get("observed")),
                )
            )
        else:
            materialization = event.step_materialization_data.materialization
            values = {
                key: number
                for key, value in materialization.metadata.items()
                if (number := _numeric(value)) is not None
            }
            materializations.append(
                Materialization(
                    run_id=run.run_id,
                    asset=materialization.asset_key.to_user_string(),
                    partition=materialization.partition,
                    timestamp=entry.timestamp,
                    values=values,
                )
            )
    return RunEvents(steps=steps, checks=tuple(checks), materializations=tuple(materializations))


def last_materializations(instance: dg.DagsterInstance) -> dict[str, float]:
    """Asset -> Unix time of its newest materialization, from the asset index (one query)."""
    latest: dict[str, float] = {}
    for record in instance.get_asset_records():
        entry = record.asset_entry.last_materialization
        if entry is not None:
            latest[record.asset_entry.asset_key.to_user_string()] = entry.timestamp
    return latest


class InstanceHistory:
    """Runs and their events, with the events of finished runs read once and kept."""

    def __init__(self, instance: dg.DagsterInstance) -> None:
        self.instance = instance
        self._finished_events: dict[str, RunEvents] = {}
        self._lock = threading.Lock()

    def runs(self, since: float | None = None) -> list[RunRecord]:
        return read_runs(self.instance, since)

    def events(self, runs: Iterable[RunRecord]) -> dict[str, RunEvents]:
        by_run: dict[str, RunEvents] = {}
        with self._lock:
            for run in runs:
                cached = self._finished_events.get(run.run_id)
                if cached is None:
                    cached = read_run_events(self.instance, run)
                    if run.finished:
                        self._finished_events[run.run_id] = cached
                by_run[run.run_id] = cached
        return by_run
