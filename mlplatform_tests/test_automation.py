"""Schedule and sensors evaluated with Dagster's test contexts; alerts go to a local receiver."""

import datetime as dt

import dagster as dg
import pytest

from mlplatform.automation.failure_alerts import run_failure_alert
from mlplatform.automation.schedules import daily_training
from mlplatform.automation.sensors import (
    drift_retraining,
    new_data,
    run_success_notification,
)
from mlplatform.core.validate import DatasetError
from mlplatform.definitions import ASSETS
from mlplatform.resources.alerts import AlertWebhook
from mlplatform.stages import retry_policy
from mlplatform.stages.error_policy import rule_for
from mlplatform_tests.conftest import make_platform
from mlplatform_tests.packaged import generated_day


def test_schedule_runs_the_day_that_just_ended():
    context = dg.build_schedule_context(
        scheduled_execution_time=dt.datetime(2026, 3, 3, 2, tzinfo=dt.UTC)
    )
    request = daily_training(context)
    assert request.partition_key == "2026-03-02"
    assert daily_training.cron_schedule == "0 2 * * *"
    assert daily_training.job_name == "training_pipeline"


def test_jobs_carry_the_run_time_budget():
    from mlplatform.automation.jobs import retraining, training_pipeline

    for job in (training_pipeline, retraining):
        assert job.tags["dagster/max_runtime"] == "7200"


def test_retry_policies_follow_the_protocol():
    assert retry_policy("ingestion").max_retries == 3
    assert retry_policy("ingestion").backoff == dg.Backoff.EXPONENTIAL
    assert retry_policy("ingestion").jitter == dg.Jitter.PLUS_MINUS
    assert retry_policy("validation").max_retries == 2
    assert retry_policy("training").max_retries == 1


def test_error_policy_by_class():
    assert rule_for(DatasetError("bad")).action == "fail_fast"
    assert rule_for(ConnectionResetError()).action == "retry"
    assert rule_for(KeyError("x")) is None  # no rule: a programming error fails fast


# new data -----------------------------------------------------------------------------------------


def write_day(folder, day: str, name: str, minutes_ago: float = 10) -> None:
    """Land one day's file, last modified `minutes_ago` (past the sensor's settle time)."""
    import os
    import time

    rows = generated_day(dt.date.fromisoformat(day), rows_per_day=300)
    rows.to_parquet(folder / name)
    stamp = time.time() - minutes_ago * 60
    os.utime(folder / name, (stamp, stamp))


def evaluate_new_data(platform, instance, cursor=None):
    # A context manager: a resource with `Locked` fields (resources/locked.py) is opened in one.
    with dg.build_sensor_context(
        instance=instance,
        cursor=cursor,
        resources={"data_source": platform.resources["data_source"]},
    ) as context:
        return new_data(context)


def test_new_data_requests_each_new_day_once_and_survives_a_restart(tmp_path):
    landing = tmp_path / "landing"
    landing.mkdir()
    platform = make_platform(
        tmp_path, MLPLATFORM_SOURCE_KIND="files", MLPLATFORM_SOURCE_PATH=str(landing)
    )
    with dg.instance_for_test() as instance:
        first = evaluate_new_data(platform, instance)
        assert isinstance(first, dg.SkipReason)  # an empty landing folder

        write_day(landing, "2026-03-01", "a.parquet")
        write_day(landing, "2026-03-02", "b.parquet")
        result = evaluate_new_data(platform, instance)
        assert sorted(r.partition_key for r in result.run_requests) == ["2026-03-01", "2026-03-02"]

        # A restarted daemon resumes from the stored cursor: nothing is requested twice.
        again = evaluate_new_data(platform, instance, cursor=result.cursor)
        assert isinstance(again, dg.SkipReason)

        write_day(landing, "2026-03-03", "c.parquet")
        later = evaluate_new_data(platform, instance, cursor=result.cursor)
        assert [r.partition_key for r in later.run_requests] == ["2026-03-03"]

        # A corrected file is a new version of its day.
        write_day(landing, "2026-03-01", "a.parquet", minutes_ago=5)
        corrected = evaluate_new_data(platform, instance, cursor=later.cursor)
        assert [r.partition_key for r in corrected.run_requests] == ["2026-03-01"]


