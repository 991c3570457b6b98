"""One run's plan and its own event log: planned steps, step events, materializations, check
evaluations, step statistics."""

from collections.abc import Iterable, Sequence
from typing import Any

import dagster as dg


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


def run_events(
    instance: dg.DagsterInstance, run_id: str, event_type: dg.DagsterEventType
) -> Sequence[dg.EventLogEntry]:
    """The events of `event_type` in run `run_id`'s own event log, in the order they happened."""
    return instance.all_logs(run_id, of_type=event_type)


def last_run_event_record(
    instance: dg.DagsterInstance, run_id: str, event_type: dg.DagsterEventType
) -> dg.EventLogRecord | None:
    """The record (with its storage id and time) of the last event of `event_type` in run
    `run_id`'s event log, or None."""
    records = instance.get_records_for_run(
        run_id, of_type=event_type, ascending=False, limit=1
    ).records
    return records[0] if records else None


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
