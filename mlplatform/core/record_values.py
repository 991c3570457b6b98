"""Record values as the platform compares them across sources: as text (ids, outcomes and labels;
a whole float reads as the integer it holds, so a column read with a gap still matches) and as
times (UTC, and the calendar day on a time zone's wall clock), vectorised over distinct values."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def as_text(value: Any) -> str:
    """A value as text, the way outcomes and labels are compared: a float holding a whole number
    reads as that number (1.0 as "1"), so a column read as float (it had a gap) still matches."""
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


def text_series(values: pd.Series) -> pd.Series:
    """Each value as text (`as_text`), missing values kept missing (None), on a fresh index."""
    values = values.reset_index(drop=True)
    missing = values.isna().to_numpy()
    if pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty"):
        text = values.astype(object)
    elif pd.api.types.is_float_dtype(values.dtype):
        whole = ~missing & (values == np.floor(values)).to_numpy()
        text = values.astype(str).astype(object)
        text[whole] = values[whole].astype("int64").astype(str)
    elif pd.api.types.is_object_dtype(values.dtype):
        # Mixed values: turned into text once per distinct value.
        codes, distinct = distinct_values(values)
        lookup = np.array([as_text(value) for value in distinct] + [None], dtype=object)
        text = pd.Series(lookup[codes], dtype=object)
    else:
        text = values.astype(str).astype(object)
    return text.where(~missing, None)


def distinct_values(values: pd.Series) -> tuple[np.ndarray, list[Any]]:
    """Codes of the values (-1: missing) and one value per code. Unlike `pd.factorize`, which
    takes True for 1 (they are equal in Python), values of different types stay apart."""
    if not pd.api.types.is_object_dtype(values.dtype):
        codes, uniques = pd.factorize(values)
        return codes, list(uniques)
    key = values.map(type).astype(str) + ":" + values.astype(str)
    codes, _ = pd.factorize(key.where(values.notna(), None))
    first = pd.Series(np.arange(len(codes)))[codes >= 0].groupby(codes[codes >= 0]).first()
    return codes, list(values.to_numpy(dtype=object)[first.to_numpy()])


def text_index(index: pd.Index) -> pd.Index:
    return pd.Index(text_series(index.to_series()).to_numpy(dtype=object), dtype=object)


def outcome_texts(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Each outcome as compared (`as_text`) and as shown in a reason ('yes', or with its type when
    not text: 1.5 (float), True (bool)), computed once per distinct value."""
    codes, distinct = distinct_values(values.reset_index(drop=True))
    plain = [v.item() if isinstance(v, np.generic) else v for v in distinct]
    compared = [as_text(value) for value in plain] + [None]
    shown = [
        repr(value) if isinstance(value, str) else f"{value!r} ({type(value).__name__})"
        for value in plain
    ] + ["missing"]
    return (
        pd.Series(np.array(compared, dtype=object)[codes], dtype=object),
        pd.Series(np.array(shown, dtype=object)[codes], dtype=object),
    )


def utc_times(values: pd.Series) -> pd.Series:
    """Times in UTC (naive times are taken as UTC)."""
    if not isinstance(values.dtype, pd.DatetimeTZDtype):
        values = pd.to_datetime(values, utc=True)
    return values.dt.tz_convert("UTC")


def parse_times(values: pd.Series) -> pd.Series:
    """UTC times, NaT where a value is missing or not a date-time. Naive times are taken as UTC;
    numbers are not read as times since an epoch (nor is a bare "2026" a year)."""
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        return utc_times(values.reset_index(drop=True))
    if pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_bool_dtype(values.dtype):
        return pd.Series(pd.NaT, index=pd.RangeIndex(len(values)), dtype="datetime64[ns, UTC]")
    text = text_series(values)
    numeric = text.str.fullmatch(r"\s*[-+]?\d+(\.\d*)?\s*").to_numpy(dtype=bool, na_value=False)
    parsed = pd.to_datetime(text.where(~numeric, None), utc=True, errors="coerce", format="ISO8601")
    return parsed.astype("datetime64[ns, UTC]")


def wall_days(times: pd.Series, timezone: str) -> pd.Series:
    """Each time's calendar day (a naive midnight) on the wall clock of `timezone`."""
    return times.dt.tz_convert(timezone).dt.tz_localize(None).dt.normalize()


def day_texts(days: pd.Series) -> np.ndarray:
    """YYYY-MM-DD of each day, formatted once per distinct day."""
    codes, distinct = pd.factorize(days)
    lookup = np.array([day.strftime("%Y-%m-%d") for day in distinct] + [None], dtype=object)
    return lookup[codes]


def text_frame(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {column: text_series(frame[column]).to_numpy(dtype=object) for column in frame.columns},
        index=frame.index,
    )
