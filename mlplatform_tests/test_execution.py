"""The default executor: steps fork from a server that has already imported what they use."""

import contextlib
import json
import subprocess
import sys

import dagster as dg
import pytest

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
        "from mlplatform.automation.step_preload import NOT_PRELOADED, PRELOADS\n"
        "print(json.dumps({'threads': threading.active_count(), 'modules': sorted(sys.modules),"
        " 'preloads': PRELOADS, 'not_preloaded': NOT_PRELOADED}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, *modules], capture_output=True, text=True, check=True
    )
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    # A fork copies only the calling thread: a preload that starts threads would leave steps
    # with locks held by threads that do not exist in them.
    assert loaded["threads"] == 1
    assert set(USED_BY_STEPS) <= set(loaded["modules"])
    # The step preload imports each module on its own, letting one that fails go: every one of
    # them must import (a renamed module would only make steps slower, unseen).
    assert loaded["not_preloaded"] == []
    assert set(loaded["preloads"]) <= set(loaded["modules"])


def test_a_preload_that_does_not_import_is_named_and_the_others_still_load():
    # A Dagster release that renames a private module costs a slower step start, not a crash.
    from mlplatform.automation.step_preload import preload

    missing = preload(("mlplatform_tests.no_such_module", "json", "dagster._no_such_module"))
    assert missing == ["mlplatform_tests.no_such_module", "dagster._no_such_module"]
    assert "json" in sys.modules


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


@pytest.mark.slow
def test_a_step_whose_run_worker_is_killed_ends_with_its_forkserver_and_writes_nothing(tmp_path):
    """kill -9 of the run worker alone (not its group): its forked step must not train on."""
    import os
    import signal
    import time

    import psutil

    from mlplatform_tests.orphan_probe import WRITES_AFTER_SECONDS

    home = tmp_path / "dagster_home"
    home.mkdir()
    worker = subprocess.Popen(
        [sys.executable, "-m", "mlplatform_tests.orphan_probe", str(tmp_path)],
        env={**os.environ, "DAGSTER_HOME": str(home)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / "step.pid").exists():
            assert worker.poll() is None, "the run worker exited before its step started"
            assert time.monotonic() < deadline, "the step never started"
            time.sleep(0.2)
        step_started = time.monotonic()
        step = psutil.Process(int((tmp_path / "step.pid").read_text()))
        # Everything the worker started: its forkserver, the step, the step's own children.
        of_the_run = [p for p in psutil.Process(worker.pid).children(recursive=True)]
        assert step in of_the_run
        worker.send_signal(signal.SIGKILL)
        worker.wait()

        def alive(process: psutil.Process) -> bool:
            try:
                return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
            except psutil.NoSuchProcess:
                return False

        deadline = time.monotonic() + 60
        while any(alive(p) for p in of_the_run):
            assert time.monotonic() < deadline, [p for p in of_the_run if alive(p)]
            time.sleep(0.5)
        # Past the moment the step would have written, had it lived on.
        time.sleep(max(0.0, step_started + WRITES_AFTER_SECONDS + 2 - time.monotonic()))
        assert not (tmp_path / "written_after_the_worker_died").exists()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.pid, signal.SIGKILL)
