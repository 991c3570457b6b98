"""`mlplatform recover`: a CLI run killed with no daemon running gives back its pool slot (issue
24.7), and a run whose worker lives is left alone."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

PROJECT = Path(__file__).resolve().parents[1]


def start_pooled_run(tmp_path: Path, env: dict[str, str]) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-m", "mlplatform_tests.orphan_probe", str(tmp_path), "pooled_probe"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while not (tmp_path / "step.pid").exists():
        assert process.poll() is None, "the run exited before its step started"
        assert time.monotonic() < deadline, "the step never started"
        time.sleep(0.2)
    return process


def recover(env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "mlplatform.cli", "recover"],
        env=env, capture_output=True, text=True, check=True, cwd=PROJECT,
    )  # fmt: skip
    return done.stdout


@pytest.mark.slow
def test_recover_ends_a_killed_cli_run_and_frees_its_training_slot(tmp_path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(PROJECT / "dagster.yaml", home / "dagster.yaml")
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db",
        "MLPLATFORM_DATA_DIR": str(tmp_path / "data"),
    }
    process = start_pooled_run(tmp_path, env)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        (run,) = instance.get_runs()

        def slots_held() -> int:
            info = instance.event_log_storage.get_concurrency_info("training")
            return len([s for s in info.claimed_slots if s.run_id == run.run_id])

        assert slots_held() == 1
        # A worker that lives is left alone.
        assert "nothing to end" in recover(env)
        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.STARTED

        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        # With no daemon, nothing else would ever end it: the next run of the day would wait on
        # "blocked by limit for pool training".
        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.STARTED
        assert slots_held() == 1

        printed = recover(env)
        assert f"ended run {run.run_id} of pooled_probe" in printed
        ended = instance.get_run_by_id(run.run_id)
        assert ended.status == dg.DagsterRunStatus.FAILURE
        assert slots_held() == 0
        messages = " ".join(e.message for e in instance.all_logs(run.run_id))
        assert "ended by `mlplatform recover`" in messages
        # Idempotent: a second call finds nothing.
        assert "nothing to end" in recover(env)
