"""One incident, one alert (issue 24.5): failed runs of one cause (where they failed, the error's
class, its message without ids, days and numbers) post one message with the count and the days,
later failures of it are counted, not posted, and one all-clear follows once every day it failed
has succeeded again. Another cause is another incident. Real materializations on a test instance,
the sensor evaluated tick by tick, messages received by a local webhook."""

import dagster as dg

from mlplatform.automation.failure_alerts import run_failure_alert
from mlplatform.core.incidents import IncidentBook, deterministic_part, failure_cause
from mlplatform.core.validate import DatasetError
from mlplatform.resources.alerts import AlertWebhook
from mlplatform.stages import carried_out

days = dg.DailyPartitionsDefinition(start_date="2026-03-01")
TEN_DAYS = [f"2026-03-{day:02d}" for day in range(1, 11)]
# The column the day's file lacks (None: the file is fine).
MISSING = {"column": None}


@dg.asset(partitions_def=days)
def landed_day(context: dg.AssetExecutionContext) -> int:
    with carried_out(context, "ingestion"):
        if MISSING["column"]:
            rows = int(context.partition_key[-2:]) * 137
            raise DatasetError(
                f"landing/{context.partition_key}.csv: column '{MISSING['column']}' is missing "
                f"({rows} rows read)"
            )
    return 1


@dg.asset(partitions_def=days)
def other_day_work() -> int:
    return 1


def materialize(instance: dg.DagsterInstance, day: str, missing: str | None) -> bool:
    MISSING["column"] = missing
    return dg.materialize(
        [landed_day], partition_key=day, instance=instance, raise_on_error=False
    ).success


def tick(instance: dg.DagsterInstance, webhook: AlertWebhook, cursor: str | None = None) -> str:
    # In the context, opened: a resource with `Locked` fields (resources/locked.py) is a context
    # manager to Dagster, which a sensor's keyword argument cannot open.
    with dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"alert_webhook": webhook}
    ) as context:
        return run_failure_alert(context).cursor


def test_the_cause_leaves_out_ids_days_and_numbers_but_keeps_names():
    one = "landed_day[2026-03-01]: landing/2026-03-01.csv: column 'channel' is missing (137 rows)"
    other = one.replace("03-01", "03-09").replace("137", "1233")
    assert deterministic_part(one) == deterministic_part(other)
    assert deterministic_part(one) == (
        "landed_day[<day>]: landing/<day>.csv: column 'channel' is missing (<n> rows)"
    )
    run = "Marking run 6077ecff-5705-47aa-9786-b7eab21e15a5 (pid 812) as failed"
    assert deterministic_part(run) == "Marking run <id> (pid <n>) as failed"
    assert failure_cause("landed_day", "DatasetError", one) == failure_cause(
        "landed_day", "DatasetError", other
    )
    for step, error_class, message in (
        ("landed_day", "DatasetError", one.replace("'channel'", "'amount'")),
        ("validated_day", "DatasetError", one),
        ("landed_day", "SourceError", one),
    ):
        assert failure_cause(step, error_class, message) != failure_cause(
            "landed_day", "DatasetError", one
        )


def test_an_incident_quiet_for_long_is_announced_again_with_its_counts():
    book = IncidentBook()
    assert book.failed("k", "cause", "2026-03-01", 0.0, awaiting="a", quiet_seconds=100) is not None
    assert book.failed("k", "cause", "2026-03-02", 50.0, awaiting="b", quiet_seconds=100) is None
    again = book.failed("k", "cause", "2026-03-03", 160.0, awaiting="c", quiet_seconds=100)
    assert again is not None and again.failures == 3
    assert again.days == ["2026-03-01", "2026-03-02", "2026-03-03"]
    assert book.passed("k", "a") is None and book.passed("k", "b") is None
    assert book.passed("k", "unknown") is None
    assert book.passed("k", "c") is again and "k" not in book.open
    # Kept in a cursor: a restarted daemon reads it back as it was.
    book.failed("j", "other", None, 1.0, awaiting="x")
    assert IncidentBook.parse(book.serialize()) == book


def test_ten_failures_of_one_cause_are_one_alert_and_one_all_clear(webhook_receiver):
    webhook = AlertWebhook(url=webhook_receiver.url, ui_url="http://127.0.0.1:3000")
    messages = webhook_receiver.messages
    with dg.instance_for_test() as instance:
        cursor = tick(instance, webhook)  # it watches the runs that end from now on
        for day in TEN_DAYS:
            assert not materialize(instance, day, missing="channel")
        cursor = tick(instance, webhook, cursor)
        (alert,) = messages
        assert "10 failed run(s) of this cause so far" in alert["text"]
        assert f"days: {', '.join(TEN_DAYS)}" in alert["text"]
        assert "landed_day" in alert["text"] and "column 'channel' is missing" in alert["text"]
        assert "http://127.0.0.1:3000/runs/" in str(alert["blocks"])

        # Another cause (another column) is another incident, announced on its own.
        assert not materialize(instance, "2026-03-11", missing="amount")
        cursor = tick(instance, webhook, cursor)
        assert len(messages) == 2
        assert "[2026-03-11]" in messages[1]["text"] and "'amount'" in messages[1]["text"]
        assert "1 failed run(s)" in messages[1]["text"]

        # The first cause again on a day it already failed: counted, not posted.
        assert not materialize(instance, TEN_DAYS[0], missing="channel")
        cursor = tick(instance, webhook, cursor)
        assert len(messages) == 2

        # Its days succeed again: nothing until the last of them, then one all-clear.
        for day in TEN_DAYS[:-1]:
            assert materialize(instance, day, missing=None)
        cursor = tick(instance, webhook, cursor)
        assert len(messages) == 2
        # A successful run of that day that did not run the failed step clears nothing.
        assert dg.materialize(
            [other_day_work], partition_key=TEN_DAYS[-1], instance=instance
        ).success
        cursor = tick(instance, webhook, cursor)
        assert len(messages) == 2
        assert materialize(instance, TEN_DAYS[-1], missing=None)
        cursor = tick(instance, webhook, cursor)
        (cleared,) = messages[2:]
        assert cleared["text"].startswith(":large_green_circle: cleared")
        assert f"[{TEN_DAYS[-1]}] succeeded" in cleared["text"]
        assert "11 failure(s)" in cleared["text"] and ", ".join(TEN_DAYS) in cleared["text"]

        # The other cause's day has not succeeded: its incident stays open, and nothing repeats.
        for _ in range(2):
            cursor = tick(instance, webhook, cursor)
        assert len(messages) == 3
        assert materialize(instance, "2026-03-11", missing=None)
        tick(instance, webhook, cursor)
        assert len(messages) == 4 and "'amount'" in messages[3]["text"]
