"""Calendar days of event times, by arithmetic on the timestamps. Formatting every row's time as
text (`.dt.strftime`) to compare days costs about 5 s per million rows; flooring costs almost
nothing."""

from __future__ import annotations

import pandas as pd


def in_time_zone(frame: pd.DataFrame, column: str, timezone: str) -> pd.DataFrame:
    """`frame` with its times in `column` (timezone-aware) shown in `timezone`: the days below are
    then the partitions' days wherever the rows came from (in UTC, an evening in Chicago is the
    next day)."""
    times = frame[column]
    if times.dt.tz is None or str(times.dt.tz) == timezone:
        return frame
    return frame.assign(**{column: times.dt.tz_convert(timezone)})


def _day_start(times: pd.Series, day: str) -> pd.Timestamp:
    start = pd.Timestamp(day)
    return start.tz_localize(times.dt.tz) if times.dt.tz is not None else start


def on_day(times: pd.Series, day: str) -> pd.Series:
    """Which rows fall on `day` (YYYY-MM-DD), in the times' own time zone."""
    start = _day_start(times, day)
    return (times >= start) & (times < start + pd.Timedelta(days=1))


def days_present(times: pd.Series) -> list[str]:
    """The days (YYYY-MM-DD) the times fall on, in order."""
    days = times.dt.floor("D").dropna().drop_duplicates().sort_values()
    return [day.strftime("%Y-%m-%d") for day in days]


def on_any_day(times: pd.Series, days: list[str]) -> pd.Series:
    """Which rows fall on one of `days`."""
    return times.dt.floor("D").isin([_day_start(times, day) for day in days])
