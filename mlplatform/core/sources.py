"""A source's rows of one daily partition: its files read (file_reading.py), each row placed in
the partition of its event time, and rows that fall in no partition carried to quarantine, not
dropped.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mlplatform.core.contract import Contract
from mlplatform.core.file_reading import read_file
from mlplatform.core.source_files import list_source_files
from mlplatform.core.validate import OUTSIDE_PARTITIONS_COLUMN, DatasetError

# Where a row came from, when asked (`read_source_day(..., with_origin=True)`): its file, and its
# record number in that file (1 for the first record after the header).
SOURCE_FILE_COLUMN = "source_file"
SOURCE_RECORD_COLUMN = "source_record"


@dataclass(frozen=True)
class PartitionSpan:
    """The daily partitions that exist now: from `first` to `last` (yesterday, for days that
    only become partitions once they end), days in `timezone`."""

    first: dt.date
    last: dt.date
    today: dt.date
    timezone: str = "UTC"

    def describe(self) -> str:
        return f"partitions {self.first} to {self.last} ({self.timezone})"


@dataclass
class Placement:
    """Where each row of a file belongs."""

    day: pd.Series  # the row's day in the partitions' timezone (NaN without an event time)
    in_partition: np.ndarray  # its day is a partition that exists
    pending: np.ndarray  # its day is today or tomorrow: a partition not created yet
    outside_reason: pd.Series  # why the row is in no partition (None for the others)

    @property
    def partition_days(self) -> set[dt.date]:
        return set(self.day[self.in_partition].unique())

    @property
    def pending_days(self) -> set[dt.date]:
        return set(self.day[self.pending].unique())

    @property
    def outside(self) -> np.ndarray:
        return self.outside_reason.notna().to_numpy()

    def carrier_day(self, span: PartitionSpan) -> dt.date | None:
        """The partition whose run quarantines this file's rows that fall in no partition, or
        None when there are none or they must wait.

        The file's first day that is a partition; for a file with no row in any partition, the
        first partition (partitions.start_date): a fixed day, unlike "yesterday", so running
        days again never quarantines the same rows on two days. While a day of the file is
        pending, or before the first partition exists, the rows wait: that day may become the
        file's first partition day.
        """
        if not self.outside.any():
            return None
        if self.partition_days:
            return min(self.partition_days)
        if self.pending.any() or span.last < span.first:
            return None
        return span.first


def place_rows(event_time: pd.Series, span: PartitionSpan) -> Placement:
    """The partition of each row by its event time. A row before the first partition, dated after
    tomorrow (timezone skew is at most a day; beyond it the time is wrong) or without a readable
    event time falls in no partition: it gets the reason instead."""
    if isinstance(event_time.dtype, pd.CategoricalDtype):
        event_time = event_time.astype(object)
    parsed = pd.to_datetime(event_time, errors="coerce", utc=True, format="ISO8601")
    local = parsed.dt.tz_convert(span.timezone)
    day = pd.Series(local.dt.date, index=event_time.index)
    known = parsed.notna().to_numpy()
    first, last, tomorrow = (
        pd.Timestamp(d) for d in (span.first, span.last, span.today + dt.timedelta(days=1))
    )
    midnight = local.dt.tz_localize(None).dt.normalize()
    before = known & (midnight < first).to_numpy()
    future = known & (midnight > tomorrow).to_numpy()
    in_partition = known & ~before & (midnight <= last).to_numpy()
    pending = known & ~in_partition & ~before & ~future
    reason = pd.Series(None, index=event_time.index, dtype=object)
    reason[~known & event_time.isna().to_numpy()] = "missing value"
    reason[~known & event_time.notna().to_numpy()] = "not a valid datetime"
    reason[before] = f"before the first partition ({span.first})"
    reason[future] = f"in the future (after {span.today + dt.timedelta(days=1)})"
    return Placement(day=day, in_partition=in_partition, pending=pending, outside_reason=reason)


def read_source_day(
    path: str,
    contract: Contract,
    day: dt.date,
    span: PartitionSpan,
    file_format: str = "auto",
    log: Callable[[str], None] = lambda message: None,
    allow_empty: bool = False,
    with_origin: bool = False,
    max_field_chars: int = 2**31 - 1,
) -> pd.DataFrame:
    """The rows of all files under `path` whose event time falls on `day` (`log` hears, per
    file, how many rows it held and how many are the day's: a long read says where it is).
    `allow_empty`: a day with no rows is an empty frame (outcomes: a day on which none became
    known), not an error. `with_origin`: each row also names its file and its record number in
    it (SOURCE_FILE_COLUMN, SOURCE_RECORD_COLUMN), for reasons that point at a record.
    `max_field_chars`: the longest CSV field read (see read_file).

    Rows of a file that fall in no partition come along with the day `Placement.carrier_day`
    names, marked with their reason in OUTSIDE_PARTITIONS_COLUMN: validation quarantines them
    there, so each row of a file is accounted for exactly once over all days. A day with no row
    of its own is refused, unless it carries such rows: they are what its run is for.
    """
    files = list_source_files(path, file_format)
    of_day, carried = [], []
    for file in files:
        frame = read_file(file, contract, file_format, max_field_chars)
        if with_origin:
            frame = frame.assign(
                **{SOURCE_FILE_COLUMN: file, SOURCE_RECORD_COLUMN: np.arange(1, len(frame) + 1)}
            )
        placement = place_rows(frame[contract.event_time], span)
        of_day.append(frame.loc[(placement.day == day).to_numpy() & placement.in_partition])
        outside = placement.outside
        carries = placement.carrier_day(span) == day
        log(
            f"{file}: {len(frame)} rows read, {len(of_day[-1])} on {day}, "
            f"{int(outside.sum())} in no partition"
            + (f" (quarantined with {day})" if carries else "")
        )
        if carries:
            carried.append(
                frame.loc[outside].assign(
                    **{OUTSIDE_PARTITIONS_COLUMN: placement.outside_reason[outside].to_numpy()}
                )
            )
    parts = [part for part in [*of_day, *carried] if len(part)]
    if not parts and allow_empty:
        origin = (SOURCE_FILE_COLUMN, SOURCE_RECORD_COLUMN) if with_origin else ()
        return pd.DataFrame(
            {name: pd.Series(dtype=object) for name in [*contract.event_columns, *origin]}
        )
    if not parts:
        raise DatasetError(
            f"{path}: no rows for {day} in {len(files)} file(s) (header only, or every row on "
            "another day); the previous data of the day is kept"
        )
    return combined(parts)


def combined(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """The rows of several files as one frame. A column the files type differently (Parquet's
    timestamps beside CSV text, or beside a Parquet file's unreadable times stored as text) is
    kept as the text of each value, which validation converts like any CSV column: a column of
    mixed Python objects could not even be stored."""
    types: dict[str, set[str]] = {}
    for part in parts:
        for name, dtype in part.dtypes.items():
            types.setdefault(name, set()).add(str(dtype))
    mixed = [name for name, seen in types.items() if len(seen) > 1]
    if mixed:
        parts = [
            part.assign(
                **{
                    name: part[name].astype(object).map(_written, na_action="ignore")
                    for name in mixed
                    if name in part.columns
                }
            )
            for part in parts
        ]
    return pd.concat(parts, ignore_index=True)


def _written(value: object) -> str:
    """A typed value as a CSV would hold it: a whole float without its ".0" (Parquet stores a
    column of integers with a gap as floats: 1.0 was a 1, and beside a CSV's "1" it must read
    the same)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def rows_of_day(raw: pd.DataFrame) -> pd.DataFrame:
    """The rows of a raw partition that belong to its day (without rows it carries to quarantine
    because they fall in no partition)."""
    if OUTSIDE_PARTITIONS_COLUMN not in raw.columns:
        return raw
    return raw.loc[raw[OUTSIDE_PARTITIONS_COLUMN].isna()].drop(columns=OUTSIDE_PARTITIONS_COLUMN)


def outside_partitions_summary(raw: pd.DataFrame, contract: Contract) -> dict[str, object]:
    """How many rows of a raw partition fall in no partition, why, and their event-time range."""
    if OUTSIDE_PARTITIONS_COLUMN not in raw.columns:
        return {"rows": 0}
    carried = raw.loc[raw[OUTSIDE_PARTITIONS_COLUMN].notna()]
    times = pd.to_datetime(
        carried[contract.event_time], errors="coerce", utc=True, format="ISO8601"
    ).dropna()
    return {
        "rows": len(carried),
        "reasons": {
            str(k): int(v) for k, v in carried[OUTSIDE_PARTITIONS_COLUMN].value_counts().items()
        },
        "earliest_event_time": str(times.min()) if len(times) else None,
        "latest_event_time": str(times.max()) if len(times) else None,
    }
