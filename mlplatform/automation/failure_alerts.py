"""The failure alert: one message per incident, not per failed run.

Failed runs of one cause (where they failed, the error's class and its message without ids, days
and numbers: `core.incidents.failure_cause`) are one incident, announced once with how many runs
failed and which days, and once more when it clears: when every day (or unpartitioned job) it
failed has a later successful run that ran the failed step (of the same job, for a run that failed
outside any step). The incidents are kept in the sensor's cursor with the position in the event
log, so a restarted daemon neither repeats nor forgets an alert. The same bookkeeping
(`IncidentBook`) announces decay (automation/monitoring.py).

A run Dagster will retry (`dagster/will_retry`) is not announced: its retry is, if it fails too.
When that retry cannot come after all (a run of a backfill that has ended, automation/recovery.py),
the run is reported failed again with `dagster/will_retry` false, and announced then.
"""

import json
from dataclasses import dataclass

import dagster as dg

from mlplatform.automation.alerts import failure_cleared_message, failure_message
from mlplatform.config.active import ORCHESTRATION
from mlplatform.instance_queries import (
    AUTO_RETRY_RUN_ID_TAG,
    PARTITION_TAG,
    WILL_RETRY_TAG,
    last_run_event_record,
    newest_run_status_change_id,
    run_events,
    run_status_changes_after,
    runs_by_id,
)
from mlplatform.resources.alerts import AlertWebhook

# Run-status events read per tick and kind (failures, successes); the rest waits for the next tick.
EVENTS_PER_TICK = 200
RUN_FAILURE = dg.DagsterEventType.RUN_FAILURE
RUN_SUCCESS = dg.DagsterEventType.RUN_SUCCESS


@dataclass(frozen=True)
class RunFailure:
    """Why a run failed, as the alert says it and as incidents group it."""

    key: str
    cause: str
    steps: list[str]
    error: str


def _metadata_text(metadata: dict, name: str) -> str | None:
    value = metadata.get(name)
    value = getattr(value, "value", value)
    return str(value) if value is not None else None


def describe_failure(instance: dg.DagsterInstance, run: dg.DagsterRun) -> RunFailure:
    """The failed steps and their errors; for a run that failed outside any step (its worker
    killed, a time limit), its first failure event and, when the run was reported failed again
    since, why (no retry will come)."""
    from mlplatform.core.incidents import failure_cause

    failed = []
    for entry in run_events(instance, run.run_id, dg.DagsterEventType.STEP_FAILURE):
        event = entry.dagster_event
        data = event.step_failure_data if event else None
        user = data.user_failure_data if data else None
        if user is not None and user.description:
            error_class = _metadata_text(dict(user.metadata or {}), "error_class") or "Failure"
            failed.append((event.step_key or "?", error_class, user.description))
        elif data is not None and data.error is not None:
            message = data.error.message.strip().splitlines()
            failed.append(
                (event.step_key or "?", data.error.cls_name, message[-1] if message else "")
            )
        else:
            failed.append((event.step_key if event else "?", None, entry.message or "failed"))
    if failed:
        step, error_class, error = failed[0]
        return RunFailure(
            key=failure_cause(step, error_class, error),
            cause=f"{step}: {error}"[:300],
            steps=[step for step, _, _ in failed],
            error="; ".join(error for _, _, error in failed),
        )
    reports = run_events(instance, run.run_id, RUN_FAILURE)
    first = reports[0] if reports else None
    message = (first.dagster_event.message if first and first.dagster_event else None) or (
        "run failed"
    )
    data = first.dagster_event.event_specific_data if first and first.dagster_event else None
    error_class = data.error.cls_name if getattr(data, "error", None) is not None else None
    latest = reports[-1].dagster_event.message if len(reports) > 1 else None
    shown = message if not latest or latest == message else f"{message}; then: {latest}"
    return RunFailure(
        key=failure_cause("run", error_class, message),
        cause=f"the run itself: {message}"[:300],
        steps=[],
        error=shown,
    )


def _awaiting(run: dg.DagsterRun, failure: RunFailure) -> str:
    """What must succeed again for this failure to be over: its job, day and step."""
    step = failure.steps[0] if failure.steps else ""
    return "|".join((run.job_name, run.tags.get(PARTITION_TAG, ""), step))


def _is_announced(instance: dg.DagsterInstance, run: dg.DagsterRun, event) -> bool:
    """Whether this failure event of `run` is one to announce: no retry is coming or came, and
    it is the run's last failure event (a run reported failed again is one failure, not two)."""
    if run.tags.get(WILL_RETRY_TAG) == "true" or AUTO_RETRY_RUN_ID_TAG in run.tags:
        return False
    latest = last_run_event_record(instance, run.run_id, RUN_FAILURE)
    # Compared by time: a sharded event log numbers a run's events apart from the index.
    return latest is None or latest.timestamp <= event.timestamp


