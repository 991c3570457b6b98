"""Calendar days of event times, by arithmetic on the timestamps. Formatting every row's time as
text (`.dt.strftime`) to compare days costs about 5 s per million rows; taking the wall clock's
midnight costs almost nothing.

A day is a `datetime.date` here and everywhere in `core/`: the text of a partition key
(YYYY-MM-DD) is Dagster's, turned into a date where a stage reads its partition
(`mlplatform.stages.partition_day`) and back only where the instance is asked about partitions."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import pandas as pd


def in_time_zone(frame: pd.DataFrame, column: str, timezone: str) -> pd.DataFrame:
    """`frame` with its times in `column` (timezone-aware) shown in `timezone`: the days below are
    then the partitions' days wherever the rows came from (in UTC, an evening in Chicago is the
    next day)."""
    times = frame[column]
    if times.dt.tz is None or str(times.dt.tz) == timezone:
        return frame
    return frame.assign(**{column: times.dt.tz_convert(timezone)})


def _wall_days(times: pd.Series) -> pd.Series:
    """Each time's calendar day on the wall clock of its own zone (naive midnights). Flooring a
    zone-aware time to the day fails where a clock change skips midnight (NonExistentTimeError),
    and a day is not always 24 hours long: the wall clock has neither problem."""
    wall = times.dt.tz_localize(None) if times.dt.tz is not None else times
    return wall.dt.normalize()


def on_day(times: pd.Series, day: dt.date) -> pd.Series:
    """Which rows fall on `day`, in the times' own time zone."""
    return _wall_days(times) == pd.Timestamp(day)


def days_present(times: pd.Series) -> list[dt.date]:
    """The days the times fall on, in order."""
    days = _wall_days(times).dropna().drop_duplicates().sort_values()
    return [day.date() for day in days]


def before_day(times: pd.Series, day: dt.date) -> pd.Series:
    """Which rows fall on a day before `day`, in the times' own time zone."""
    return _wall_days(times) < pd.Timestamp(day)


def on_any_day(times: pd.Series, days: Iterable[dt.date]) -> pd.Series:
    """Which rows fall on one of `days`."""
    return _wall_days(times).isin([pd.Timestamp(day) for day in days])
