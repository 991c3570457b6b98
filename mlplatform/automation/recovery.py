"""What a crashed run leaves behind, cleaned up once Dagster knows it ended.

A step killed outright (kill -9, a lost container) cannot end its MLflow run: it stays RUNNING,
and its model and metrics look like work in progress for ever. When its Dagster run ends as
failed or cancelled (including a run marked failed by run monitoring because its worker is
gone), these sensors end the MLflow runs it left open: FAILED for a failure, KILLED for a
cancellation. Every code location's runs and ad-hoc ones (`dagster asset materialize`) alike.

A failed run Dagster said it would retry but did not retry is retried all the same
(`stalled_retry_recovery`): reported failed again when Dagster's daemon only missed it, re-executed
by the sensor when Dagster refuses it (a run of a backfill that has ended), or announced when no
retry may come.

The other leftovers are handled where they arise: pool slots by run monitoring
(`free_slots_after_run_end_seconds`, dagster.yaml), temporary files by the IO manager before each
write, the partition by the next run (resources/io_managers.py, resources/mlflow.py).
"""

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import dagster as dg

from mlplatform.automation.failure_alerts import in_this_code_location
from mlplatform.automation.jobs import retraining, training_pipeline
from mlplatform.automation.monitoring import performance_monitoring
from mlplatform.config.active import CONTRACT, ORCHESTRATION
from mlplatform.instance_queries import (
    AUTO_RETRY_RUN_ID_TAG,
    BACKFILL_ID_TAG,
    MAX_RETRIES_TAG,
    PARTITION_TAG,
    WILL_RETRY_TAG,
    assets_materialized_in_run,
    backfill_status,
    check_evaluation_entries,
    planned_steps,
    run_group,
    run_tagged,
    runs_waiting_for_retry,
)
from mlplatform.resources.mlflow import MlflowResource


def _end_open_mlflow_runs(
    context: dg.RunStatusSensorContext, mlflow: MlflowResource, status: str
) -> None:
    run_id = context.dagster_run.run_id
    ended = mlflow.end_runs_of(run_id, status)
    if ended:
        context.log.info(f"run {run_id} ended: its MLflow runs {ended} left RUNNING are {status}")


@dg.run_status_sensor(
    name="failed_run_cleanup",
    run_status=dg.DagsterRunStatus.FAILURE,
    monitor_all_code_locations=True,
    # Run-status sensors share the alerts' interval (orchestration.yaml, sensors).
    minimum_interval_seconds=ORCHESTRATION.sensors.alert_interval_seconds,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Marks FAILED the MLflow runs a failed run left RUNNING (a step killed outright).",
)
def failed_run_cleanup(context: dg.RunStatusSensorContext, mlflow: MlflowResource) -> None:
    _end_open_mlflow_runs(context, mlflow, "FAILED")


@dg.run_status_sensor(
    name="canceled_run_cleanup",
    run_status=dg.DagsterRunStatus.CANCELED,
    monitor_all_code_locations=True,
    minimum_interval_seconds=ORCHESTRATION.sensors.alert_interval_seconds,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Marks KILLED the MLflow runs a cancelled run left RUNNING.",
)
def canceled_run_cleanup(context: dg.RunStatusSensorContext, mlflow: MlflowResource) -> None:
    _end_open_mlflow_runs(context, mlflow, "KILLED")


# The module's own run tags (Dagster's are named in instance_queries).
REPORTED_AGAIN_TAG = "mlplatform/failure_reported_again"
RETRY_OF_TAG = "mlplatform/retry_of"
RETRY_REASON_TAG = "mlplatform/retry_reason"
NO_RETRY_TAG = "mlplatform/no_retry"
# Failures older than this are not looked at: the sensor's cost follows the recent runs only.
STALLED_RETRY_LOOKBACK_SECONDS = 24 * 3600
# A backfill in one of these states has submitted all its runs, and wants its days done: Dagster
# refuses to retry its runs (should_retry in dagster/_daemon/auto_run_reexecution/
# auto_run_reexecution.py: any backfill in BULK_ACTION_TERMINAL_STATUSES), so the platform does.
# A cancelled, failed or deleted backfill is not retried: its runs were meant to stop.
_ENDED_WANTING_ITS_DAYS = ("COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED")
_DAGSTER_REFUSES = (*_ENDED_WANTING_ITS_DAYS, "CANCELED", "FAILED")


def awaiting_retries(instance: dg.DagsterInstance, now: float, grace: float) -> list[dg.DagsterRun]:
    """Failed runs Dagster said it would retry (`dagster/will_retry`) with no retry launched
    `grace` seconds after they (last) failed."""
    records = runs_waiting_for_retry(
        instance, limit=100, updated_after=now - STALLED_RETRY_LOOKBACK_SECONDS
    )
    awaiting = []
    for record in records:
        run = record.dagster_run
        if record.end_time is None or now - record.end_time < grace:
            continue
        if any(other.parent_run_id == run.run_id for other in run_group(instance, run.run_id)):
            continue
        awaiting.append(run)
    return awaiting


