"""A failed run Dagster said it would retry, whose retry its daemon never launched, is retried.

Dagster stores a run's failure event before it sets the run's status to FAILURE; its event-log
consumer (the daemon that launches retries) reading the event in between judges the run not failed,
moves its cursor past the event and never retries it (seen in a backfill test: the backfill then
waited for that retry for ever). The race is reproduced here step by step with Dagster's own
consumer, in process, against the platform's code location."""

import time
from pathlib import Path

import dagster as dg
import pytest

from mlplatform.automation.recovery import (
    REPORTED_AGAIN_TAG,
    WILL_RETRY_TAG,
    report_failure_again,
    stalled_retries,
)

PROJECT = Path(__file__).resolve().parents[1]
GRACE = 60.0


@pytest.fixture
def workspace():
    from dagster._core.test_utils import create_test_daemon_workspace_context, instance_for_test
    from dagster._core.workspace.load_target import ModuleTarget

    overrides = {
        "run_retries": {"enabled": True, "max_retries": 2},
        # Submitted retries wait in the queue: nothing here launches a run.
        "run_coordinator": {
            "module": "dagster.core.run_coordinator",
            "class": "QueuedRunCoordinator",
        },
    }
    target = ModuleTarget("mlplatform.definitions", None, str(PROJECT), "mlplatform")
    with (
        instance_for_test(overrides=overrides) as instance,
        create_test_daemon_workspace_context(target, instance) as context,
    ):
        yield instance, context


def retries_of(instance: dg.DagsterInstance, run_id: str) -> list[dg.DagsterRun]:
    _, group = instance.get_run_group(run_id)
    return [run for run in group if run.parent_run_id == run_id]


def test_a_retry_the_daemon_missed_is_launched_after_the_failure_is_reported_again(workspace):
    from dagster._core.events import DagsterEvent, DagsterEventType
    from dagster._core.events.log import EventLogEntry
    from dagster._core.test_utils import create_run_for_test, load_remote_repo
    from dagster._daemon.auto_run_reexecution.event_log_consumer import EventLogConsumerDaemon

    instance, context = workspace
    remote_job = load_remote_repo(context, "__repository__").get_full_job("training_pipeline")
    run = create_run_for_test(
        instance,
        job_name="training_pipeline",
        status=dg.DagsterRunStatus.STARTED,
        remote_job_origin=remote_job.get_remote_origin(),
        job_snapshot=remote_job.job_snapshot,
        # A retry from the failed step reads the steps of the run it retries; this one has none.
        tags={"dagster/partition": "2026-03-02", "dagster/retry_strategy": "ALL_STEPS"},
    )
    consumer = EventLogConsumerDaemon()

    def consume() -> None:
        list(consumer.run_iteration(context))

    consume()  # its cursor starts at the events stored so far
    failure = DagsterEvent(
        event_type_value=DagsterEventType.RUN_FAILURE.value,
        job_name=run.job_name,
        message="its run worker is gone (killed)",
    )
    # The failure event is stored, and the consumer reads it before the run's status follows.
    instance.event_log_storage.store_event(
        EventLogEntry(
            error_info=None,
            level="ERROR",
            user_message="",
            run_id=run.run_id,
            timestamp=time.time(),
            dagster_event=failure,
            job_name=run.job_name,
        )
    )
    consume()
    instance.run_storage.handle_run_event(run.run_id, failure)
    instance.add_run_tags(run.run_id, {WILL_RETRY_TAG: "true"})
    consume()
    assert retries_of(instance, run.run_id) == []  # Dagster's race: no retry, ever

    # Not yet past the grace: nothing to do.
    assert stalled_retries(instance, time.time(), GRACE) == []
    (stalled,) = stalled_retries(instance, time.time() + GRACE + 1, GRACE)
    assert stalled.run_id == run.run_id
    report_failure_again(instance, stalled, GRACE)
    consume()
    (retry,) = retries_of(instance, run.run_id)
    assert retry.status == dg.DagsterRunStatus.QUEUED
    assert retry.tags["dagster/partition"] == "2026-03-02"
    # Looked at once: with its retry launched, or reported again already, it is left alone.
    assert instance.get_run_by_id(run.run_id).tags[REPORTED_AGAIN_TAG] == "true"
    assert stalled_retries(instance, time.time() + GRACE + 1, GRACE) == []
    messages = [
        event.dagster_event.message
        for event in instance.all_logs(run.run_id, of_type=DagsterEventType.RUN_FAILURE)
    ]
    assert any("reported again" in (message or "") for message in messages)