def test_new_data_waits_for_a_file_that_may_still_be_written(tmp_path):
    landing = tmp_path / "landing"
    landing.mkdir()
    platform = make_platform(
        tmp_path, MLPLATFORM_SOURCE_KIND="files", MLPLATFORM_SOURCE_PATH=str(landing)
    )
    write_day(landing, "2026-03-01", "a.parquet", minutes_ago=0)
    with dg.instance_for_test() as instance:
        fresh = evaluate_new_data(platform, instance)
        assert isinstance(fresh, dg.SkipReason) and "settling" in fresh.skip_message
        write_day(landing, "2026-03-01", "a.parquet", minutes_ago=1)
        settled = evaluate_new_data(platform, instance)
        assert [r.partition_key for r in settled.run_requests] == ["2026-03-01"]


def test_new_data_waits_for_a_day_that_is_not_a_partition_yet(tmp_path):
    landing = tmp_path / "landing"
    landing.mkdir()
    platform = make_platform(
        tmp_path, MLPLATFORM_SOURCE_KIND="files", MLPLATFORM_SOURCE_PATH=str(landing)
    )
    today = dt.datetime.now(dt.UTC).date().isoformat()
    write_day(landing, today, "today.parquet")
    with dg.instance_for_test() as instance:
        result = evaluate_new_data(platform, instance)
        assert result.run_requests == []
        # Not marked processed: it is requested once its day becomes a partition.
        assert "today.parquet" not in (result.cursor or "")


def test_new_data_skips_with_the_generator(tmp_path):
    with dg.instance_for_test() as instance:
        result = evaluate_new_data(make_platform(tmp_path), instance)
    assert isinstance(result, dg.SkipReason) and "generator" in result.skip_message


# alerts -------------------------------------------------------------------------------------------


def failed_run(tmp_path, instance, incident="schema_break"):
    from mlplatform.checks.raw_transactions import raw_transactions_checks

    platform = make_platform(tmp_path, MLPLATFORM_GENERATOR_INCIDENT=incident)
    return dg.materialize(
        [*ASSETS, raw_transactions_checks],
        selection=["raw_transactions", "validated_transactions", "quarantined_transactions"],
        partition_key="2026-03-02",
        resources=platform.resources,
        instance=instance,
        raise_on_error=False,
    )


def alert_tick(instance, webhook, cursor=None):
    """One evaluation of run_failure_alert; its cursor. The first starts after the runs so far."""
    # In the context, opened: a resource with `Locked` fields (resources/locked.py) is a context
    # manager to Dagster, which a sensor's keyword argument cannot open.
    with dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"alert_webhook": webhook}
    ) as context:
        return run_failure_alert(context).cursor


def test_failure_alert_names_job_partition_step_error_and_run(tmp_path, webhook_receiver):
    with dg.instance_for_test() as instance:
        webhook = AlertWebhook(url=webhook_receiver.url, ui_url="http://127.0.0.1:3000")
        cursor = alert_tick(instance, webhook)
        result = failed_run(tmp_path, instance)
        assert not result.success
        alert_tick(instance, webhook, cursor)
    assert len(webhook_receiver.messages) == 1
    message = webhook_receiver.messages[0]
    text = message["text"]
    assert "[2026-03-02]" in text and "raw_transactions_checks" in text
    assert "schema_matches_contract" in text
    assert any(
        f"http://127.0.0.1:3000/runs/{result.run_id}" in block["text"]["text"]
        for block in message["blocks"]
    )


def test_no_alert_for_an_attempt_that_will_be_retried(tmp_path, webhook_receiver):
    with dg.instance_for_test() as instance:
        webhook = AlertWebhook(url=webhook_receiver.url)
        cursor = alert_tick(instance, webhook)
        result = failed_run(tmp_path, instance)
        instance.add_run_tags(result.run_id, {"dagster/will_retry": "true"})
        alert_tick(instance, webhook, cursor)
    assert webhook_receiver.messages == []


@pytest.mark.slow  # the whole graph on a default-size day
def test_success_notification_carries_metrics_and_model_version(tmp_path, webhook_receiver):
    platform = make_platform(tmp_path)
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            ASSETS, partition_key="2026-01-01", resources=platform.resources, instance=instance
        )
        run = instance.get_run_by_id(result.run_id)
        success = next(
            e.dagster_event for e in instance.all_logs(result.run_id)
            if e.dagster_event and e.dagster_event.event_type == dg.DagsterEventType.RUN_SUCCESS
        )  # fmt: skip
        with dg.build_run_status_sensor_context(
            sensor_name="run_success_notification",
            dagster_instance=instance,
            dagster_run=run,
            dagster_event=success,
            resources={"alert_webhook": AlertWebhook(url=webhook_receiver.url)},
        ) as context:
            run_success_notification(context)
    (message,) = webhook_receiver.messages
    assert "card_transactions_classifier v1 is the new champion" in message["text"]
    assert "roc_auc 0." in message["text"] and "[2026-01-01]" in message["text"]