@dataclass(frozen=True)
class Refusal:
    """Why Dagster will not retry a run it said it would, and whether the platform retries it."""

    reason: str
    platform_retries: bool


def refused_retry(instance: dg.DagsterInstance, run: dg.DagsterRun) -> Refusal | None:
    """Why Dagster's daemon will not retry `run` (None: it will, once it reads the failure)."""
    backfill_id = run.tags.get(BACKFILL_ID_TAG)
    if backfill_id is not None:
        status = backfill_status(instance, backfill_id)
        if status is None:
            return Refusal(f"its backfill {backfill_id} no longer exists", False)
        if status in _DAGSTER_REFUSES:
            wanted = status in _ENDED_WANTING_ITS_DAYS
            why = "had submitted all its runs" if wanted else "was stopped"
            return Refusal(f"its backfill {backfill_id} {why} ({status})", wanted)
    if REPORTED_AGAIN_TAG in run.tags:
        return Refusal("Dagster did not retry it even after its failure was reported again", True)
    return None


def stalled_retries(instance: dg.DagsterInstance, now: float, grace: float) -> list[dg.DagsterRun]:
    """The runs of `awaiting_retries` Dagster's daemon would retry had it read their failure,
    each reported again once.

    Dagster's event-log consumer decides on a retry when it reads a run's failure event, which is
    stored before the run's status becomes FAILURE; read in between, the run is judged not failed,
    the consumer's cursor moves past the event and the retry never comes (an asset backfill then
    waits for it for ever)."""
    return [
        run for run in awaiting_retries(instance, now, grace) if not refused_retry(instance, run)
    ]


def report_failure_again(instance: dg.DagsterInstance, run: dg.DagsterRun, grace: float) -> None:
    """A second failure event for `run`, read by the consumer after the run's status is FAILURE:
    Dagster's own retry machinery then retries it (its run-retry limits and strategy apply)."""
    instance.add_run_tags(run.run_id, {REPORTED_AGAIN_TAG: "true"})
    instance.report_run_failed(
        run,
        message=f"No retry was launched {grace:g} s after this run failed although Dagster said it "
        "would retry it: the failure is reported again so that the daemon retries it.",
    )


def unfinished_assets(instance: dg.DagsterInstance, run: dg.DagsterRun) -> set[dg.AssetKey]:
    """The assets `run` was to materialize and did not, or whose checks did not all run and pass
    (a blocking one that failed, or any that never ran): what a retry from failure runs again,
    as Dagster's FROM_ASSET_FAILURE re-execution chooses them."""
    planned: set = set()
    for step in planned_steps(instance, run).values():
        planned |= step.entity_keys
    assets = {key for key in planned if isinstance(key, dg.AssetKey)} or set(
        run.asset_selection or ()
    )
    checks = {key for key in planned if isinstance(key, dg.AssetCheckKey)}
    materialized = assets_materialized_in_run(instance, run.run_id)
    judged = set()
    for entry in check_evaluation_entries(instance, run.run_id):
        evaluation = entry.dagster_event.event_specific_data if entry.dagster_event else None
        if evaluation is not None and (evaluation.passed or not evaluation.blocking):
            judged.add(evaluation.asset_check_key)
    done = {
        asset
        for asset in assets & materialized
        if all(check in judged for check in checks if check.asset_key == asset)
    }
    return assets - done


@dataclass(frozen=True)
class RetryPlan:
    job_name: str
    partition: str | None
    assets: list[dg.AssetKey]
    retries_left: int


def plan_retry(
    context: dg.SensorEvaluationContext, run: dg.DagsterRun, job_names: Sequence[str]
) -> RetryPlan | str:
    """How to retry `run` from failure with one of `job_names` (the same day, the assets it did not
    finish), counted against its retries as Dagster counts them; or why it cannot be retried."""
    instance = context.instance
    raw_max = run.tags.get(MAX_RETRIES_TAG)
    max_retries = (
        int(raw_max) if raw_max and raw_max.isdigit() else instance.run_retries_max_retries
    )
    used = max(len(run_group(instance, run.run_id)) - 1, 0)
    if used >= max_retries:
        return f"{used} of its {max_retries} retries are used"
    assets = unfinished_assets(instance, run)
    if not assets:
        return "every asset it was to materialize was materialized: there is nothing to retry"
    repository = context.repository_def
    if repository is None:
        return "the sensor runs outside a code location: no job to retry it with"
    candidates = [run.job_name] if run.job_name in job_names else []
    candidates += [name for name in job_names if name != run.job_name]
    for name in candidates:
        job = repository.get_job(name)
        if not assets <= set(job.asset_layer.selected_asset_keys):
            continue
        partition = run.tags.get(PARTITION_TAG)
        if job.partitions_def is not None and partition is None:
            return f"it has no single partition for {name} to retry"
        return RetryPlan(name, partition, sorted(assets), max_retries - used - 1)
    names = ", ".join(sorted(key.to_user_string() for key in assets))
    return f"no job of this code location ({', '.join(job_names)}) materializes {names}"


