"""A run killed inside a backfill is retried, or announced once with its day (issue 24.2).

Dagster's daemon refuses to retry a run of a backfill that has reached a terminal state
(`should_retry` in dagster/_daemon/auto_run_reexecution/auto_run_reexecution.py: "Not retrying run
since it is part of a backfill that is in a terminal state"), and the run keeps
`dagster/will_retry=true`, so the failure alert skipped it: the day stayed failed in silence.
`dagster job backfill` marks its backfill COMPLETED once it has submitted its runs (dagster/_cli/
job.py), so every run of it killed is refused; a backfill launched from a job's page in the UI is
marked COMPLETED_FAILED by the backfill daemon once no run is unfinished, without waiting for the
retries still to be launched (dagster/_core/execution/job_backfill.py), so a run killed last is
refused whenever that daemon looks first. (An asset backfill waits for those retries: Dagster
retries its runs.) `stalled_retry_recovery` then retries the run from failure itself, or, when the
run may not be retried, has the failure alert announce it.

In process, step by step with Dagster's own backfill daemon, event-log consumer and sensor daemon
iterations: a backfill launched through the UI's GraphQL mutation. Under a real dagster-daemon: a
backfill launched with `dagster job backfill`, whose run worker is killed with SIGKILL."""

import logging
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from mlplatform.automation.recovery import NO_RETRY_TAG, RETRY_OF_TAG
from mlplatform_tests.conftest import TEST_SETTINGS_DIR, WebhookReceiver
from mlplatform_tests.test_daemon import BIN, PROJECT, TERMINAL, Daemon, daemon_home

JOB = "crash_days_job"
REFUSED = "Not retrying run since it is part of a backfill that is in a terminal state"


def engine_messages(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    return [
        entry.message
        for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT)
    ]


def runs_of_day(instance: dg.DagsterInstance, day: str) -> list[dg.DagsterRun]:
    runs = instance.get_runs(dg.RunsFilter(job_name=JOB, tags={"dagster/partition": day}))
    return sorted(runs, key=lambda run: run.run_id)


# Launched from the UI, in process -----------------------------------------------------------------


@pytest.fixture
def faults_workspace(tmp_path, monkeypatch, webhook_receiver):
    """The fault code location served as the daemon serves it (a code server started with this
    environment), on a test instance whose runs wait in the queue: nothing here launches a run."""
    from dagster._core.test_utils import create_test_daemon_workspace_context, instance_for_test
    from dagster._core.workspace.load_target import ModuleTarget

    monkeypatch.setenv("MLPLATFORM_FAULT_DIR", str(tmp_path))
    monkeypatch.setenv("MLPLATFORM_ALERT_WEBHOOK_URL", webhook_receiver.url)
    overrides = {
        "run_retries": {"enabled": True, "max_retries": 2},
        "run_coordinator": {
            "module": "dagster.core.run_coordinator",
            "class": "QueuedRunCoordinator",
        },
    }
    target = ModuleTarget("mlplatform_tests.fault_location", None, str(PROJECT), "faults")
    with (
        instance_for_test(overrides=overrides) as instance,
        create_test_daemon_workspace_context(target, instance) as context,
    ):
        yield instance, context


def launch_ui_backfill(context, days: list[str]) -> str:
    """A backfill of the job's partitions, launched as its page in the UI launches it."""
    from dagster_graphql.client.query import LAUNCH_PARTITION_BACKFILL_MUTATION
    from dagster_graphql.test.utils import execute_dagster_graphql

    params = {
        "selector": {
            "partitionSetName": f"{JOB}_partition_set",
            "repositorySelector": {
                "repositoryLocationName": "faults",
                "repositoryName": "__repository__",
            },
        },
        "partitionNames": days,
        "fromFailure": False,
    }
    result = execute_dagster_graphql(
        context.create_request_context(),
        LAUNCH_PARTITION_BACKFILL_MUTATION,
        {"backfillParams": params},
    )
    answer = result.data["launchPartitionBackfill"]
    assert answer["__typename"] == "LaunchBackfillSuccess", answer
    return answer["backfillId"]


def end_run(instance: dg.DagsterInstance, run: dg.DagsterRun, event_type: str, seconds_ago=60.0):
    """`run` started and ended `seconds_ago` (past the retry grace), as its worker or run
    monitoring reports it: a RUN_FAILURE is what run monitoring reports for a killed worker."""
    from dagster._core.events import DagsterEvent
    from dagster._core.events.log import EventLogEntry

    ended = (
        f"Detected run worker status FAILED: its run worker (pid 4242 on host) is gone. Marking "
        f"run {run.run_id} as failed."
        if event_type == "PIPELINE_FAILURE"
        else "Finished execution of run."
    )
    for kind, message in (("PIPELINE_START", "Started execution of run."), (event_type, ended)):
        event = DagsterEvent(event_type_value=kind, job_name=run.job_name, message=message)
        instance.handle_new_event(
            EventLogEntry(
                error_info=None,
                level=logging.ERROR if kind == "PIPELINE_FAILURE" else logging.DEBUG,
                user_message=message,
                run_id=run.run_id,
                timestamp=time.time() - seconds_ago,
                job_name=run.job_name,
                dagster_event=event,
            )
        )