# drift --------------------------------------------------------------------------------------------

days = dg.DailyPartitionsDefinition(start_date="2026-01-01")


@dg.asset(name="features", partitions_def=days)
def fake_features() -> None:
    return None


@dg.asset(name="trained_model", partitions_def=days)
def fake_trained_model() -> None:
    return None


@dg.asset_check(asset="features", name="drift", partitions_def=days)
def fake_drift(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    drifting = context.partition_key == "2026-03-02"
    return dg.AssetCheckResult(passed=not drifting, severity=dg.AssetCheckSeverity.WARN)


def drift_tick(instance, cursor=None):
    return drift_retraining(dg.build_sensor_context(instance=instance, cursor=cursor))


@pytest.mark.parametrize("retrained_since", [False, True])
def test_drift_requests_one_retraining_unless_already_retrained(retrained_since):
    with dg.instance_for_test() as instance:
        assert isinstance(drift_tick(instance), dg.SkipReason)
        for day in ("2026-03-01", "2026-03-02"):
            dg.materialize([fake_features, fake_drift], partition_key=day, instance=instance)
        if retrained_since:
            dg.materialize([fake_trained_model], partition_key="2026-03-02", instance=instance)
        result = drift_tick(instance)
        requested = [r.partition_key for r in result.run_requests]
        assert requested == ([] if retrained_since else ["2026-03-02"])
        assert isinstance(drift_tick(instance, cursor=result.cursor), dg.SkipReason)
        # Drift again on that day: requested once per day at most (the retraining drifts the
        # same way, and must not start a loop); a day retrained since is judged afresh.
        dg.materialize([fake_features, fake_drift], partition_key="2026-03-02", instance=instance)
        again = drift_tick(instance, cursor=result.cursor)
        expected = ["2026-03-02"] if retrained_since else []
        assert [r.partition_key for r in again.run_requests] == expected
        once_more = drift_tick(instance, cursor=again.cursor)
        dg.materialize([fake_features, fake_drift], partition_key="2026-03-02", instance=instance)
        assert not drift_tick(instance, cursor=again.cursor).run_requests
        assert isinstance(once_more, dg.SkipReason)


# error policy and step time limits, in real materializations ----------------------------------


def test_optional_work_logs_and_goes_on_but_critical_errors_still_fail():
    from mlplatform.stages import optional_work

    @dg.asset
    def with_optional_work(context: dg.AssetExecutionContext) -> int:
        with optional_work(context, "extra metadata"):
            raise KeyError("column not found")
        return 1

    @dg.asset
    def with_critical_error(context: dg.AssetExecutionContext) -> int:
        with optional_work(context, "extra metadata"):
            raise DatasetError("contract broken")
        return 1

    assert dg.materialize([with_optional_work]).success
    assert not dg.materialize([with_critical_error], raise_on_error=False).success


def test_step_past_its_time_limit_fails_cleanly_without_retry():
    import time

    from mlplatform.stages import carried_out

    @dg.asset(retry_policy=retry_policy("training"))
    def slow_step(context: dg.AssetExecutionContext) -> int:
        with carried_out(context, "training", time_limit=1):
            time.sleep(30)
        return 1

    result = dg.materialize([slow_step], raise_on_error=False)
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data
    assert "exceeded its time limit of 1 s" in failure.user_failure_data.description
    assert not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]


def test_gate_history_ignores_checks_that_never_ran():
    """A run that failed before its checks (or a queued run) leaves them PLANNED, with no result:
    that is neither a pass nor a failure of the gate."""
    from mlplatform.checks.gate_history import failed_blocking_checks

    @dg.asset(name="raw_transactions", partitions_def=days)
    def unreachable_source() -> None:
        raise ConnectionError("source down")

    @dg.asset_check(
        asset="raw_transactions", name="schema_matches_contract", blocking=True, partitions_def=days
    )
    def schema_check() -> dg.AssetCheckResult:
        return dg.AssetCheckResult(passed=False)

    with dg.instance_for_test() as instance:
        dg.materialize(
            [unreachable_source, schema_check],
            partition_key="2026-03-02",
            instance=instance,
            raise_on_error=False,
        )
        assert failed_blocking_checks(instance, "raw_transactions", "2026-03-02") == []

        @dg.asset(name="raw_transactions", partitions_def=days)
        def reachable_source() -> None:
            return None

        dg.materialize([reachable_source, schema_check], partition_key="2026-03-02",
                       instance=instance, raise_on_error=False)  # fmt: skip
        assert failed_blocking_checks(instance, "raw_transactions", "2026-03-02") == [
            "schema_matches_contract"
        ]
