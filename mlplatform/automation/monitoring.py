"""After deployment: realized performance recomputed as outcomes arrive, decay announced once per
incident (with a retraining), and the `rollback` job that moves `champion` back by hand."""

import json

import dagster as dg
from pydantic import Field

from mlplatform.automation.jobs import MONITORING_GROUP, RUN_TAGS, retraining
from mlplatform.config.active import CONTRACT, ORCHESTRATION
from mlplatform.instance_queries import (
    materializations_after,
    materializations_of_partitions,
    materialized_partitions,
)
from mlplatform.resources.alerts import AlertWebhook
from mlplatform.resources.mlflow import MlflowResource
from mlplatform.stages import daily_partitions

# Checks whose failure is an incident: measured decay (announced, and a retraining asked for), or a
# champion worse than the version it replaced (announced: the rollback is a person's call unless
# monitoring.on_worse_than_predecessor says otherwise).
DECAY_CHECKS = ("realized_above_floor", "realized_vs_backtest")
PREDECESSOR_CHECKS = ("not_worse_than_predecessor",)
INCIDENT_OF = {
    **{check: "decay" for check in DECAY_CHECKS},
    **{check: "worse_than_predecessor" for check in PREDECESSOR_CHECKS},
}
# What a new materialization of these means for the realized performance of the days it names.
_SCORED_DAYS_FROM = ("batch_scores", "shadow_scores")

performance_monitoring = dg.define_asset_job(
    name="performance_monitoring",
    selection=dg.AssetSelection.groups(MONITORING_GROUP),
    partitions_def=daily_partitions,
    tags=RUN_TAGS,
    description=(
        "Realized performance of one scored day, on the outcomes known so far (asked for by the "
        "outcomes_arrived sensor whenever outcomes of that day arrive)."
    ),
)


def _materialized_days(instance: dg.DagsterInstance, asset: str, days: set[str]) -> set[str]:
    if not days:
        return set()
    records = materializations_of_partitions(instance, asset, days, limit=10 * len(days))
    return {record.partition_key for record in records if record.partition_key}