def in_this_code_location(context: dg.SensorEvaluationContext, run: dg.DagsterRun) -> bool:
    """The runs of this sensor's code location (as a run-failure sensor watches); evaluated
    outside a code location (a test), every run."""
    origin = context.code_location_origin
    if origin is None:
        return True
    job_origin = run.remote_job_origin
    return (
        job_origin is not None
        and job_origin.repository_origin.code_location_origin.location_name == origin.location_name
        and job_origin.repository_origin.repository_name == context.repository_name
    )


def _status_events(instance: dg.DagsterInstance, after: int) -> list:
    """Run failures and successes after storage id `after`, in the order they were stored."""
    fetched = {
        kind: run_status_changes_after(instance, kind, after, EVENTS_PER_TICK)
        for kind in (RUN_FAILURE, RUN_SUCCESS)
    }
    # A kind cut at the limit may hide events of the other kind after its last one: stop there.
    full = [
        records[-1].storage_id for records in fetched.values() if len(records) == EVENTS_PER_TICK
    ]
    until = min(full) if full else None
    events = [
        record
        for records in fetched.values()
        for record in records
        if until is None or record.storage_id <= until
    ]
    return sorted(events, key=lambda record: record.storage_id)


def _newest_status_event(instance: dg.DagsterInstance) -> int:
    return newest_run_status_change_id(instance, (RUN_FAILURE, RUN_SUCCESS))


@dg.sensor(
    name="run_failure_alert",
    minimum_interval_seconds=ORCHESTRATION.sensors.alert_interval_seconds,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="One alert per incident (failed runs of one cause: how many, which days), not "
    "for runs that will be retried; one all-clear when the days it failed succeed again.",
)
def run_failure_alert(
    context: dg.SensorEvaluationContext, alert_webhook: AlertWebhook
) -> dg.SensorResult:
    from mlplatform.core.incidents import IncidentBook

    instance = context.instance
    state = json.loads(context.cursor) if context.cursor else None
    if state is None:
        # As Dagster's run-status sensors do: from the runs that end after it first runs.
        after = _newest_status_event(instance)
        return dg.SensorResult(
            cursor=json.dumps({"after_id": after, "incidents": IncidentBook().serialize()}),
            skip_reason=f"watching the runs that end after event {after}",
        )
    # A cursor of the run-failure sensor this one replaced: its position carries on.
    after = state.get("after_id", state.get("record_id", 0))
    book = IncidentBook.parse(state.get("incidents"))
    quiet = ORCHESTRATION.sensors.incident_quiet_seconds
    events = _status_events(instance, after)
    runs = runs_by_id(instance, {event.run_id for event in events})
    opened, cleared, step_successes = [], [], {}
    for event in events:
        after = event.storage_id
        run = runs.get(event.run_id)
        if run is None or not in_this_code_location(context, run):
            continue
        if event.event_log_entry.dagster_event_type == RUN_FAILURE:
            if not _is_announced(instance, run, event):
                context.log.info(f"run {run.run_id}: a retry comes or came, no alert for it")
                continue
            failure = describe_failure(instance, run)
            incident = book.failed(
                failure.key,
                failure.cause,
                run.tags.get(PARTITION_TAG),
                event.timestamp,
                awaiting=_awaiting(run, failure),
                quiet_seconds=quiet,
            )
            if incident is None:
                context.log.info(f"run {run.run_id}: counted in the open incident {failure.key}")
            else:
                opened.append((incident, run, failure))
            continue
        day = run.tags.get(PARTITION_TAG, "")
        for key, incident in list(book.open.items()):
            for awaited in list(incident.awaiting):
                job, awaited_day, step = awaited.split("|", 2)
                if awaited_day != day:
                    continue
                if step:
                    # The failed step passed on that day, in whichever job (a retry from failure,
                    # an asset backfill): not merely some run of the job that left it out.
                    if run.run_id not in step_successes:
                        step_successes[run.run_id] = {
                            entry.step_key
                            for entry in run_events(
                                instance, run.run_id, dg.DagsterEventType.STEP_SUCCESS
                            )
                        }
                    if step not in step_successes[run.run_id]:
                        continue
                elif job != run.job_name:
                    continue
                closed = book.passed(key, awaited)
                if closed is not None:
                    cleared.append((closed, run))
    # Posted once the batch is read: an incident's first alert counts every failure read with it.
    for incident, run, failure in opened:
        message = failure_message(
            run.job_name,
            run.tags.get(PARTITION_TAG),
            failure.steps,
            failure.error,
            alert_webhook.run_url(run.run_id),
            incident=incident,
        )
        alert_webhook.post(message, context.log)
    for incident, run in cleared:
        message = failure_cleared_message(
            incident, run.job_name, run.tags.get(PARTITION_TAG), alert_webhook.run_url(run.run_id)
        )
        alert_webhook.post(message, context.log)
    cursor = json.dumps({"after_id": after, "incidents": book.serialize()})
    summary = (
        f"{len(events)} run event(s) read: {len(opened)} incident(s) announced, "
        f"{len(cleared)} cleared, {len(book.open)} open"
    )
    return dg.SensorResult(cursor=cursor, skip_reason=summary)