class Daemons:
    """One pass at a time of each daemon that matters here, in the order that loses the day: the
    backfill daemon, then the event-log consumer (Dagster's retries), then the sensor daemon
    (which evaluates a sensor again only after its minimum interval: it is waited for)."""

    def __init__(self, context) -> None:
        from mlplatform.config.active import ORCHESTRATION

        self.context = context
        self.logger = logging.getLogger("test_backfill_retries")
        self.interval = ORCHESTRATION.sensors.alert_interval_seconds
        self.sensed_at = 0.0

    def run(self, sensors: bool = True) -> None:
        from dagster._daemon.auto_run_reexecution.event_log_consumer import (
            EventLogConsumerDaemon,
        )
        from dagster._daemon.backfill import execute_backfill_iteration
        from dagster._daemon.sensor import execute_sensor_iteration

        list(execute_backfill_iteration(self.context, self.logger))
        list(EventLogConsumerDaemon().run_iteration(self.context))
        if sensors:
            time.sleep(max(0.0, self.sensed_at + self.interval + 0.5 - time.time()))
            list(execute_sensor_iteration(self.context, self.logger, None, None))
            self.sensed_at = time.time()


def test_a_run_killed_in_a_ui_backfill_that_ended_first_is_retried_or_announced_with_its_day(
    faults_workspace, webhook_receiver
):
    from dagster._core.execution.backfill import BulkActionStatus

    instance, context = faults_workspace
    daemons = Daemons(context)
    daemons.run()  # the consumer and the sensors start from the events so far
    days = ["2026-03-01", "2026-03-02", "2026-03-03"]
    backfill_id = launch_ui_backfill(context, days)
    daemons.run(sensors=False)  # the backfill daemon submits one run per day
    (first,), (killed,), (later,) = (runs_of_day(instance, day) for day in days)
    assert killed.tags["dagster/backfill"] == backfill_id
    end_run(instance, first, "PIPELINE_SUCCESS")
    end_run(instance, later, "PIPELINE_SUCCESS")
    end_run(instance, killed, "PIPELINE_FAILURE")
    assert instance.get_run_by_id(killed.run_id).tags["dagster/will_retry"] == "true"

    # The backfill daemon looks first: no run unfinished, the backfill has ended; Dagster's
    # consumer then refuses the retry it had promised.
    daemons.run()
    assert instance.get_backfill(backfill_id).status == BulkActionStatus.COMPLETED_FAILED
    assert any(REFUSED in message for message in engine_messages(instance, killed.run_id))
    # The platform retries it: the same day, what the killed run did not finish, within the
    # retries Dagster counts (one used of two: the retry may be retried once more).
    (retry,) = instance.get_runs(dg.RunsFilter(tags={RETRY_OF_TAG: killed.run_id}))
    assert retry.status == dg.DagsterRunStatus.QUEUED
    assert retry.job_name == JOB
    assert retry.tags["dagster/partition"] == "2026-03-02"
    assert retry.asset_selection == {dg.AssetKey("day_rows"), dg.AssetKey("day_model")}
    assert retry.tags["dagster/max_retries"] == "1"
    assert "backfill" in retry.tags["mlplatform/retry_reason"]
    daemons.run()  # once: the killed run now names its retry, as Dagster's would
    assert instance.get_run_by_id(killed.run_id).tags["dagster/auto_retry_run_id"] == retry.run_id
    assert len(instance.get_runs(dg.RunsFilter(tags={RETRY_OF_TAG: killed.run_id}))) == 1
    assert webhook_receiver.messages == []  # a retry comes: nothing to announce

    # A day killed in a backfill the operator then cancelled is not retried: it is announced,
    # once, with its day.
    cancelled_id = launch_ui_backfill(context, ["2026-03-05"])
    daemons.run(sensors=False)
    (cancelled_run,) = runs_of_day(instance, "2026-03-05")
    end_run(instance, cancelled_run, "PIPELINE_FAILURE")
    backfill = instance.get_backfill(cancelled_id)
    instance.update_backfill(backfill.with_status(BulkActionStatus.CANCELED))
    for _ in range(3):  # announced (reported failed again), alerted, and not again
        daemons.run()
    assert instance.get_runs(dg.RunsFilter(tags={RETRY_OF_TAG: cancelled_run.run_id})) == []
    announced = instance.get_run_by_id(cancelled_run.run_id)
    assert announced.tags["dagster/will_retry"] == "false"
    assert "was stopped (CANCELED)" in announced.tags[NO_RETRY_TAG]
    (alert,) = webhook_receiver.messages
    assert f"{JOB} [2026-03-05] failed" in alert["text"]
    assert "is gone" in alert["text"] and "No retry will come" in alert["text"]


