"""The Parquet IO manager through real materializations in a temporary folder."""

import dagster as dg
import pandas as pd
import pytest

from mlplatform.resources.io_managers import ParquetIOManager

days = dg.DailyPartitionsDefinition(start_date="2026-03-01")


@dg.asset(partitions_def=days)
def numbers(context: dg.AssetExecutionContext) -> pd.DataFrame:
    day = context.partition_key
    if day == "2026-03-05":
        # Not storable as Parquet: the write fails after the asset computed.
        return pd.DataFrame({"day": [day], "bad": [object()]})
    return pd.DataFrame({"day": [day, day], "value": [1.0, 2.0]})


@dg.asset(
    partitions_def=days,
    ins={
        "numbers": dg.AssetIn(
            partition_mapping=dg.TimeWindowPartitionMapping(start_offset=-2),
            metadata={"allow_missing_partitions": True},
        )
    },
)
def window_total(numbers: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {"days": [sorted(numbers["day"].unique())], "total": [numbers["value"].sum()]}
    )


def run(tmp_path, selection, partition):
    return dg.materialize(
        [numbers, window_total],
        selection=selection,
        partition_key=partition,
        resources={"io_manager": ParquetIOManager(base_dir=str(tmp_path))},
        raise_on_error=False,
    )


def test_partitions_are_stored_as_parquet_and_windows_load_as_one_frame(tmp_path):
    assert run(tmp_path, ["numbers"], "2026-03-02").success
    assert run(tmp_path, ["numbers"], "2026-03-03").success
    # 2026-03-01 was never materialized: the window skips it instead of failing.
    assert run(tmp_path, ["window_total"], "2026-03-03").success
    stored = pd.read_parquet(tmp_path / "window_total" / "2026-03-03.parquet")
    assert list(stored["days"].iloc[0]) == ["2026-03-02", "2026-03-03"]
    assert stored["total"].iloc[0] == 6.0


def test_days_missing_from_a_window_are_named_in_one_line_not_a_warning_each(tmp_path):
    import logging

    resources = {"io_manager": ParquetIOManager(base_dir=str(tmp_path))}
    with dg.instance_for_test() as instance:
        dg.materialize([numbers], partition_key="2026-03-07", resources=resources)
        result = dg.materialize(
            [numbers, window_total],
            selection=["window_total"],
            partition_key="2026-03-07",
            resources=resources,
            instance=instance,
        )
        logs = [(e.level, e.user_message) for e in instance.all_logs(result.run_id)]
    # Two days of the window never written: one line at info names them, no warning per day.
    assert not [m for level, m in logs if level >= logging.WARNING], logs
    (line,) = [m for _, m in logs if "left out" in m]
    assert "Loaded 1 of 3 partitions of numbers" in line
    assert "['2026-03-05', '2026-03-06']" in line


def test_failed_write_leaves_the_previous_version_and_no_debris(tmp_path):
    target = tmp_path / "numbers" / "2026-03-05.parquet"
    target.parent.mkdir(parents=True)
    pd.DataFrame({"day": ["previous"], "value": [9.0]}).to_parquet(target)
    result = run(tmp_path, ["numbers"], "2026-03-05")
    assert not result.success
    assert pd.read_parquet(target)["day"].tolist() == ["previous"]
    assert sorted(p.name for p in target.parent.iterdir()) == ["2026-03-05.parquet"]


def test_failed_write_to_an_object_store_leaves_the_previous_object():
    # fsspec's in-memory filesystem commits on close like an object store does.
    import uuid

    from upath import UPath

    base = UPath(f"memory://mlplatform-test-{uuid.uuid4().hex}")
    target = base / "numbers" / "2026-03-05.parquet"
    with target.open("wb") as handle:
        pd.DataFrame({"day": ["previous"], "value": [9.0]}).to_parquet(handle)
    result = dg.materialize(
        [numbers],
        partition_key="2026-03-05",
        resources={"io_manager": ParquetIOManager(base_dir=str(base))},
        raise_on_error=False,
    )
    assert not result.success
    with target.open("rb") as handle:
        assert pd.read_parquet(handle)["day"].tolist() == ["previous"]


def test_window_with_nothing_materialized_fails_clearly(tmp_path):
    result = run(tmp_path, ["window_total"], "2026-03-09")
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.error
    assert "have been materialized" in str(failure.to_string())


@pytest.mark.parametrize("partition", ["2026-03-02"])
def test_non_dataframe_is_refused(tmp_path, partition):
    @dg.asset(partitions_def=days, name="numbers")
    def not_a_frame() -> dict:
        return {"a": 1}

    result = dg.materialize(
        [not_a_frame],
        partition_key=partition,
        resources={"io_manager": ParquetIOManager(base_dir=str(tmp_path))},
        raise_on_error=False,
    )
    assert not result.success
    assert not (tmp_path / "numbers" / f"{partition}.parquet").exists()


