import datetime as dt

import pandas as pd

from mlplatform.core.days import days_present, on_any_day, on_day


def times(tz: str | None = "UTC") -> pd.Series:
    values = pd.Series(
        pd.to_datetime(
            ["2026-03-01 23:59:59", "2026-03-02 00:00:00", "2026-03-02 12:00:00",
             "2026-03-03 00:00:00", None]
        )
    )  # fmt: skip
    return values.dt.tz_localize(tz) if tz else values


def test_rows_on_a_day_include_midnight_and_exclude_the_next_midnight():
    for tz in ("UTC", None):
        assert on_day(times(tz), dt.date(2026, 3, 2)).tolist() == [False, True, True, False, False]


def test_days_present_are_ordered_and_skip_missing_times():
    expected = [dt.date(2026, 3, 1), dt.date(2026, 3, 2), dt.date(2026, 3, 3)]
    assert days_present(times()) == expected
    assert days_present(times(None)) == expected


def test_rows_on_any_of_several_days():
    mask = on_any_day(times(), [dt.date(2026, 3, 1), dt.date(2026, 3, 3)])
    assert mask.tolist() == [True, False, False, True, False]


def test_agrees_with_formatting_each_time_as_text():
    generated = pd.Series(pd.date_range("2026-03-01", periods=500, freq="397min", tz="UTC"))
    as_text = generated.dt.strftime("%Y-%m-%d")
    assert [day.isoformat() for day in days_present(generated)] == sorted(as_text.unique())
    for day in days_present(generated):
        assert on_day(generated, day).tolist() == (as_text == day.isoformat()).tolist()