# Launched from the CLI, under a real daemon -------------------------------------------------------


@pytest.fixture(scope="module")
def daemon(tmp_path_factory) -> Iterator[Daemon]:
    root = tmp_path_factory.mktemp("backfill-retries")
    faults = root / "faults"
    faults.mkdir()
    receiver = WebhookReceiver()
    at = daemon_home(
        root,
        settings={
            "MLPLATFORM_SETTINGS_DIR": str(TEST_SETTINGS_DIR),
            "MLPLATFORM_ALERT_WEBHOOK_URL": receiver.url,
            "MLPLATFORM_FAULT_DIR": str(faults),
        },
        locations={"faults": "mlplatform_tests.fault_location"},
    )
    try:
        with Daemon.started(
            at, root / "daemon.log", kept_as="backfill-retries-daemon.log",
            receiver=receiver, landing=faults,
        ) as daemon:  # fmt: skip
            yield daemon
    finally:
        receiver.close()


def kill_day(daemon: Daemon, day: str, times: int) -> None:
    """The run worker of `day` kills itself with SIGKILL in `times` runs, one after the other."""
    (Path(daemon.env["MLPLATFORM_FAULT_DIR"]) / f"kill-{day}").write_text(str(times))


def cli_backfill(daemon: Daemon, days: list[str]) -> str:
    result = subprocess.run(
        [str(BIN / "dagster"), "job", "backfill", "-w", str(daemon.workspace), "-l", "faults",
         "-j", JOB, "--partitions", ",".join(days), "--noprompt"],
        env=daemon.env, cwd=PROJECT, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    (line,) = [x for x in result.stdout.splitlines() if "Launched backfill job" in x]
    return line.split("`")[1]


def alerts_naming(daemon: Daemon, day: str) -> list[dict]:
    return [m for m in daemon.receiver.messages if f"{JOB} [{day}]" in m["text"]]


@pytest.mark.slow
def test_a_run_killed_in_a_cli_backfill_is_retried_from_failure(daemon):
    day = "2026-03-02"
    kill_day(daemon, day, 1)
    backfill_id = cli_backfill(daemon, ["2026-03-01", day])
    with daemon.instance() as instance:
        # Complete as soon as its runs are submitted: Dagster will retry none of them.
        assert instance.get_backfill(backfill_id).status.value == "COMPLETED"

    def killed():
        with daemon.instance() as instance:
            runs = [r for r in runs_of_day(instance, day) if "dagster/backfill" in r.tags]
        return runs[0] if runs and runs[0].status in TERMINAL else None

    run = daemon.wait(killed, what="the killed run of the backfill to end")
    assert run.status == dg.DagsterRunStatus.FAILURE

    def retried():
        with daemon.instance() as instance:
            retries = instance.get_runs(dg.RunsFilter(tags={RETRY_OF_TAG: run.run_id}))
        return retries[0] if retries and retries[0].status in TERMINAL else None

    retry = daemon.wait(retried, timeout=240, what="the platform's retry of the killed run")
    assert retry.status == dg.DagsterRunStatus.SUCCESS
    assert retry.tags["dagster/partition"] == day
    # From failure: day_rows was materialized before the kill; only day_model runs again.
    assert retry.asset_selection == {dg.AssetKey("day_model")}
    with daemon.instance() as instance:
        assert any(REFUSED in message for message in engine_messages(instance, run.run_id))
        assert instance.get_run_by_id(run.run_id).tags["dagster/will_retry"] == "true"
    time.sleep(12)  # two alert-sensor ticks: a day retried is no incident
    assert alerts_naming(daemon, day) == []


@pytest.mark.slow
def test_a_day_killed_every_time_in_a_cli_backfill_is_announced_once_after_its_retries(daemon):
    day = "2026-03-04"
    kill_day(daemon, day, 99)
    cli_backfill(daemon, [day])
    alert = daemon.wait(
        lambda: alerts_naming(daemon, day), timeout=420, what=f"the alert naming {day}"
    )
    time.sleep(12)  # two more ticks: still one message
    assert alerts_naming(daemon, day) == alert
    # Killed outside any step; its message is that of whoever noticed first (run monitoring, or
    # the code server that started the worker).
    assert "failed at (no step: the run itself failed)" in alert[0]["text"]
    with daemon.instance() as instance:
        attempts = runs_of_day(instance, day)
    # The killed run and its two retries (run_retries.max_retries): the platform's, then Dagster's.
    assert len(attempts) == 3, [(r.run_id, r.status, r.tags) for r in attempts]
    assert all(r.status == dg.DagsterRunStatus.FAILURE for r in attempts)
