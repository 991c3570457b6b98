import datetime as dt

import pandas as pd
import pytest

from mlplatform.core.sources import SourceError, list_source_files, read_source_day
from mlplatform.core.validate import DatasetError
from mlplatform_tests.packaged import generated_day

DAY = dt.date(2026, 3, 2)


@pytest.fixture
def two_days() -> pd.DataFrame:
    return pd.concat([generated_day(DAY), generated_day(DAY + dt.timedelta(1))])


def expected_day(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame["event_time"].dt.date == DAY]


def test_csv_file_is_cut_to_the_day(tmp_path, two_days):
    path = tmp_path / "tx.csv"
    two_days.to_csv(path, index=False)
    day = read_source_day(str(path), "event_time", DAY)
    assert len(day) == len(expected_day(two_days))
    assert set(day["transaction_id"]) == set(expected_day(two_days)["transaction_id"])


def test_parquet_folder_and_glob(tmp_path, two_days):
    folder = tmp_path / "landing"
    folder.mkdir()
    for i, (_, part) in enumerate(two_days.groupby(two_days["event_time"].dt.date)):
        part.to_parquet(folder / f"part-{i}.parquet")
    (folder / "README.txt").write_text("not data")
    assert len(list_source_files(str(folder))) == 2
    by_folder = read_source_day(str(folder), "event_time", DAY)
    by_glob = read_source_day(str(folder / "*.parquet"), "event_time", DAY)
    assert len(by_folder) == len(by_glob) == len(expected_day(two_days))


def test_fsspec_url(two_days):
    import fsspec

    with fsspec.open("memory://landing/tx.parquet", "wb") as handle:
        two_days.to_parquet(handle)
    day = read_source_day("memory://landing/*.parquet", "event_time", DAY)
    assert len(day) == len(expected_day(two_days))


def test_missing_path_is_named(tmp_path):
    with pytest.raises(SourceError, match="no such file or folder"):
        read_source_day(str(tmp_path / "nothing.csv"), "event_time", DAY)


def test_unreadable_file_is_named(tmp_path):
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"this is not parquet")
    with pytest.raises(DatasetError, match=r"broken\.parquet: cannot read as parquet"):
        read_source_day(str(path), "event_time", DAY)


def test_missing_event_time_column_is_named(tmp_path, two_days):
    path = tmp_path / "tx.csv"
    two_days.drop(columns=["event_time"]).to_csv(path, index=False)
    with pytest.raises(DatasetError, match="event-time column 'event_time'"):
        read_source_day(str(path), "event_time", DAY)


def test_rows_without_event_time_stop_the_read_with_their_line(tmp_path, two_days):
    frame = two_days.head(5).astype({"event_time": str})
    frame.loc[frame.index[3], "event_time"] = "yesterday"
    path = tmp_path / "tx.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(DatasetError, match="first at line 5: 'yesterday'"):
        read_source_day(str(path), "event_time", DAY)