def retry_request(run: dg.DagsterRun, plan: RetryPlan, refusal: Refusal) -> dg.RunRequest:
    """The retry from failure of `run`: its day, the assets it did not finish, its own tags, the
    retries left as its `dagster/max_retries` (Dagster retries it on, within the same count), and
    what it retries (`mlplatform/retry_of`). Its run key makes it one run however often asked."""
    own = {k: v for k, v in run.tags.items() if not k.startswith(("dagster/", "mlplatform/", "."))}
    return dg.RunRequest(
        run_key=f"retry_of:{run.run_id}",
        job_name=plan.job_name,
        partition_key=plan.partition,
        asset_selection=plan.assets,
        tags={
            **own,
            RETRY_OF_TAG: run.run_id,
            RETRY_REASON_TAG: f"Dagster will not retry run {run.run_id}: {refusal.reason}"[:250],
            MAX_RETRIES_TAG: str(plan.retries_left),
        },
    )


def announce_no_retry(instance: dg.DagsterInstance, run: dg.DagsterRun, reason: str) -> None:
    """`run` will not be retried after all: said so in its tags (`dagster/will_retry` false, no
    retries left, why), and its failure reported again so that the failure alert announces it."""
    instance.add_run_tags(
        run.run_id,
        {WILL_RETRY_TAG: "false", MAX_RETRIES_TAG: "0", NO_RETRY_TAG: reason[:250]},
    )
    # Dagster decides dagster/will_retry again when it stores a failure: with no retries left
    # (above), it stays false, and the alert reads it so.
    instance.report_run_failed(
        instance.get_run_by_id(run.run_id) or run,
        message=f"No retry will come: {reason}.",
    )


def stalled_retry_recovery_sensor(
    jobs: Sequence[Any],
    name: str = "stalled_retry_recovery",
) -> dg.SensorDefinition:
    """The sensor that sees every failed run Dagster said it would retry get its retry, with `jobs`
    (of the sensor's code location: `define_asset_job` or `dg.job` definitions) to re-execute what
    Dagster refuses to."""
    job_names = [job.name for job in jobs]

    @dg.sensor(
        name=name,
        jobs=list(jobs),
        minimum_interval_seconds=ORCHESTRATION.sensors.alert_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Sees that a failed run Dagster said it would retry gets its retry: reported "
        "again when Dagster's daemon missed the failure; re-executed from failure (same day, "
        "within the run's retries) when Dagster refuses, as for a run of a backfill that has "
        "ended; announced when no retry may come.",
    )
    def recovery(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
        instance = context.instance
        grace = ORCHESTRATION.sensors.retry_launch_grace_seconds
        requests, done = [], []
        for run in awaiting_retries(instance, time.time(), grace):
            retry = run_tagged(instance, {RETRY_OF_TAG: run.run_id})
            if retry is not None:
                # Its retry is launched: Dagster's own tag says so (and the run is left alone).
                instance.add_run_tags(run.run_id, {AUTO_RETRY_RUN_ID_TAG: retry.run_id})
                continue
            refusal = refused_retry(instance, run)
            if refusal is None:
                context.log.warning(f"run {run.run_id}: no retry {grace:g} s after its failure")
                report_failure_again(instance, run, grace)
                done.append(f"{run.run_id}: reported again")
                continue
            if not in_this_code_location(context, run):
                continue
            plan = plan_retry(context, run, job_names) if refusal.platform_retries else None
            day = run.tags.get(PARTITION_TAG)
            if isinstance(plan, RetryPlan):
                context.log.warning(
                    f"run {run.run_id} [{day}]: Dagster will not retry it ({refusal.reason}); "
                    f"retried from failure with {plan.job_name}: {len(plan.assets)} asset(s)"
                )
                requests.append(retry_request(run, plan, refusal))
                continue
            reason = f"{refusal.reason}, and {plan}" if plan else refusal.reason
            context.log.warning(f"run {run.run_id} [{day}]: no retry will come: {reason}")
            announce_no_retry(instance, run, reason)
            done.append(f"{run.run_id}: announced")
        if requests:
            return dg.SensorResult(run_requests=requests)
        return dg.SkipReason("; ".join(done) or "every failed run to be retried has its retry")

    return recovery


# What the platform's own sensor may retry a run with: every partitioned job of the platform.
RETRY_JOBS = [
    training_pipeline,
    retraining,
    *([performance_monitoring] if CONTRACT.outcomes else []),
]
stalled_retry_recovery = stalled_retry_recovery_sensor(RETRY_JOBS)
