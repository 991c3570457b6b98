"""A code location of deliberate faults for the daemon tests, wired with the platform's own retry
policies, error policy, failure alert and retry recovery (nothing here is part of the product)."""

import os
import signal
import time
from pathlib import Path

import dagster as dg

from mlplatform.automation.failure_alerts import run_failure_alert
from mlplatform.automation.recovery import stalled_retry_recovery_sensor
from mlplatform.core.validate import DatasetError
from mlplatform.resources.alerts import alert_webhook_from_environment
from mlplatform.stages import carried_out, retry_policy

MARKERS = Path(os.environ.get("MLPLATFORM_FAULT_DIR", "/tmp"))


def first_time(name: str, run_id: str) -> bool:
    marker = MARKERS / f"{name}-{run_id}"
    if marker.exists():
        return False
    marker.touch()
    return True


@dg.asset(retry_policy=retry_policy("ingestion"))
def flaky_source(context: dg.AssetExecutionContext) -> int:
    with carried_out(context, "ingestion"):
        if first_time("flaky", context.run_id):
            raise ConnectionResetError("connection reset by peer")
    return 1


@dg.asset
def crashing_worker(context: dg.AssetExecutionContext) -> int:
    root_run = context.dagster_run.root_run_id or context.run_id
    if first_time("crash", root_run):
        os._exit(1)  # the run worker dies, as when a machine or container is lost
    return 1


@dg.asset(retry_policy=retry_policy("validation"))
def bad_data(context: dg.AssetExecutionContext) -> int:
    with carried_out(context, "validation"):
        raise DatasetError("landing/tx.csv line 7: amount 'abc' is not a number")
    return 1


@dg.asset
def endless(context: dg.AssetExecutionContext) -> int:
    time.sleep(600)
    return 1


fault_days = dg.DailyPartitionsDefinition(start_date="2026-03-01")


@dg.asset(partitions_def=fault_days)
def day_rows(context: dg.AssetExecutionContext) -> int:
    return 1


@dg.asset(partitions_def=fault_days, deps=[day_rows])
def day_model(context: dg.AssetExecutionContext) -> int:
    """Killed with SIGKILL (its run worker, with the in-process executor) as many times as the file
    `kill-<day>` in the fault folder says, once per run."""
    marker = MARKERS / f"kill-{context.partition_key}"
    left = int(marker.read_text()) if marker.exists() else 0
    if left > 0:
        marker.write_text(str(left - 1))
        os.kill(os.getpid(), signal.SIGKILL)
    return 1


crash_days_job = dg.define_asset_job(
    "crash_days_job",
    selection=["day_rows", "day_model"],
    partitions_def=fault_days,
    executor_def=dg.in_process_executor,
)


defs = dg.Definitions(
    assets=[flaky_source, crashing_worker, bad_data, endless, day_rows, day_model],
    jobs=[
        dg.define_asset_job("flaky_job", selection=["flaky_source"]),
        dg.define_asset_job(
            "crash_job", selection=["crashing_worker"], executor_def=dg.in_process_executor
        ),
        dg.define_asset_job("bad_data_job", selection=["bad_data"]),
        crash_days_job,
        dg.define_asset_job(
            "endless_job",
            selection=["endless"],
            tags={"dagster/max_runtime": "5", "dagster/max_retries": "0"},
        ),
    ],
    sensors=[run_failure_alert, stalled_retry_recovery_sensor([crash_days_job])],
    resources={"alert_webhook": alert_webhook_from_environment()},
)
