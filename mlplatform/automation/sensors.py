"""Sensors: new data in the landing location, notices of success, retraining on drift (the failure
alert: automation/failure_alerts.py)."""

import json
import time

import dagster as dg

from mlplatform.automation.alerts import success_message
from mlplatform.automation.jobs import retraining, training_pipeline
from mlplatform.config.active import CONTRACT, ORCHESTRATION, SETTINGS
from mlplatform.instance_queries import (
    PARTITION_TAG,
    check_execution_failed,
    completed_check_executions,
    latest_materialization,
    materialization_metadata_of_run,
)
from mlplatform.resources.alerts import AlertWebhook
from mlplatform.resources.data_source import DataSource

# What a run for rows that fall in no partition needs: ingestion and validation (their gates run
# with them), nothing downstream.
QUARANTINE_ONLY = [
    dg.AssetKey(name)
    for name in ("raw_transactions", "validated_transactions", "quarantined_transactions")
]


@dg.sensor(
    name="new_data",
    job=training_pipeline,
    minimum_interval_seconds=ORCHESTRATION.sensors.new_data_interval_seconds,
    default_status=(
        dg.DefaultSensorStatus.RUNNING
        if SETTINGS.data_source.kind == "files"
        else dg.DefaultSensorStatus.STOPPED
    ),
    description="A training run for every day held by new or changed files in the landing folder; "
    "for a file with no row in any partition, ingestion and validation of the first partition, "
    "which quarantine its rows.",
)
def new_data(
    context: dg.SensorEvaluationContext, data_source: DataSource
) -> dg.SensorResult | dg.SkipReason:
    from mlplatform.assets.raw_transactions import current_partition_span
    from mlplatform.core.landing import LandingCursor, fingerprints, place_file_rows
    from mlplatform.core.source_files import SourceError
    from mlplatform.core.validate import DatasetError

    if data_source.kind != "files" or not data_source.path:
        return dg.SkipReason("the data source is the generator: there is no landing location")
    cursor = LandingCursor.parse(context.cursor)
    try:
        current = fingerprints(data_source.path, data_source.file_format)
    except SourceError as error:
        return dg.SkipReason(f"nothing to read yet: {error}")
    settle = ORCHESTRATION.sensors.landing_settle_seconds
    now = time.time()
    changed, settling = {}, []
    for file, landed in current.items():
        if cursor.processed.get(file) == landed.fingerprint:
            continue
        if landed.modified is not None and now - landed.modified < settle:
            settling.append(file)  # perhaps still being written: next tick
        else:
            changed[file] = landed.fingerprint
    if not changed:
        reason = f"files still settling: {settling}" if settling else "no new files"
        return dg.SkipReason(f"{reason} in {data_source.path}")

    contract = CONTRACT
    span = current_partition_span()
    requests: dict[str, dg.RunRequest] = {}
    quarantine_only: dict[str, dg.RunRequest] = {}
    for file, stamp in sorted(changed.items()):
        try:
            placement = place_file_rows(file, contract.event_time, span, data_source.file_format)
        except DatasetError as error:
            # Not even its event times can be read: no day to run. Logged once per version of
            # the file; a corrected file has a new fingerprint and is read again.
            context.log.error(f"{file}: not handed to any run: {type(error).__name__}: {error}")
            cursor.mark(file, stamp, set(), done=True)
            continue
        except SourceError as error:
            context.log.warning(f"{file}: {error}; next tick")
            continue
        done_before = cursor.already_requested(file, stamp)
        days = {day.isoformat() for day in placement.partition_days}
        for day in sorted(days - done_before):
            requests[day] = dg.RunRequest(
                run_key=f"new_data:{day}:{file}:{stamp}",
                partition_key=day,
                tags={"source_file": file},
            )
        carrier = placement.carrier_day(span)
        outside = int(placement.outside.sum())
        if carrier is not None and not days:
            # No row of the file is in a partition: its rows go to quarantine with the first
            # partition, in a run of ingestion and validation only. Training that day again
            # because a bad file landed would be wrong (it could even register a model).
            day = carrier.isoformat()
            if day not in done_before:
                quarantine_only[day] = dg.RunRequest(
                    run_key=f"new_data:quarantine:{day}:{file}:{stamp}",
                    partition_key=day,
                    asset_selection=QUARANTINE_ONLY,
                    tags={"source_file": file},
                )
            days.add(day)
        if outside:
            where = (
                f"quarantined by the run of {carrier}"
                if carrier is not None
                else "quarantined once a day of the file becomes a partition"
                if placement.pending_days
                else f"quarantined once the first partition ({span.first}) exists"
            )
            context.log.warning(f"{file}: {outside} row(s) fall in no partition ({where})")
        pending = sorted(day.isoformat() for day in placement.pending_days)
        if pending:
            # Today's (or tomorrow's, by clock skew) partition does not exist yet: its rows wait,
            # the file's other days do not.
            context.log.info(f"{file}: waiting for partitions {pending} ({span.describe()})")
        waiting = bool(pending) or (outside > 0 and carrier is None)
        cursor.mark(file, stamp, days | done_before, done=not waiting)
    # A training run of the day ingests and validates it too: no second run for the same rows.
    for day, request in quarantine_only.items():
        requests.setdefault(day, request)
    for gone in set(cursor.requested) - set(current):
        del cursor.requested[gone]  # removed while some of its days were still to come
    return dg.SensorResult(run_requests=list(requests.values()), cursor=cursor.serialize())