@dg.sensor(
    name="outcomes_arrived",
    job=performance_monitoring,
    minimum_interval_seconds=ORCHESTRATION.sensors.outcomes_interval_seconds,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "When outcomes arrive (or a day is scored again), recomputes the realized performance of "
        "every scored day they concern; the cost of a day follows its own rows and outcomes."
    ),
)
def outcomes_arrived(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
    state = json.loads(context.cursor) if context.cursor else {}
    requests: dict[str, dg.RunRequest] = {}
    for asset in ("outcomes", *_SCORED_DAYS_FROM):
        after = state.get(asset, 0)
        records = materializations_after(context.instance, asset, after or None, limit=200)
        for record in records:
            state[asset] = max(state.get(asset, 0), record.storage_id)
            if asset == "outcomes":
                event = record.asset_materialization
                touched = event.metadata.get("event_days") if event else None
                days = set(touched.value) if touched is not None else set()
            else:
                days = {record.partition_key} if record.partition_key else set()
            for day in sorted(_materialized_days(context.instance, "batch_scores", days)):
                requests[day] = dg.RunRequest(
                    run_key=f"outcomes_arrived:{day}:{asset}:{record.storage_id}",
                    partition_key=day,
                    tags={"monitoring_reason": f"new {asset}"},
                )
    if not requests:
        return dg.SkipReason("no scored day has new outcomes or new scores")
    return dg.SensorResult(run_requests=list(requests.values()), cursor=json.dumps(state))


def _newest_validated_day(instance: dg.DagsterInstance) -> str | None:
    days = materialized_partitions(instance, "validated_transactions")
    return max(days) if days else None


@dg.sensor(
    name="performance_decay",
    job=retraining,
    minimum_interval_seconds=ORCHESTRATION.sensors.performance_interval_seconds,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Measured decay (a realized-performance check failed with confidence): one alert per "
        "incident however many days show it, one retraining on the newest data, and one "
        "all-clear when a later day holds again; likewise, without retraining, a champion "
        "confidently worse than the version it replaced."
    ),
)
def performance_decay(
    context: dg.SensorEvaluationContext, alert_webhook: AlertWebhook
) -> dg.SensorResult | dg.SkipReason:
    from mlplatform.automation.alerts import decay_cleared_message, decay_message
    from mlplatform.checks.gate_history import completed_evaluations, evaluation_verdict
    from mlplatform.core.incidents import IncidentBook

    state = json.loads(context.cursor) if context.cursor else {}
    after = state.get("after_id", 0)
    book = IncidentBook.parse(state.get("incidents"))
    fresh = sorted(
        (
            record
            for check in INCIDENT_OF
            for record in completed_evaluations(context.instance, "model_performance", check)
            if record.id > after
        ),
        key=lambda record: record.id,
    )
    if not fresh:
        return dg.SkipReason("no new realized-performance evaluations")
    requests = []
    for record in fresh:
        verdict, metadata = evaluation_verdict(record)
        key, day = INCIDENT_OF[record.key.name], record.partition
        version = str(metadata.get("model_version", "?"))
        if verdict == "inconclusive":
            continue
        if verdict == "passed":
            # An incident clears when a later scored day holds on every check of its kind.
            incident = book.open.get(key)
            later = incident is not None and day is not None and day > max(incident.days or [""])
            checks = [check for check, kind in INCIDENT_OF.items() if kind == key]
            if later and all(
                evaluation_verdict(latest)[0] == "passed"
                for check in checks
                for latest in completed_evaluations(
                    context.instance, "model_performance", check, day, limit=1
                )
            ):
                cleared = book.cleared(key, day)
                alert_webhook.post(decay_cleared_message(cleared, day, version), context.log)
            continue
        cause = (
            f"realized performance of v{version} decayed"
            if key == "decay"
            else f"champion v{version} is worse than the version it replaced"
        )
        incident = book.failed(key, cause, day, record.event.timestamp)
        if incident is None:
            context.log.info(f"{key}: {day} fails again; the incident is already announced")
            continue
        summary = str(metadata.get("summary", ""))
        if key != "decay":
            alert_webhook.post(decay_message(incident, summary, None, "rollback"), context.log)
            continue
        newest = _newest_validated_day(context.instance)
        alert_webhook.post(decay_message(incident, summary, newest, "retrain"), context.log)
        if newest is not None:
            requests.append(
                dg.RunRequest(
                    run_key=f"performance_decay:{key}:{incident.opened_at}",
                    partition_key=newest,
                    tags={"retraining_reason": f"{cause} (seen on {day})"},
                )
            )
    state = {"after_id": fresh[-1].id, "incidents": book.serialize()}
    return dg.SensorResult(run_requests=requests, cursor=json.dumps(state))


class RollbackConfig(dg.Config):
    to_version: str = Field(
        "",
        description="The version to give `champion`; empty: the one the champion replaced.",
    )
    reason: str = Field(description="Why, recorded on the version in the registry.")


@dg.op(description="Moves the `champion` alias back, recording the reason in the registry.")
def move_champion_back(
    context: dg.OpExecutionContext, config: RollbackConfig, mlflow: MlflowResource
) -> None:
    name = mlflow.model_name_for(CONTRACT.name)
    with mlflow.run("rollback"):
        champion = mlflow.current_champion(name)
        if champion is None:
            raise dg.Failure(f"{name} has no champion to roll back", allow_retries=False)
        target = config.to_version or mlflow.predecessor_of(name, str(champion.version))
        if not target:
            raise dg.Failure(
                f"{name} v{champion.version} replaced no version: name one in to_version",
                allow_retries=False,
            )
        mlflow.move_champion(
            name,
            target,
            f"rollback by hand from v{champion.version}: {config.reason}",
            {"rolled_back_from": str(champion.version), "dagster_run_id": context.run_id},
        )
    context.log.info(f"{name}: champion moved from v{champion.version} back to v{target}")


@dg.job(
    name="rollback",
    tags=RUN_TAGS,
    description="Gives `champion` back to the version it replaced (or the one named), by hand.",
)
def rollback() -> None:
    move_champion_back()
