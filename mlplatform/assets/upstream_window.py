"""The state of each day of an asset's trailing upstream window, read from the Dagster instance:
what is materialized and passed its gates, and what a queued or running run, a run about to be
retried or a backfill in progress is still to write. Files on disk cannot tell a day that failed
from one whose run has not started yet; the instance can."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import dagster as dg

from mlplatform.checks.gate_history import failed_blocking_checks
from mlplatform.core.window import DayState, WindowStatus, window_days
from mlplatform.instance_queries import (
    NOT_FINISHED_STATUSES,
    PARTITION_RANGE_END_TAG,
    PARTITION_RANGE_START_TAG,
    PARTITION_TAG,
    asset_backfill_partitions_to_come,
    backfill_has_run_of_partition,
    materialized_partitions,
    requested_backfills,
    runs_waiting_for_retry,
    unfinished_runs,
)
from mlplatform.stages import day_of_partition_key, partition_key_of

# Failed runs that may still be waiting for their automatic retry: the newest are enough, a retry
# is created within seconds of its run's failure.
_RECENT_FAILED_RUNS = 100


def window_status(
    context: dg.AssetExecutionContext,
    upstream: str,
    day: dt.date,
    window: int,
    gated_assets: Iterable[str],
    loaded_days: Iterable[dt.date] = (),
) -> WindowStatus:
    """Each day of the `window` days of `upstream` ending on `day`. A day is left out when a
    blocking gate of one of `gated_assets` failed on it. `loaded_days`, found in the data already
    loaded, count as written even when this instance holds no record of them (an ephemeral
    instance, or one created after the data). The instance knows days by their partition keys;
    they are turned into keys here, for its questions only."""
    instance = context.instance
    asset_key = dg.AssetKey(upstream)
    first = day_of_partition_key(context.assets_def.partitions_def.get_first_partition_key())
    days = window_days(day, window)
    keys = {each: partition_key_of(each) for each in days if each >= first}
    recorded = materialized_partitions(instance, upstream, list(keys.values()))
    materialized = {each for each, key in keys.items() if key in recorded} | set(loaded_days)
    writers = _pending_writers(
        context, asset_key, {key for each, key in keys.items() if each not in materialized}
    )
    states: dict[dt.date, DayState] = {}
    reasons: dict[dt.date, str] = {}
    for each in days:
        if each not in keys:
            states[each] = DayState.BEFORE_START
            continue
        failed = [
            gate
            for asset in gated_assets
            for gate in failed_blocking_checks(instance, asset, keys[each])
        ]
        if each in materialized and not failed:
            states[each] = DayState.INCLUDED
        elif failed:
            states[each], reasons[each] = DayState.FAILED_GATES, ", ".join(failed)
        elif keys[each] in writers:
            states[each], reasons[each] = DayState.PENDING, writers[keys[each]]
        else:
            states[each] = DayState.MISSING
    return WindowStatus(states, reasons)


def _pending_writers(
    context: dg.AssetExecutionContext, key: dg.AssetKey, days: set[str]
) -> dict[str, str]:
    """For each of `days` (partition keys) that something is still to write: what (a run, a
    backfill)."""
    if not days:
        return {}
    instance = context.instance
    writers: dict[str, str] = {}
    unfinished = unfinished_runs(instance)
    to_retry = [r.dagster_run for r in runs_waiting_for_retry(instance, _RECENT_FAILED_RUNS)]
    for run in [*unfinished, *to_retry]:
        if run.run_id == context.run_id or not _targets(context, run, key):
            continue
        what = (
            f"run {run.run_id[:8]} ({run.status.value})"
            if run.status in NOT_FINISHED_STATUSES
            else f"the retry of run {run.run_id[:8]}"
        )
        for day in _run_partitions(run, days):
            writers.setdefault(day, what)
    for backfill in requested_backfills(instance):
        for day in _backfill_partitions_to_come(context, backfill, key, days - writers.keys()):
            writers[day] = f"backfill {backfill.backfill_id}"
    return writers


def _targets(context: dg.AssetExecutionContext, run: dg.DagsterRun, key: dg.AssetKey) -> bool:
    if run.asset_selection is not None:
        return key in run.asset_selection
    repository = context.repository_def
    return repository.has_job(run.job_name) and key in _job_assets(repository, run.job_name)


def _job_assets(repository: dg.RepositoryDefinition, job_name: str) -> set[dg.AssetKey]:
    return set(repository.get_job(job_name).asset_layer.executable_asset_keys)


def _run_partitions(run: dg.DagsterRun, days: set[str]) -> list[str]:
    if (partition := run.tags.get(PARTITION_TAG)) is not None:
        return [partition] if partition in days else []
    first, last = run.tags.get(PARTITION_RANGE_START_TAG), run.tags.get(PARTITION_RANGE_END_TAG)
    if first is None or last is None:
        return []
    return [day for day in days if first <= day <= last]


def _backfill_partitions_to_come(
    context: dg.AssetExecutionContext, backfill, key: dg.AssetKey, days: set[str]
) -> list[str]:
    """Days of `days` a backfill in progress targets for `key` and has neither written nor given up
    on (its runs that exist are unfinished runs, counted above, or finished ones)."""
    if not days:
        return []
    if backfill.is_asset_backfill:
        try:
            return asset_backfill_partitions_to_come(
                backfill, context.repository_def.asset_graph, key, sorted(days)
            )
        except Exception as error:  # a backfill of definitions that have since changed
            context.log.warning(f"backfill {backfill.backfill_id} not readable: {error}")
            return []
    job_name = backfill.job_name
    repository = context.repository_def
    if not job_name or not repository.has_job(job_name):
        return []
    if backfill.asset_selection is not None and key not in backfill.asset_selection:
        return []
    if backfill.asset_selection is None and key not in _job_assets(repository, job_name):
        return []
    return [
        day
        for day in days
        if day in (backfill.partition_names or [])
        and not backfill_has_run_of_partition(context.instance, backfill.backfill_id, day)
    ]
