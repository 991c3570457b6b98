"""What a crashed run leaves behind, cleaned up once Dagster knows it ended.

A step killed outright (kill -9, a lost container) cannot end its MLflow run: it stays RUNNING,
and its model and metrics look like work in progress for ever. When its Dagster run ends as
failed or cancelled (including a run marked failed by run monitoring because its worker is
gone), these sensors end the MLflow runs it left open: FAILED for a failure, KILLED for a
cancellation. Every code location's runs and ad-hoc ones (`dagster asset materialize`) alike.

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
