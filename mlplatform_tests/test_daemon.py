"""Against a real dagster-daemon on a temporary DAGSTER_HOME: retry policies, run retries for a
crashed run, one alert for a deterministic failure, max runtime, and the new-data sensor."""

import contextlib
import datetime as dt
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml

from mlplatform_tests.conftest import TEST_SETTINGS_DIR, WebhookReceiver, platform_environment
from mlplatform_tests.packaged import generated_day
from mlplatform_tests.servers import start_process, stop_process_group

pytestmark = pytest.mark.slow

PROJECT = Path(__file__).resolve().parents[1]
ARTIFACTS = PROJECT / "test-artifacts"
BIN = Path(sys.executable).parent
TERMINAL = {
    dg.DagsterRunStatus.SUCCESS,
    dg.DagsterRunStatus.FAILURE,
    dg.DagsterRunStatus.CANCELED,
}


@dataclass(frozen=True)
class DaemonHome:
    """Where a test's daemon and every process it starts find their instance and the project."""

    home: Path
    workspace: Path
    env: dict[str, str]


def instance_environment(root: Path, home: Path, **settings: str) -> dict[str, str]:
    """The environment of a test instance's processes: its data, MLflow store and artifacts under
    `root`, its DAGSTER_HOME, models loaded without pickle, one OpenMP thread (training times vary
    several-fold with two on two shared cores), plus `settings` (MLPLATFORM_* variables). The
    MLflow store is left for the first step that uses it to create, as on a new deployment."""
    return {
        **os.environ,
        **platform_environment(root),
        "DAGSTER_HOME": str(home),
        "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "false",
        "OMP_NUM_THREADS": "1",
        **settings,
    }


def daemon_home(
    root: Path,
    *,
    settings: Mapping[str, str],
    locations: Mapping[str, str] | None = None,
    **run_monitoring: Any,
) -> DaemonHome:
    """A DAGSTER_HOME under `root` with the project's own dagster.yaml (the instance `make dev`
    runs), its run monitoring polled every 2 s and changed by `run_monitoring`; a workspace
    loading mlplatform and the extra `locations` (name: module); the environment of
    `instance_environment` with `settings`."""
    home = root / "home"
    home.mkdir()
    instance_settings = yaml.safe_load((PROJECT / "dagster.yaml").read_text())
    unknown = set(run_monitoring) - set(instance_settings["run_monitoring"])
    assert not unknown, f"not run_monitoring settings of dagster.yaml: {sorted(unknown)}"
    instance_settings["run_monitoring"].update({"poll_interval_seconds": 2, **run_monitoring})
    (home / "dagster.yaml").write_text(yaml.safe_dump(instance_settings))
    workspace = root / "workspace.yaml"
    modules = {"mlplatform": "mlplatform.definitions", **(locations or {})}
    workspace.write_text(
        yaml.safe_dump(
            {"load_from": [{"python_module": {"module_name": module, "location_name": name,
                                              "working_directory": str(PROJECT)}}
                           for name, module in modules.items()]}
        )
    )  # fmt: skip
    # Create the SQLite tables once, before several processes race to.
    with dg.DagsterInstance.from_config(str(home)):
        pass
    return DaemonHome(home, workspace, instance_environment(root, home, **settings))


