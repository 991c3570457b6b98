"""The default executor: steps fork from a server that has already imported what they use."""

import json
import subprocess
import sys

import dagster as dg

from mlplatform.automation.execution import job_executor
from mlplatform.config.orchestration import load_orchestration

# Imported lazily inside assets and by Dagster inside a step; each cost a step 0.3-0.6 s.
USED_BY_STEPS = (
    "mlplatform.definitions",
    "dagster._utils.test",
    "mlflow.tracking",
    "mlflow.sklearn",
    "mlflow.store.tracking.sqlalchemy_store",
    "skops.io",
    "sklearn.ensemble",
    "pyarrow.parquet",
)


def test_every_preload_imports_and_starts_no_thread():
    # multiprocessing's forkserver swallows a preload's ImportError, so a typo would only be slow.
    modules = load_orchestration(environ={}).execution.multiprocess.preload_modules
    probe = (
        "import importlib, json, sys, threading\n"
        "for name in sys.argv[1:]: importlib.import_module(name)\n"
        "print(json.dumps({'threads': threading.active_count(), 'modules': sorted(sys.modules)}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, *modules], capture_output=True, text=True, check=True
    )
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    # A fork copies only the calling thread: a preload that starts threads would leave steps
    # with locks held by threads that do not exist in them.
    assert loaded["threads"] == 1
    assert set(USED_BY_STEPS) <= set(loaded["modules"])


@dg.op
def modules_at_step_start() -> list[str]:
    return sorted(name for name in USED_BY_STEPS if name in sys.modules)


@dg.job(executor_def=job_executor())
def probe_job():
    modules_at_step_start()


def test_a_default_step_starts_with_what_it_uses_already_imported():
    with (
        dg.instance_for_test() as instance,
        dg.execute_job(dg.reconstructable(probe_job), instance=instance) as result,
    ):
        assert result.success
        started_with = result.output_for_node("modules_at_step_start")
        workers = [e for e in result.all_events if e.event_type_value == "STEP_WORKER_STARTED"]
    # The step ran in a child of the forkserver, not in this (test) process.
    assert workers
    assert started_with == sorted(USED_BY_STEPS)
