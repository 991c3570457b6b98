"""The contract type of each column of a sample, and the column specs (nullability, ranges,
categories) of the typed sample.

Types are decided here, not by pandas or pandera: a CSV arrives as text (see
core/file_reading.py), and pandera's `infer_schema` reads the dtype pandas holds, so every column
of a CSV would be a string to it. Each column is instead given the narrowest contract type whose
conversion (the validator's own, so the draft and validation agree) accepts every value of the
sample; then pandera's inference runs on the converted frame for what it does well (nullability,
min/max, the levels of a category). What is done differently from pandera, and why:
- text with few distinct values becomes a `category` with its levels (pandera lists levels only
  for a pandas Categorical dtype), and many-valued text a `string` kept out of the features;
- numbers written with leading zeros (`007`) stay text: as numbers they would lose the zeros;
- `yes`/`no` stay words (a category), only `true`/`false` become boolean, so a target reading
  `Yes` keeps `Yes` as its positive label.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mlplatform.core.contract import ColumnSpec
from mlplatform.core.validate import _coerce_column

# Text with at most this many distinct values, each seen CATEGORY_MIN_AVERAGE_COUNT times on
# average, is a category; more varied text (names, free text, secondary ids) is a string.
MAX_CATEGORIES = 100
CATEGORY_MIN_AVERAGE_COUNT = 5
# Words that make a column of two values boolean. yes/no, y/n and 0/1 are left as words or numbers.
BOOLEAN_WORDS = {"true", "false", "t", "f"}
INTEGER_TEXT = re.compile(r"^[+-]?\d+$")
# Words a sample may use for "no value" (R writes NA); only an empty field is missing to the
# platform, so they are named to the user, not taken for a type's values.
MISSING_MARKERS = {"na", "n/a", "nan", "null", "none", "nil", "#n/a"}
LEADING_ZERO = re.compile(r"^[+-]?0\d")


@dataclass(frozen=True)
class ColumnType:
    """A column's inferred type; `unreadable` values present in the sample do not convert to it
    (validation will quarantine their rows), and the note says why and which."""

    type: str
    note: str = ""
    unreadable: int = 0


def _examples(values: pd.Series) -> str:
    return ", ".join(repr(v) for v in sorted(set(values))[:3])


def infer_column_type(values: pd.Series) -> ColumnType:
    """The narrowest contract type whose conversion accepts the values present: all of them, or
    all but a few (at most 1%, so a stray `n/a` does not turn a number column into text); words
    that usually mean "missing" (`NA`, `null`) are left out of the decision and named, as only an
    empty field is missing to the platform."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        values = values.astype(object)
    present = values.dropna()
    if present.empty:
        return ColumnType("string", "no value in the sample: the type is unknown")
    if pd.api.types.is_bool_dtype(values):
        return ColumnType("boolean")
    if pd.api.types.is_integer_dtype(values):
        return ColumnType("integer")
    if pd.api.types.is_float_dtype(values):
        return ColumnType("float")
    if pd.api.types.is_datetime64_any_dtype(values):
        return ColumnType("datetime")
    # Each distinct value once, with its count: a column of a million rows has far fewer.
    counts = present.value_counts(sort=False)
    distinct = pd.Series(counts.index.astype(str), dtype=object)
    weights = counts.to_numpy()
    words = distinct.str.strip().str.lower()
    is_marker = words.isin(MISSING_MARKERS).to_numpy()
    markers = (distinct[is_marker], int(weights[is_marker].sum()))
    candidates, candidate_weights = distinct[~is_marker], weights[~is_marker]
    total = int(candidate_weights.sum())
    tolerated = total // 100
    if candidates.str.match(LEADING_ZERO).any():
        return ColumnType("string", "numbers written with leading zeros: kept as text")
    if total and words[~is_marker].isin(BOOLEAN_WORDS).all():
        return _with_markers(ColumnType("boolean"), *markers)
    readable = pd.to_numeric(candidates, errors="coerce").notna().to_numpy()
    if total and candidate_weights[~readable].sum() <= tolerated:
        kind = "integer" if candidates[readable].str.match(INTEGER_TEXT).all() else "float"
    else:
        times = pd.to_datetime(candidates, errors="coerce", utc=True, format="ISO8601")
        readable = times.notna().to_numpy()
        kind = "datetime" if total and candidate_weights[~readable].sum() <= tolerated else ""
    if kind:
        unreadable = int(candidate_weights[~readable].sum())
        drafted = ColumnType(kind)
        if unreadable:
            drafted = ColumnType(
                kind,
                f"{unreadable} value(s) in the sample are not {kind}s "
                f"({_examples(candidates[~readable])}): validation quarantines their rows",
                unreadable,
            )
        return _with_markers(drafted, *markers)
    rows = int(weights.sum())
    if len(distinct) <= MAX_CATEGORIES and len(distinct) * CATEGORY_MIN_AVERAGE_COUNT <= rows:
        return ColumnType("category")
    return ColumnType("string", f"{len(distinct)} distinct values in {rows}: not used as a feature")


def _with_markers(drafted: ColumnType, markers: pd.Series, count: int) -> ColumnType:
    if not count:
        return drafted
    note = (
        f"{count} value(s) written {_examples(markers)} for missing: only an empty field "
        "is missing to the platform, so validation quarantines their rows (write them empty)"
    )
    return ColumnType(
        drafted.type,
        f"{drafted.note}; {note}" if drafted.note else note,
        drafted.unreadable + count,
    )


def typed_frame(
    frame: pd.DataFrame,
) -> tuple[pd.DataFrame, dict[str, str], dict[str, ColumnType]]:
    """The sample converted to its inferred types as validation converts it (the validator's own
    conversion, so draft and validation agree; categories as pandas Categoricals), the types and
    what was inferred per column. A value that does not convert is missing in the converted
    frame."""
    converted, types, inferred = {}, {}, {}
    for name in frame.columns:
        drafted = infer_column_type(frame[name])
        spec = ColumnSpec(
            type=drafted.type, categories=["-"] if drafted.type == "category" else None
        )
        values = _coerce_column(frame[name], spec)
        if drafted.type == "category":
            values = pd.Categorical(values)
        converted[name], types[name], inferred[name] = values, drafted.type, drafted
    return pd.DataFrame(converted, index=frame.index), types, inferred


def plain_value(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def column_specs(
    typed: pd.DataFrame, types: dict[str, str], missing: pd.Series | None = None
) -> dict[str, dict[str, Any]]:
    """Min/max and categories from pandera's inference on the typed sample; nullability too,
    unless `missing` (per column: whether the sample as read has empty fields) is given: a value
    that does not convert is missing in the typed sample, but it is not an empty field."""
    from pandera.pandas import infer_schema

    inferred = infer_schema(typed)
    specs: dict[str, dict[str, Any]] = {}
    for name, column_type in types.items():
        column = inferred.columns[name]
        nullable = column.nullable if missing is None else missing[name]
        spec: dict[str, Any] = {"type": column_type, "nullable": bool(nullable)}
        for check in column.checks:
            stats = check.statistics
            if column_type in ("integer", "float") and "min_value" in stats:
                spec["min"] = _number(stats["min_value"], column_type)
            if column_type in ("integer", "float") and "max_value" in stats:
                spec["max"] = _number(stats["max_value"], column_type)
            if column_type == "category" and "allowed_values" in stats:
                spec["categories"] = sorted(str(v) for v in stats["allowed_values"])
        specs[name] = spec
    return specs


def _number(value: Any, column_type: str) -> int | float:
    value = float(plain_value(value))
    return int(value) if column_type == "integer" else value