def test_loaded_frames_are_writable_like_read_parquet(tmp_path):
    resources = {"io_manager": ParquetIOManager(base_dir=str(tmp_path))}
    assert dg.materialize([numbers], partition_key="2026-03-02", resources=resources).success

    @dg.asset(partitions_def=days, ins={"numbers": dg.AssetIn(key="numbers")})
    def doubled(numbers: pd.DataFrame) -> pd.DataFrame:
        # In place, as user code may: Arrow's own (read-only) memory would refuse this.
        numbers.loc[numbers["value"] > 1, "value"] *= 2
        numbers["day"] = numbers["day"].str.upper()
        return numbers

    result = dg.materialize(
        [numbers, doubled], selection=["doubled"], partition_key="2026-03-02", resources=resources
    )
    assert result.success
    stored = pd.read_parquet(tmp_path / "doubled" / "2026-03-02.parquet")
    assert stored["value"].tolist() == [1.0, 4.0]


def test_temporary_files_of_gone_writers_are_swept_and_live_ones_kept(tmp_path):
    import os
    import subprocess
    import sys
    import time
    import uuid

    from mlplatform.core.processes import HOST
    from mlplatform.resources.io_managers import UNVOUCHED_TEMPORARY_SECONDS

    folder = tmp_path / "numbers"
    folder.mkdir()
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()  # reaped: its pid no longer runs
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:

        def temporary(pid: int | None, host: str | None, age: float = 0) -> str:
            writer = f"{pid}-" if pid is not None else ""
            where = f"@{host}" if host is not None else ""
            path = folder / f"2026-03-01.parquet.{writer}{uuid.uuid4().hex}{where}.tmp"
            path.write_bytes(b"partial")
            os.utime(path, (time.time() - age, time.time() - age))
            return path.name

        dead_writer = temporary(ended.pid, HOST)
        live_writer = temporary(live.pid, HOST)
        elsewhere_recent = temporary(live.pid, "another-host")
        elsewhere_old = temporary(1, "another-host", age=UNVOUCHED_TEMPORARY_SECONDS + 60)
        unnamed_old = temporary(None, None, age=UNVOUCHED_TEMPORARY_SECONDS + 60)
        unnamed_recent = temporary(None, None)

        assert run(tmp_path, ["numbers"], "2026-03-02").success
        left = {p.name for p in folder.iterdir()}
        assert "2026-03-02.parquet" in left
        assert {live_writer, elsewhere_recent, unnamed_recent} <= left
        assert not {dead_writer, elsewhere_old, unnamed_old} & left
    finally:
        live.kill()
        live.wait()


def test_a_writer_pid_taken_over_by_a_newer_process_counts_as_gone():
    import os
    import time

    from mlplatform.core.processes import process_is_alive

    assert process_is_alive(os.getpid(), active_at=time.time())
    # This process did not exist an hour before the test: it cannot be that time's writer.
    assert not process_is_alive(os.getpid(), active_at=time.time() - 3600 * 24 * 365)


@dg.asset(partitions_def=days, retry_policy=dg.RetryPolicy(max_retries=2))
def retried_total(numbers: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"total": [numbers["value"].sum()]})


def step_events(result: dg.ExecuteInProcessResult, step: str) -> list[dg.DagsterEvent]:
    return [event for event in result.all_events if event.step_key == step]


def test_a_corrupt_stored_partition_fails_its_reader_at_once_naming_it(tmp_path):
    """Dagster gives an IO manager's errors to the step's retry policy whatever they are: a
    corrupt file would be read again after 5, 10 and 20 minutes. The platform's error policy
    decides instead, and an unreadable file cannot become readable by waiting."""
    assert run(tmp_path, ["numbers"], "2026-03-02").success
    (tmp_path / "numbers" / "2026-03-02.parquet").write_bytes(b"PAR1 not parquet at all")
    result = dg.materialize(
        [numbers, retried_total],
        selection=["retried_total"],
        partition_key="2026-03-02",
        resources={"io_manager": ParquetIOManager(base_dir=str(tmp_path))},
        raise_on_error=False,
    )
    assert not result.success
    events = step_events(result, "retried_total")
    assert not [e for e in events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY]
    [failure] = [e for e in events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    message = str(failure.step_failure_data.error)
    assert f"reading numbers[2026-03-02] from {tmp_path}" in message, message
    assert failure.step_failure_data.user_failure_data.metadata["severity"].value == "critical"


def test_a_full_disk_while_writing_goes_to_the_retry_policy(tmp_path):
    """ENOSPC is transient by the rules (error_handling.yaml): raised inside the IO manager's
    error boundary, it stays itself, so the step's retry policy retries it."""
    import errno

    from mlplatform.resources.io_managers import _by_cause

    full = OSError(errno.ENOSPC, "No space left on device")
    with pytest.raises(OSError) as raised, _by_cause("writing numbers[2026-03-02]"):
        raise full
    assert raised.value is full
    with (
        pytest.raises(dg.Failure, match=r"writing numbers\[2026-03-02\]: KeyError") as failed,
        _by_cause("writing numbers[2026-03-02]"),
    ):
        raise KeyError("a programming error")
    assert failed.value.allow_retries is False