@dataclass
class Daemon:
    home: Path
    env: dict[str, str]
    workspace: Path
    receiver: WebhookReceiver | None
    landing: Path
    process: subprocess.Popen

    def instance(self) -> dg.DagsterInstance:
        return dg.DagsterInstance.from_config(str(self.home))

    @classmethod
    @contextlib.contextmanager
    def started(
        cls, at: "DaemonHome", log: Path, *, kept_as: str, **fields: Any
    ) -> Iterator["Daemon"]:
        """`dagster-daemon run` in its own process group (SIGINT/SIGTERM reset: a background
        shell may ignore them), yielded once all its daemons beat; stopped with its children.
        Its log is copied to test-artifacts/`kept_as` (when that folder exists, as in CI) however
        the test ended: a failure on CI explains itself from there."""
        process = start_process(
            [str(BIN / "dagster-daemon"), "run", "-w", str(at.workspace)],
            log, env=at.env, cwd=PROJECT,
        )  # fmt: skip
        daemon = cls(home=at.home, env=at.env, workspace=at.workspace, process=process, **fields)
        try:

            def all_daemons_beating():
                with daemon.instance() as instance:
                    return len(instance.get_daemon_heartbeats()) >= 4

            daemon.wait(all_daemons_beating, timeout=120, what="the daemon's heartbeats")
            yield daemon
        finally:
            stop_process_group(process)
            if ARTIFACTS.is_dir() and log.exists():
                shutil.copy(log, ARTIFACTS / kept_as)

    def launch(self, location: str, job: str, *extra: str) -> str:
        result = subprocess.run(
            [str(BIN / "dagster"), "job", "launch", "-w", str(self.workspace), "-l", location,
             "-j", job, *extra],
            env=self.env, cwd=PROJECT, capture_output=True, text=True, timeout=180,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
        with self.instance() as instance:
            runs = instance.get_runs(dg.RunsFilter(job_name=job), limit=1)
        return runs[0].run_id

    def wait(self, predicate, timeout: float = 240, what: str = "condition"):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the daemon exited with {self.process.returncode}")
            value = predicate()
            if value:
                return value
            time.sleep(1)
        raise AssertionError(f"timed out waiting for {what}")

    def finished(self, run_id: str) -> dg.DagsterRun:
        def done():
            with self.instance() as instance:
                run = instance.get_run_by_id(run_id)
            return run if run and run.status in TERMINAL else None

        return self.wait(done, what=f"run {run_id} to finish")

    def run_group(self, run_id: str) -> list[dg.DagsterRun]:
        with self.instance() as instance:
            group = instance.get_run_group(run_id)
        return list(group[1]) if group else []

    def events(self, run_id: str, event_type: dg.DagsterEventType) -> list:
        with self.instance() as instance:
            return [
                e for e in instance.all_logs(run_id)
                if e.dagster_event and e.dagster_event.event_type == event_type
            ]  # fmt: skip


@pytest.fixture(scope="module")
def daemon(tmp_path_factory) -> Iterator[Daemon]:
    root = tmp_path_factory.mktemp("daemon")
    landing, faults = root / "landing", root / "faults"
    for folder in (landing, faults):
        folder.mkdir()
    receiver = WebhookReceiver()
    at = daemon_home(
        root,
        settings={
            "MLPLATFORM_SETTINGS_DIR": str(TEST_SETTINGS_DIR),
            "MLPLATFORM_SOURCE_KIND": "files",
            "MLPLATFORM_SOURCE_PATH": str(landing),
            "MLPLATFORM_ALERT_WEBHOOK_URL": receiver.url,
            "MLPLATFORM_UI_URL": "http://127.0.0.1:3999",
            "MLPLATFORM_FAULT_DIR": str(faults),
        },
        locations={"faults": "mlplatform_tests.fault_location"},
    )
    try:
        with Daemon.started(
            at, root / "daemon.log", kept_as="daemon.log", receiver=receiver, landing=landing
        ) as daemon:
            yield daemon
    finally:
        receiver.close()


def test_transient_failure_succeeds_through_the_retry_policy(daemon):
    run = daemon.finished(daemon.launch("faults", "flaky_job"))
    assert run.status == dg.DagsterRunStatus.SUCCESS
    assert len(daemon.events(run.run_id, dg.DagsterEventType.STEP_UP_FOR_RETRY)) == 1


def test_crashed_run_is_retried_by_the_daemon(daemon):
    first = daemon.finished(daemon.launch("faults", "crash_job"))
    assert first.status == dg.DagsterRunStatus.FAILURE

    def retried():
        retries = [r for r in daemon.run_group(first.run_id) if r.run_id != first.run_id]
        return retries if retries and retries[0].status in TERMINAL else None

    (retry,) = daemon.wait(retried, what="the daemon's retry of the crashed run")
    assert retry.status == dg.DagsterRunStatus.SUCCESS
    assert retry.tags.get("dagster/retry_number") == "1"
    assert first.tags.get("dagster/will_retry") == "true"
    time.sleep(12)  # two alert-sensor ticks: the retried attempt raised no alert
    assert not [m for m in daemon.receiver.messages if "crash_job" in m["text"]]


def test_deterministic_error_is_not_retried_and_alerts_once(daemon):
    before = len(daemon.receiver.messages)
    run = daemon.finished(daemon.launch("faults", "bad_data_job"))
    assert run.status == dg.DagsterRunStatus.FAILURE
    assert daemon.events(run.run_id, dg.DagsterEventType.STEP_UP_FOR_RETRY) == []

    def alerted():
        return [m for m in daemon.receiver.messages[before:] if "bad_data_job" in m["text"]]

    daemon.wait(alerted, timeout=90, what="the failure alert")
    time.sleep(12)  # two more sensor ticks: still one alert, and no run retry
    (alert,) = alerted()
    assert "line 7: amount 'abc' is not a number" in alert["text"]
    assert f"http://127.0.0.1:3999/runs/{run.run_id}" in str(alert["blocks"])
    assert [r.run_id for r in daemon.run_group(run.run_id)] in ([], [run.run_id])


def test_run_past_its_max_runtime_is_stopped(daemon):
    run = daemon.finished(daemon.launch("faults", "endless_job"))
    assert run.status in (dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED)
    assert daemon.events(run.run_id, dg.DagsterEventType.STEP_SUCCESS) == []
    with daemon.instance() as instance:
        logs = " ".join(e.message for e in instance.all_logs(run.run_id))
    assert "max runtime" in logs.lower() or "maximum runtime" in logs.lower()


def test_new_file_in_the_landing_folder_is_picked_up_and_materialized(daemon):
    day = "2026-03-02"
    # Landed as producers should: written beside, then renamed into place in one step; a day of
    # 10,000 rows (every gate passes on it), written a minute ago: the sensor's wait for a file
    # that may still be written (30 s) is test_automation's to show.
    partial = daemon.landing / "tx.csv.partial"
    generated_day(dt.date.fromisoformat(day), rows_per_day=10_000).to_csv(partial, index=False)
    landed = time.time() - 60
    os.utime(partial, (landed, landed))
    partial.rename(daemon.landing / "tx.csv")

    def pipeline_run():
        with daemon.instance() as instance:
            runs = instance.get_runs(dg.RunsFilter(job_name="training_pipeline"), limit=5)
        return runs[0] if runs else None

    run = daemon.finished(daemon.wait(pipeline_run, what="the sensor's run").run_id)
    assert run.tags["dagster/partition"] == day
    assert run.status == dg.DagsterRunStatus.SUCCESS
    with daemon.instance() as instance:
        # Of this day: the daemon also runs the daily schedule, for another day.
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey("batch_scores"), asset_partitions=[day]),
            limit=1,
        ).records
    assert records and records[0].run_id == run.run_id
    daemon.wait(
        lambda: [
            m
            for m in daemon.receiver.messages
            if "training_pipeline [2026-03-02] succeeded" in m["text"]
        ],
        timeout=90,
        what="the success notification",
    )