@dg.run_status_sensor(
    name="run_success_notification",
    minimum_interval_seconds=ORCHESTRATION.sensors.alert_interval_seconds,
    run_status=dg.DagsterRunStatus.SUCCESS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Posts the metrics and model version of every successful run that trained a model.",
)
def run_success_notification(
    context: dg.RunStatusSensorContext, alert_webhook: AlertWebhook
) -> None:
    run = context.dagster_run
    registered = materialization_metadata_of_run(
        context.instance, "registered_model_version", run.run_id
    )
    if registered is None:
        return
    metrics = {k[len("test_") :]: float(v) for k, v in registered.items() if k.startswith("test_")}
    message = success_message(
        run.job_name,
        run.tags.get(PARTITION_TAG),
        registered.get("model_name"),
        registered.get("version"),
        registered.get("promoted_to_champion"),
        metrics,
        alert_webhook.run_url(run.run_id),
    )
    alert_webhook.post(message, context.log)


@dg.sensor(
    name="drift_retraining",
    job=retraining,
    minimum_interval_seconds=ORCHESTRATION.sensors.drift_interval_seconds,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="When the drift gate fails on a day's data, retrains on that day unless a newer "
    "training of that day already exists.",
)
def drift_retraining(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
    state = json.loads(context.cursor) if context.cursor else {"after_id": 0, "requested": []}
    state.setdefault("requested", [])
    history = completed_check_executions(context.instance, "features", "drift")
    fresh = sorted((r for r in history if r.id > state["after_id"]), key=lambda r: r.id)
    if not fresh:
        return dg.SkipReason("no new drift evaluations")
    requests = []
    for record in fresh:
        if not check_execution_failed(record) or record.partition is None:
            continue
        if record.partition in state["requested"]:
            # Retraining on the same data drifts the same way: one request per day, not a loop.
            continue
        trained = latest_materialization(context.instance, "trained_model", record.partition)
        drift_time = record.event.timestamp if record.event else 0.0
        if trained is not None and trained.timestamp > drift_time:
            context.log.info(f"{record.partition}: drift, but the day was retrained after it")
            continue
        state["requested"].append(record.partition)
        requests.append(
            dg.RunRequest(
                run_key=f"drift_retraining:{record.partition}",
                partition_key=record.partition,
                tags={"retraining_reason": "drift"},
            )
        )
    state["after_id"] = fresh[-1].id
    return dg.SensorResult(run_requests=requests, cursor=json.dumps(state))
