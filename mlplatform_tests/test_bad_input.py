"""Bad input fails the step with a message naming what is at fault, and overwrites nothing."""

import dagster as dg
import pandas as pd
import pytest

from mlplatform.config.active import CONTRACT, SETTINGS
from mlplatform.core.landing import LandingCursor
from mlplatform.definitions import ASSETS
from mlplatform_tests.code_location import platform_for
from mlplatform_tests.conftest import make_platform
from mlplatform_tests.packaged import generated_day

DAY = "2026-03-02"


def failure_message(result) -> str:
    failures = result.get_step_failure_events()
    assert failures, "expected a failed step"
    data = failures[0].step_failure_data
    description = data.user_failure_data.description if data.user_failure_data else ""
    return f"{data.error.to_string()} {description}"


def retries(result) -> int:
    return sum(1 for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY")


def files_platform(tmp_path, source):
    return make_platform(
        tmp_path, MLPLATFORM_SOURCE_KIND="files", MLPLATFORM_SOURCE_PATH=str(source)
    )


def materialize(platform, selection, assets=ASSETS):
    return dg.materialize(
        assets, selection=selection, partition_key=DAY, resources=platform.resources,
        raise_on_error=False,
    )  # fmt: skip


def header_only(rows: pd.DataFrame, source) -> None:
    rows.head(0).to_csv(source, index=False)


def missing_column(rows: pd.DataFrame, source) -> None:
    rows.drop(columns=["amount"]).to_csv(source, index=False)


def not_parquet(rows: pd.DataFrame, source) -> None:
    source.write_bytes(b"truncated upload")


@pytest.mark.parametrize(
    ("spoil", "message"),
    [
        (not_parquet, "{source}: cannot read as parquet"),
        (missing_column, "{source}: columns required by contract {contract} are missing: "
                         "['amount']"),
        (header_only, "{folder}: no rows for 2026-03-02 in 1 file(s) (header only"),
    ],
    ids=["unreadable", "missing-column", "header-only"],
)  # fmt: skip
def test_unusable_input_is_named_and_previous_raw_data_survives(tmp_path, spoil, message):
    folder = tmp_path / "landing"
    folder.mkdir()
    good = folder / "tx.parquet"
    rows = generated_day(pd.Timestamp(DAY).date())
    rows.to_parquet(good)
    platform = files_platform(tmp_path, folder)
    assert materialize(platform, ["raw_transactions"]).success
    stored = platform.data_dir / "raw_transactions" / f"{DAY}.parquet"
    before = stored.read_bytes()

    # The day's delivery is replaced by an unusable one.
    source = folder / ("tx.parquet" if spoil is not_parquet else "tx.csv")
    if source != good:
        good.unlink()
    spoil(rows, source)
    result = materialize(platform, ["raw_transactions"])
    assert not result.success
    assert message.format(
        source=source, folder=folder, contract=CONTRACT.source
    ) in failure_message(result)
    assert retries(result) == 0  # bad content: the error policy fails fast
    # Refused before it was stored: raw and validated data of the day still agree.
    assert stored.read_bytes() == before


def test_unreachable_source_is_retried_by_the_ingestion_policy(tmp_path):
    from mlplatform.config.active import ORCHESTRATION

    platform = files_platform(tmp_path, tmp_path / "landing" / "not-yet.parquet")
    result = materialize(platform, ["raw_transactions"])
    assert not result.success
    assert retries(result) == ORCHESTRATION.retries["ingestion"].max_retries == 3
    assert "no such file or folder" in failure_message(result)


def test_missing_target_column_fails_ingestion_and_keeps_the_last_good_outputs(tmp_path):
    source = tmp_path / "landing" / "tx.csv"
    source.parent.mkdir()
    rows = generated_day(pd.Timestamp(DAY).date())
    rows.to_csv(source, index=False)
    platform = files_platform(tmp_path, source)
    assert materialize(platform, ["raw_transactions", "validated_transactions",
                                  "quarantined_transactions"]).success  # fmt: skip
    validated = platform.data_dir / "validated_transactions" / f"{DAY}.parquet"
    before = validated.read_bytes()

    rows.drop(columns=["is_fraud"]).to_csv(source, index=False)
    result = materialize(
        platform, ["raw_transactions", "validated_transactions", "quarantined_transactions"]
    )
    assert not result.success
    message = failure_message(result)
    assert f"raw_transactions[2026-03-02] from files at {source}: {source}" in message
    assert "['is_fraud']" in message
    assert validated.read_bytes() == before
    # Retrying cannot fix bad data: the error policy fails fast, without retries.
    assert retries(result) == 0
    failure = result.get_step_failure_events()[0]
    assert failure.step_failure_data.user_failure_data.metadata["severity"].value == "critical"


def test_empty_partition_is_refused_with_the_partition_named(tmp_path):
    source = tmp_path / "landing" / "tx.csv"
    source.parent.mkdir()
    generated_day(pd.Timestamp("2026-03-05").date()).to_csv(source, index=False)
    result = materialize(files_platform(tmp_path, source), ["raw_transactions",
                         "validated_transactions", "quarantined_transactions"])  # fmt: skip
    assert not result.success
    message = failure_message(result)
    assert "raw_transactions[2026-03-02]" in message and "no rows for 2026-03-02" in message
    assert not (tmp_path / "data" / "raw_transactions" / f"{DAY}.parquet").exists()


def test_generator_refuses_a_contract_it_does_not_produce(tmp_path):
    with platform_for(tmp_path, MLPLATFORM_DATASET="credit_data") as (platform, definitions):
        result = materialize(platform, ["raw_transactions"], definitions.ASSETS)
    assert not result.success
    assert "produces card_transactions, but the contract is 'credit_data'" in failure_message(
        result
    )


# The new_data sensor and rows that fall in no partition ------------------------------------------


def land(folder, name: str, rows: pd.DataFrame) -> None:
    """A file in the landing folder, settled (last written ten minutes ago)."""
    import os
    import time

    rows.to_parquet(folder / name)
    stamp = time.time() - 600
    os.utime(folder / name, (stamp, stamp))


def tick(platform, instance, cursor=None):
    from mlplatform.automation.sensors import new_data

    # A context manager: a resource with `Locked` fields (resources/locked.py) is opened in one.
    with dg.build_sensor_context(
        instance=instance,
        cursor=cursor,
        resources={"data_source": platform.resources["data_source"]},
    ) as context:
        return new_data(context)


def with_times(rows: pd.DataFrame, times: dict[int, object]) -> pd.DataFrame:
    rows = rows.reset_index(drop=True).astype({"event_time": object})
    for position, value in times.items():
        stamp = pd.Timestamp(value)
        rows.loc[rows.index[position], "event_time"] = (
            stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp
        )
    return rows


def test_rows_in_no_partition_do_not_stop_the_sensor_from_requesting_the_good_days(tmp_path):
    import datetime as dt

    folder = tmp_path / "landing"
    folder.mkdir()
    platform = files_platform(tmp_path, folder)
    days = [generated_day(dt.date(2026, 3, d), rows_per_day=100) for d in (1, 2)]
    far = dt.datetime.now(dt.UTC) + dt.timedelta(days=400)
    land(folder, "tx.parquet", with_times(pd.concat(days), {0: "1970-01-01", 1: far}))
    with dg.instance_for_test() as instance:
        first = tick(platform, instance)
        assert sorted(r.partition_key for r in first.run_requests) == ["2026-03-01", "2026-03-02"]
        # Nothing of the file is waited for: it is done, and the next tick has nothing new.
        assert isinstance(tick(platform, instance, first.cursor), dg.SkipReason)


def test_a_file_with_todays_rows_runs_its_other_days_now_and_waits_only_for_today(tmp_path):
    import datetime as dt

    folder = tmp_path / "landing"
    folder.mkdir()
    platform = files_platform(tmp_path, folder)
    today = dt.datetime.now(dt.UTC).date()
    rows = pd.concat(
        [generated_day(today - dt.timedelta(days=2), rows_per_day=100),
         generated_day(today, rows_per_day=100)]
    )  # fmt: skip
    land(folder, "tx.parquet", rows)
    with dg.instance_for_test() as instance:
        first = tick(platform, instance)
        assert [r.partition_key for r in first.run_requests] == [
            (today - dt.timedelta(days=2)).isoformat()
        ]
        # Revisited for today only: the day already requested is not requested again.
        again = tick(platform, instance, first.cursor)
        assert again.run_requests == []
        assert (today - dt.timedelta(days=2)).isoformat() in again.cursor


def test_rows_in_no_partition_are_quarantined_by_the_files_first_day(tmp_path):
    import datetime as dt

    from mlplatform.core.validate import REASON_COLUMN

    folder = tmp_path / "landing"
    folder.mkdir()
    platform = files_platform(tmp_path, folder)
    rows = with_times(
        pd.concat([generated_day(dt.date(2026, 3, d), rows_per_day=100) for d in (2, 3)]),
        {0: "1970-01-01", 1: "2099-01-01"},
    )
    land(folder, "tx.parquet", rows)
    selection = ["raw_transactions", "validated_transactions", "quarantined_transactions"]
    counted = 0
    for day in ("2026-03-02", "2026-03-03"):
        result = dg.materialize(ASSETS, selection=selection, partition_key=day,
                                resources=platform.resources)  # fmt: skip
        stored = {
            name: pd.read_parquet(platform.data_dir / name / f"{day}.parquet")
            for name in selection[1:]
        }
        counted += sum(len(frame) for frame in stored.values())
        outside = (
            stored["quarantined_transactions"][REASON_COLUMN]
            .astype(str)
            .str.contains("outside every")
        )
        raw_metadata = result.asset_materializations_for_node("raw_transactions")[0].metadata
        if day == "2026-03-02":
            assert outside.sum() == 2
            assert raw_metadata["rows_outside_every_partition"].value["rows"] == 2
            assert raw_metadata["rows_outside_every_partition"].value["earliest_event_time"] == (
                "1970-01-01 00:00:00+00:00"
            )
        else:
            assert outside.sum() == 0
    assert counted == len(rows)


FIRST_PARTITION = SETTINGS.partitions.start_date.isoformat()


def all_outside(day, rows: int = 200) -> pd.DataFrame:
    """A day's rows whose event times all fall in no partition: before the start, in the far
    future, unreadable."""
    import datetime as dt

    far = dt.datetime.now(dt.UTC) + dt.timedelta(days=400)
    frame = generated_day(day, rows_per_day=rows).reset_index(drop=True)
    times = ["1970-01-01T00:00:00Z", far.isoformat(), "not a time"]
    return frame.assign(event_time=[times[i % 3] for i in range(len(frame))])


def test_a_file_with_no_row_in_any_partition_gets_an_ingestion_run_of_the_first_partition(
    tmp_path,
):
    import datetime as dt

    from mlplatform.automation.sensors import QUARANTINE_ONLY

    folder = tmp_path / "landing"
    folder.mkdir()
    platform = files_platform(tmp_path, folder)
    land(folder, "old.parquet", all_outside(dt.date(2026, 3, 2)).astype({"event_time": str}))
    with dg.instance_for_test() as instance:
        first = tick(platform, instance)
        [request] = first.run_requests
        assert request.partition_key == FIRST_PARTITION
        # Ingestion and validation only: a bad file must not retrain (or register) anything.
        assert request.asset_selection == QUARANTINE_ONLY
        assert request.tags["source_file"] == str(folder / "old.parquet")
        # The file is done: the sensor moves on.
        assert isinstance(tick(platform, instance, first.cursor), dg.SkipReason)

        # With a file that has rows of the first day in the same tick, its training run of that
        # day quarantines them: no second run of the day.
        land(folder, "start.parquet", generated_day(dt.date(2026, 1, 1), rows_per_day=50))
        land(folder, "old2.parquet", all_outside(dt.date(2026, 3, 3)).astype({"event_time": str}))
        second = tick(platform, instance, first.cursor)
        [request] = second.run_requests
        assert request.partition_key == FIRST_PARTITION
        assert request.asset_selection is None  # the whole training pipeline


def test_a_file_with_no_row_in_any_partition_waits_for_its_pending_day(tmp_path):
    import datetime as dt

    folder = tmp_path / "landing"
    folder.mkdir()
    platform = files_platform(tmp_path, folder)
    today = dt.datetime.now(dt.UTC).date()
    rows = with_times(generated_day(today, rows_per_day=50), {0: "1970-01-01"})
    land(folder, "tx.parquet", rows)
    with dg.instance_for_test() as instance:
        first = tick(platform, instance)
        # Today's rows will make today the file's first partition day: the old row waits with
        # them rather than go to the first partition now and again with today later.
        assert first.run_requests == []
        assert str(folder / "tx.parquet") not in LandingCursor.parse(first.cursor).processed


def test_the_ingestion_run_quarantines_every_row_in_no_partition_with_gates_judging_own_rows(
    tmp_path,
):
    """The run the sensor requests, through the job: rows in = validated + quarantined, the
    carried rows with their reason, and the first day's blocking gates judge its own rows."""
    import datetime as dt

    from mlplatform.automation.jobs import training_pipeline
    from mlplatform.automation.sensors import QUARANTINE_ONLY
    from mlplatform.checks.gate_history import failed_blocking_checks
    from mlplatform.core.validate import REASON_COLUMN
    from mlplatform.definitions import CHECKS

    folder = tmp_path / "landing"
    folder.mkdir()
    platform = files_platform(tmp_path, folder)
    outside = all_outside(dt.date(2026, 3, 2), rows=400).astype({"event_time": str})
    land(folder, "old.parquet", outside)
    defs = dg.Definitions(
        assets=ASSETS, asset_checks=CHECKS, jobs=[training_pipeline], resources=platform.resources
    )
    job = defs.resolve_job_def("training_pipeline")

    def run_first_partition(instance):
        result = job.execute_in_process(
            partition_key=FIRST_PARTITION,
            asset_selection=QUARANTINE_ONLY,
            instance=instance,
            raise_on_error=False,
        )
        stored = {
            name: pd.read_parquet(platform.data_dir / name / f"{FIRST_PARTITION}.parquet")
            for name in ("validated_transactions", "quarantined_transactions")
        }
        checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
        return result, stored, checks

    with dg.instance_for_test() as instance:
        # The first day holds no row of its own: its rows in no partition are still quarantined.
        result, stored, checks = run_first_partition(instance)
        assert result.success
        assert len(stored["validated_transactions"]) == 0
        quarantined = stored["quarantined_transactions"]
        assert sorted(quarantined["transaction_id"]) == sorted(outside["transaction_id"])
        assert (
            quarantined[REASON_COLUMN].str.startswith("event_time: outside every partition: ").all()
        )
        assert {r.split(": ")[2].split(" (")[0] for r in quarantined[REASON_COLUMN]} == {
            "before the first partition", "in the future", "not a valid datetime"
        }  # fmt: skip
        # The day is empty and the gate says so, as a warning that lets validation run.
        assert not checks["not_empty"].passed
        assert checks["not_empty"].severity == dg.AssetCheckSeverity.WARN
        # A label rate of no rows is no finding; the day stays out of training windows by its
        # failed not_empty gate.
        assert checks["label_rate"].severity == dg.AssetCheckSeverity.WARN
        assert failed_blocking_checks(instance, "raw_transactions", FIRST_PARTITION) == [
            "not_empty"
        ]

        # With rows of its own, the day's quarantine rate leaves the carried rows out (they are
        # 400 of 1,400 rows: counted, the rate would be past its 5% limit).
        own = generated_day(dt.date(2026, 1, 1), rows_per_day=1000)
        land(folder, "start.parquet", own)
        result, stored, checks = run_first_partition(instance)
        assert result.success
        assert len(stored["validated_transactions"]) + len(stored["quarantined_transactions"]) == (
            len(own) + len(outside)
        )
        assert checks["quarantine_rate"].passed, checks["quarantine_rate"].description
        assert checks["quarantine_rate"].metadata["observed"].value < 0.05
        assert {name for name, e in checks.items() if not e.passed} <= {"fresh", "null_rate"}
