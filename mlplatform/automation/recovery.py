"""What a crashed run leaves behind, cleaned up once Dagster knows it ended.

A step killed outright (kill -9, a lost container) cannot end its MLflow run: it stays RUNNING,
and its model and metrics look like work in progress for ever. When its Dagster run ends as
failed or cancelled (including a run marked failed by run monitoring because its worker is
gone), these sensors end the MLflow runs it left open: FAILED for a failure, KILLED for a
cancellation. Every code location's runs and ad-hoc ones (`dagster asset materialize`) alike.

A failed run Dagster said it would retry but never retried (its daemon read the failure too early)
is reported failed again, so that Dagster retries it (`stalled_retry_recovery`).

The other leftovers are handled where they arise: pool slots by run monitoring
(`free_slots_after_run_end_seconds`, dagster.yaml), temporary files by the IO manager before each
write, the partition by the next run (resources/io_managers.py, resources/mlflow.py).
"""

import dagster as dg

from mlplatform.config.active import ORCHESTRATION
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


# Dagster's run tags for retries (dagster._core.storage.tags), and this sensor's own.
WILL_RETRY_TAG = "dagster/will_retry"
AUTO_RETRY_RUN_ID_TAG = "dagster/auto_retry_run_id"
REPORTED_AGAIN_TAG = "mlplatform/failure_reported_again"
# Failures older than this are not looked at: the sensor's cost follows the recent runs only.
STALLED_RETRY_LOOKBACK_SECONDS = 24 * 3600


def stalled_retries(instance: dg.DagsterInstance, now: float, grace: float) -> list[dg.DagsterRun]:
    """Failed runs Dagster said it would retry (`dagster/will_retry`) without a retry launched
    `grace` seconds after they ended, each looked at once.

    Dagster's event-log consumer decides on a retry when it reads a run's failure event, which is
    stored before the run's status becomes FAILURE; read in between, the run is judged not failed,
    the consumer's cursor moves past the event and the retry never comes (an asset backfill then
    waits for it for ever)."""
    import datetime as dt

    records = instance.get_run_records(
        dg.RunsFilter(
            statuses=[dg.DagsterRunStatus.FAILURE],
            tags={WILL_RETRY_TAG: "true"},
            updated_after=dt.datetime.fromtimestamp(
                now - STALLED_RETRY_LOOKBACK_SECONDS, tz=dt.UTC
            ),
        ),
        limit=100,
    )
    stalled = []
    for record in records:
        run = record.dagster_run
        if AUTO_RETRY_RUN_ID_TAG in run.tags or REPORTED_AGAIN_TAG in run.tags:
            continue
        if record.end_time is None or now - record.end_time < grace:
            continue
        group = instance.get_run_group(run.run_id)
        if group and any(other.parent_run_id == run.run_id for other in group[1]):
            continue
        stalled.append(run)
    return stalled


def report_failure_again(instance: dg.DagsterInstance, run: dg.DagsterRun, grace: float) -> None:
    """A second failure event for `run`, read by the consumer after the run's status is FAILURE:
    Dagster's own retry machinery then retries it (its run-retry limits and strategy apply)."""
    instance.add_run_tags(run.run_id, {REPORTED_AGAIN_TAG: "true"})
    instance.report_run_failed(
        run,
        message=f"No retry was launched {grace:g} s after this run failed although Dagster said it "
        "would retry it: the failure is reported again so that the daemon retries it.",
    )


@dg.sensor(
    name="stalled_retry_recovery",
    minimum_interval_seconds=ORCHESTRATION.sensors.alert_interval_seconds,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Reports again the failure of a run Dagster said it would retry but has not "
    "retried (its daemon missed the failure), so that the retry is launched.",
)
def stalled_retry_recovery(context: dg.SensorEvaluationContext) -> dg.SkipReason:
    import time

    grace = ORCHESTRATION.sensors.retry_launch_grace_seconds
    stalled = stalled_retries(context.instance, time.time(), grace)
    for run in stalled:
        context.log.warning(f"run {run.run_id}: no retry launched {grace:g} s after its failure")
        report_failure_again(context.instance, run, grace)
    if not stalled:
        return dg.SkipReason("every failed run to be retried has its retry")
    return dg.SkipReason(f"failure reported again for {[run.run_id for run in stalled]}")
