"""A first dataset folder drafted from a sample: the contract (column types, nullability, ranges,
categories, and guesses of the id, event time and target), gate thresholds from the sample's own
label rate and volume, and the partition start from its first day.

The drafted values describe the sample, not what the data may become: every guess and every range
is written with a comment that says where it came from, for a person to confirm or widen.

Types are decided here, not by pandas or pandera: a CSV arrives as text (see core/sources.py), and
pandera's `infer_schema` reads the dtype pandas holds, so every column of a CSV would be a string
to it. Each column is instead given the narrowest contract type whose conversion (the validator's
own, so the draft and validation agree) accepts every value of the sample; then pandera's inference
runs on the converted frame for what it does well (nullability, min/max, the levels of a category).
What is done differently from pandera, and why:
- text with few distinct values becomes a `category` with its levels (pandera lists levels only
  for a pandas Categorical dtype), and many-valued text a `string` kept out of the features;
- numbers written with leading zeros (`007`) stay text: as numbers they would lose the zeros;
- `yes`/`no` stay words (a category), only `true`/`false` become boolean, so a target reading
  `Yes` keeps `Yes` as its positive label;
- no range on the id (new ids lie outside the sample's) nor on datetimes (a contract has none).
"""

from __future__ import annotations

import datetime as dt
import math
import re
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import yaml

from mlplatform.core.contract import ColumnSpec, parse_contract
from mlplatform.core.features import positive_label_flags
from mlplatform.core.validate import FALSE_STRINGS, TRUE_STRINGS, _coerce_column
from mlplatform.core.yaml_files import parse_yaml

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

ID_WORDS = {"id", "key", "uuid", "guid"}
TIME_WORDS = {"time", "date", "timestamp", "ts", "datetime", "at", "created", "when", "day"}
# Names that say "this is what is predicted", then names of common binary outcomes.
TARGET_WORDS = {"target", "label", "y", "class", "outcome", "response"}
OUTCOME_WORDS = {
    "default", "defaulted", "churn", "churned", "fraud", "fraudulent", "bad", "status", "deny",
    "denied", "approved", "accepted", "purchase", "purchased", "converted", "clicked", "fail",
    "failed", "failure", "survived", "attrition", "delinquent", "chargeback",
}  # fmt: skip
POSITIVE_WORDS = {
    "1", "true", "t", "yes", "y", "bad", "fraud", "default", "churn", "positive", "pos", "deny",
    "denied", "fail", "failed", "failure", "event",
}  # fmt: skip

# Standard errors of a day's label rate (at the sample's rate and median day) the label-rate band
# spans on each side: four leave about one false alarm in 15,000 days from sampling alone.
LABEL_RATE_STANDARD_ERRORS = 4
# Margins around the sample's own extremes, for the volume and null-rate bands.
VOLUME_LOW_MARGIN, VOLUME_HIGH_MARGIN = 0.8, 1.25
NULL_RATE_MARGIN = 1.5
# Floors for a dataset nothing is known about yet (the packaged ones are a fraud model's).
DRAFT_ROC_AUC_FLOOR = 0.6
DRAFT_ACCURACY_FLOOR = 0.5
# A drafted feature window never spans more than a year.
MAX_DRAFT_WINDOW_DAYS = 366


class DraftError(ValueError):
    """The sample cannot give a usable contract (no event time, no id, no target...); the message
    says which and what to do."""


@dataclass(frozen=True)
class Guess:
    """A column chosen for a role: given by the user (confirmed) or guessed, with the reason."""

    column: str
    confirmed: bool
    reason: str
    alternatives: tuple[str, ...] = ()

    def comment(self, role: str) -> str:
        if self.confirmed:
            return f"{role}: given on the command line"
        others = f"; other candidates: {', '.join(self.alternatives)}" if self.alternatives else ""
        return f"CONFIRM: guessed {role} ({self.reason}{others})"


@dataclass(frozen=True)
class ColumnDraft:
    spec: dict[str, Any]
    note: str = ""


@dataclass
class Draft:
    name: str
    columns: dict[str, ColumnDraft]
    id: Guess
    event_time: Guess
    target: Guess
    positive_label: Any
    positive_label_note: str
    timezone: str
    contract: dict[str, Any]
    gates: dict[str, Any]
    gate_notes: dict[str, str]
    settings: dict[str, Any]
    settings_notes: dict[str, str]
    facts: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


# Column types --------------------------------------------------------------------------------


def name_words(name: str) -> list[str]:
    """A column name's words, lower case: `customerID` -> customer, id; `is_fraud` -> is, fraud."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", str(name))
    return [word for word in re.split(r"[^A-Za-z0-9]+", spaced.lower()) if word]


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


def _plain(value: Any) -> Any:
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
    value = float(_plain(value))
    return int(value) if column_type == "integer" else value


# Roles -----------------------------------------------------------------------------------------


def guess_id(typed: pd.DataFrame, types: dict[str, str]) -> Guess | None:
    """A column unique and never missing in the sample, text or integer; an id-like name first."""
    candidates = [
        name
        for name in typed.columns
        if types[name] in ("string", "integer", "category")
        and typed[name].notna().all()
        and typed[name].is_unique
    ]
    named = [name for name in candidates if set(name_words(name)) & ID_WORDS]
    if named:
        reason = "unique in the sample, and its name says id"
        return Guess(named[0], False, reason, tuple(c for c in candidates if c != named[0]))
    if candidates:
        reason = "the first column unique in the sample; its name does not say id"
        return Guess(candidates[0], False, reason, tuple(candidates[1:]))
    return None


def guess_event_time(typed: pd.DataFrame, types: dict[str, str]) -> Guess | None:
    """A datetime column, a time-like name first, then the most distinct instants (a column with
    times of day rather than dates only)."""
    candidates = [name for name in typed.columns if types[name] == "datetime"]
    if not candidates:
        return None
    named = [name for name in candidates if set(name_words(name)) & TIME_WORDS]
    pool = named or candidates
    best = max(pool, key=lambda name: (-typed[name].isna().sum(), typed[name].nunique()))
    reason = (
        "parses as dates, and its name says time"
        if named
        else "parses as dates; its name does not say time"
    )
    return Guess(best, False, reason, tuple(c for c in candidates if c != best))


def _target_score(name: str) -> int:
    words = name_words(name)
    if set(words) & TARGET_WORDS:
        return 3
    if set(words) & OUTCOME_WORDS:
        return 2
    if words and words[0] in ("is", "has", "was", "will"):
        return 1
    return 0


def guess_target(typed: pd.DataFrame, types: dict[str, str], reserved: set[str]) -> Guess | None:
    """A column of exactly two values; a name that says label or a known outcome first, else the
    last such column (where a label usually sits)."""
    candidates = [
        name
        for name in typed.columns
        if name not in reserved
        and types[name] in ("category", "boolean", "integer", "float", "string")
        and typed[name].nunique() == 2
    ]
    if not candidates:
        return None
    best_score = max(_target_score(name) for name in candidates)
    top = [name for name in candidates if _target_score(name) == best_score]
    if best_score:
        chosen = top[0]
        reason = "two values, and its name says label or outcome"
    else:
        chosen = candidates[-1]
        reason = "the last column of two values; no name says label or outcome"
    return Guess(chosen, False, reason, tuple(c for c in candidates if c != chosen))


def guess_positive_label(values: pd.Series) -> tuple[Any, str]:
    """The value meaning "positive": a word that says so, else the rarer of the two."""
    counts = values.dropna().astype(object).value_counts()
    by_word = [v for v in counts.index if str(v).strip().lower() in POSITIVE_WORDS]
    if len(by_word) == 1:
        return _plain(by_word[0]), f"CONFIRM: guessed positive label ('{by_word[0]}' says so)"
    rarer = counts.sort_values(kind="stable").index[0]
    share = counts[rarer] / counts.sum()
    return _plain(rarer), f"CONFIRM: guessed positive label (the rarer value, {share:.1%} of rows)"


def parse_label(text: str, column_type: str, values: pd.Series) -> Any:
    """A positive label given on the command line, in the target's type; one the sample never
    holds is refused with the values it does hold."""
    held = sorted({str(_plain(v)) for v in values.dropna()})
    label: Any = text
    if column_type == "integer":
        label = int(text) if INTEGER_TEXT.match(text.strip()) else text
    elif column_type == "float":
        label = float(text) if re.match(r"^[+-]?[\d.]+(e[+-]?\d+)?$", text.strip(), re.I) else text
    elif column_type == "boolean":
        word = text.strip().lower()
        label = True if word in TRUE_STRINGS else False if word in FALSE_STRINGS else text
    if isinstance(label, str) and column_type in ("integer", "float", "boolean"):
        raise DraftError(f"--positive-label {text!r}: the target is {column_type}")
    if str(label) not in held and not any(
        isinstance(label, (int, float, bool)) and _plain(v) == label for v in values.dropna()
    ):
        raise DraftError(f"--positive-label {text!r} is not a value of the target: {held}")
    return label


# Gates and settings from the sample ------------------------------------------------------------


def _days(times: pd.Series, timezone: str) -> pd.Series:
    return times.dt.tz_convert(timezone).dt.date


def label_rate_band(day_rates: pd.Series, day_rows: pd.Series, overall: float) -> dict[str, Any]:
    """min/max rate covering every day of the sample and the overall rate give or take
    LABEL_RATE_STANDARD_ERRORS standard errors of a median-sized day."""
    median_rows = float(day_rows.median())
    error = math.sqrt(overall * (1 - overall) / median_rows) if median_rows else 0.0
    low = min(float(day_rates.min()), overall - LABEL_RATE_STANDARD_ERRORS * error)
    high = max(float(day_rates.max()), overall + LABEL_RATE_STANDARD_ERRORS * error)
    return {
        "min_rate": max(0.0, math.floor(low * 1e4) / 1e4),
        "max_rate": min(1.0, math.ceil(high * 1e4) / 1e4),
        "standard_error": error,
    }


def volume_ratios(day_rows: pd.Series, lookback: int, min_history: int) -> dict[dt.date, float]:
    """Each day's rows against the median of its earlier days in the sample, as the volume gate
    judges it (days with at least `min_history` earlier days among the `lookback` before it)."""
    ratios = {}
    for day, rows in day_rows.items():
        history = [
            day_rows[day - dt.timedelta(days=i)]
            for i in range(1, lookback + 1)
            if day - dt.timedelta(days=i) in day_rows.index
        ]
        if len(history) >= min_history:
            ratios[day] = rows / statistics.median(history)
    return ratios


def _day_end_lags(times: pd.Series, timezone: str) -> pd.Series:
    """Minutes from each day's newest event to the end of that day."""
    local = times.dt.tz_convert(timezone)
    newest = local.groupby(local.dt.date).max()
    ends = [pd.Timestamp(day + dt.timedelta(days=1), tz=timezone) for day in newest.index]
    return pd.Series(
        [(end - t).total_seconds() / 60 for end, t in zip(ends, newest, strict=True)],
        index=newest.index,
    )


@dataclass(frozen=True)
class PackagedGates:
    """The packaged values a draft widens or replaces (core does not read settings)."""

    max_lag_minutes: float
    lookback_partitions: int
    min_history: int
    min_ratio: float
    max_ratio: float
    null_max_rate: float
    window_days: int
    test_fraction: float
    min_positives: int


def draft_gates(
    typed: pd.DataFrame, contract: dict[str, Any], timezone: str, packaged: PackagedGates
) -> tuple[dict[str, Any], dict[str, str], dict[str, Any], dict[str, Any]]:
    """(gate overrides, a comment per dotted key, facts of the sample, settings overrides)."""
    times = typed[contract["event_time"]].dropna()
    all_days = _days(times, timezone)
    day_rows = all_days.value_counts().sort_index()
    ratios = volume_ratios(day_rows, packaged.lookback_partitions, packaged.min_history)
    # An export usually ends in the middle of a day. Covering that day would stretch the volume
    # band to nothing (a 0.02x floor), so it is left out of every band: `dataset check` then
    # fails it on volume, as the pipeline would fail such a day.
    last = max(day_rows.index)
    short_last_day = len(ratios) > 1 and ratios.get(last, 1.0) < packaged.min_ratio
    judged = [day for day in day_rows.index if not (short_last_day and day == last)]
    if short_last_day:
        last_ratio = ratios.pop(last)
    labelled = typed.loc[typed[contract["target"]].notna() & typed[contract["event_time"]].notna()]
    flags = positive_label_flags(labelled[contract["target"]], contract["positive_label"])
    label_days = _days(labelled[contract["event_time"]], timezone)
    day_rates = flags.groupby(label_days.to_numpy()).mean()
    day_rates = day_rates[day_rates.index.isin(judged)]
    overall = float(flags.mean())
    band = label_rate_band(day_rates, day_rows[judged], overall)
    gates: dict[str, Any] = {}
    notes: dict[str, str] = {}
    facts: dict[str, Any] = {
        "rows": len(typed),
        # Every dated row, labelled or not: a row before the first partition is quarantined.
        "first_day": min(all_days),
        "last_day": last,
        "days": len(day_rows),
        "median_rows_per_day": float(day_rows[judged].median()),
        "label_rate": overall,
        "positives": int(flags.sum()),
    }
    left_out = ""
    if short_last_day:
        facts["short_last_day"] = (
            f"the sample's last day ({last}, {day_rows[last]} rows) is {last_ratio:.2f}x its "
            "earlier days: cut short by the export? It is left out of the gate bands, and "
            "`dataset check` fails it on volume as the pipeline would"
        )
        left_out = f" The last day ({last}, {day_rows[last]} rows) is left out: cut short?"

    lags = _day_end_lags(times, timezone)
    lags = lags[lags.index.isin(judged)]
    if lags.max() > packaged.max_lag_minutes:
        lag = math.ceil(lags.max() * 1.1)
        gates.setdefault("raw_transactions", {})["fresh"] = {"max_lag_minutes": lag}
        notes["raw_transactions.fresh"] = (
            f"In the sample a day's newest event came up to {lags.max():.0f} min before the "
            f"day's end (on {lags.idxmax()}; packaged limit {packaged.max_lag_minutes:g}): "
            "widened by 10%. Dates without a time of day always show 1440."
        )

    low = min(packaged.min_ratio, VOLUME_LOW_MARGIN * min(ratios.values(), default=1.0))
    high = max(packaged.max_ratio, VOLUME_HIGH_MARGIN * max(ratios.values(), default=1.0))
    gates.setdefault("raw_transactions", {})["volume_in_band"] = {
        "min_ratio": math.floor(low * 100) / 100,
        "max_ratio": math.ceil(high * 100) / 100,
    }
    shown = (
        f"each day against the median of its earlier days: {min(ratios.values()):.2f}x to "
        f"{max(ratios.values()):.2f}x"
        if ratios
        else f"too few days to compare (fewer than {packaged.min_history + 1})"
    )
    judged_rows = day_rows[judged]
    notes["raw_transactions.volume_in_band"] = (
        f"Rows per day in the sample: median {judged_rows.median():g} (from {judged_rows.min()} "
        f"to {judged_rows.max()} over {len(judged_rows)} days); {shown}. The packaged band "
        f"{packaged.min_ratio}-{packaged.max_ratio}x, widened to cover every day with a "
        f"margin.{left_out}"
    )

    nullable = [name for name, spec in contract["columns"].items() if spec["nullable"]]
    null_rates = typed[nullable].isna().mean() if nullable else pd.Series(dtype=float)
    if len(null_rates) and null_rates.max() > packaged.null_max_rate:
        limit = min(1.0, math.ceil(NULL_RATE_MARGIN * null_rates.max() * 1000) / 1000)
        gates.setdefault("validated_transactions", {})["null_rate"] = {"max_rate": limit}
        notes["validated_transactions.null_rate"] = (
            f"Highest null rate in the sample: {null_rates.max():.4f} ({null_rates.idxmax()}); "
            f"the packaged limit {packaged.null_max_rate} would warn every day: "
            f"{NULL_RATE_MARGIN}x the sample's."
        )

    gates.setdefault("validated_transactions", {})["label_rate"] = {
        "min_rate": band["min_rate"],
        "max_rate": band["max_rate"],
    }
    notes["validated_transactions.label_rate"] = (
        f"Label rate in the sample: {overall:.4f} ({int(flags.sum())} of {len(flags)} rows); by "
        f"day {day_rates.min():.4f} to {day_rates.max():.4f} over {len(day_rates)} days of median "
        f"{judged_rows.median():g} rows. The band covers every day and the rate "
        f"+/- {LABEL_RATE_STANDARD_ERRORS} standard errors of a median day "
        f"({band['standard_error']:.4f} each).{left_out}"
    )

    chance = math.floor(overall * 1000) / 1000
    gates["trained_model"] = {
        "accuracy": {"severity": "WARN", "min": DRAFT_ACCURACY_FLOOR},
        "roc_auc": {"min": DRAFT_ROC_AUC_FLOOR},
        "pr_auc": {"min": chance},
    }
    notes["trained_model"] = (
        "Floors for a dataset nothing is known about yet (the packaged ones suit card fraud): "
        f"ROC-AUC {DRAFT_ROC_AUC_FLOOR} blocks a model hardly better than chance; PR-AUC at "
        f"chance, the label rate {overall:.4f}; accuracy only warns (with a threshold chosen "
        "for F1 it says little). Raise them once you know what a good model reaches."
    )

    settings: dict[str, Any] = {}
    window = window_for_model_gates(
        labelled[contract["event_time"]], flags, timezone, judged, packaged
    )
    if window.days > packaged.window_days:
        settings["features"] = {"window_days": window.days}
        facts["window_note"] = window.note
    return gates, notes, facts, settings


@dataclass(frozen=True)
class WindowChoice:
    days: int
    note: str


class PositivesInTestSplit:
    """Positives in the test split of a feature window of the sample, cut as the features cut it
    (`core.features.time_split`): from the row at `int(n * (1 - test_fraction))` in time order,
    with every row sharing its time."""

    def __init__(self, times: pd.Series, flags: pd.Series, timezone: str, test_fraction: float):
        instants = times.dt.tz_convert("UTC").to_numpy(dtype="datetime64[ns]").view("int64")
        order = np.argsort(instants, kind="stable")
        self.instants = instants[order]
        self.cumulative = np.concatenate([[0], np.cumsum(flags.to_numpy(dtype=int)[order])])
        days = _days(times, timezone)
        self.first_day, last_day = days.min(), days.max()
        self.span = (last_day - self.first_day).days + 1
        # Where each day of the sample begins in the sorted rows (one more for the end).
        boundaries = [
            pd.Timestamp(self.first_day + dt.timedelta(days=i), tz=timezone).value
            for i in range(self.span + 1)
        ]
        self.day_starts = np.searchsorted(self.instants, boundaries, side="left")
        self.test_fraction = test_fraction

    def by_end(self, window_days: int, ends: list[dt.date]) -> dict[dt.date, int]:
        """For each day of `ends` whose window lies wholly in the sample."""
        counted = {}
        for end in ends:
            last = (end - self.first_day).days
            first = last - window_days + 1
            if first < 0 or last >= self.span:
                continue
            low, high = int(self.day_starts[first]), int(self.day_starts[last + 1])
            if high == low:
                continue
            test_start = self.instants[low + int((high - low) * (1 - self.test_fraction))]
            first_test = int(np.searchsorted(self.instants, test_start, side="left"))
            counted[end] = int(self.cumulative[high] - self.cumulative[first_test])
        return counted


def window_for_model_gates(
    times: pd.Series,
    flags: pd.Series,
    timezone: str,
    ends: list[dt.date],
    packaged: PackagedGates,
) -> WindowChoice:
    """The fewest days of feature window, from the packaged window up, whose test split holds the
    `min_positives` the model gates need to judge, in every window of the sample ending on one of
    `ends`: counted on the sample's own rows, as the features split them, so labels that cluster
    in time (a day at a fifth of the usual rate) are taken as they come, not averaged away. When
    no window the sample can show is enough, an estimate from the overall rate with a margin for
    chance (two standard deviations of a Poisson count), saying so."""
    need = packaged.min_positives
    fraction = packaged.test_fraction
    split = PositivesInTestSplit(times, flags, timezone, fraction)
    span = split.span
    counted: dict[dt.date, int] = {}
    for days in range(packaged.window_days, span + 1):
        counted = split.by_end(days, ends)
        if counted and min(counted.values()) >= need:
            if days == packaged.window_days:
                return WindowChoice(days, "")
            fewest = min(counted.values())
            shorter = split.by_end(days - 1, ends)
            return WindowChoice(
                days,
                f"The model gates need {need} positives in the test split ({fraction:.0%} of "
                f"the window's rows) to judge. In the sample, every {days}-day window holds at "
                f"least {fewest}; a {days - 1}-day window as few as {min(shorter.values())}.",
            )
    per_day = float(flags.mean()) * fraction * len(times) / max(span, 1)
    wanted = need + 2 * math.sqrt(need)
    needed = math.ceil(wanted / per_day) if per_day else MAX_DRAFT_WINDOW_DAYS
    estimate = min(MAX_DRAFT_WINDOW_DAYS, max(packaged.window_days, needed))
    days = max(estimate, span) if counted else estimate
    seen = (
        f"even a {span}-day window of the sample holds as few as {min(counted.values())}"
        if counted
        else f"the sample ({span} days) holds no whole window that long"
    )
    return WindowChoice(
        days,
        f"The model gates need {need} positives in the test split ({fraction:.0%} of the "
        f"window's rows) to judge; {seen}. About {per_day:.2f} test positives a day: {days} "
        f"days are expected to give {per_day * days:.0f} (wanted: {wanted:.0f}, {need} and a "
        "margin for chance). Until a window holds "
        f"{need}, the model gates warn that they cannot judge rather than block.",
    )


# The draft -------------------------------------------------------------------------------------


def contract_name(text: str) -> str:
    """A contract name from a folder name: letters, digits, _ and -, starting with a letter."""
    name = re.sub(r"[^A-Za-z0-9_\-]+", "_", text).strip("_-")
    return name if re.match(r"^[A-Za-z]", name) else f"dataset_{name}".rstrip("_")


def _chosen(
    given: str | None,
    guess: Callable[[], Guess | None],
    frame: pd.DataFrame,
    role: str,
    missing: str,
) -> Guess:
    if given is not None:
        if given not in frame.columns:
            raise DraftError(f"--{role.replace('_', '-')} {given}: no such column in the sample")
        return Guess(given, True, "given")
    guessed = guess()
    if guessed is None:
        raise DraftError(missing)
    return guessed


def draft_dataset(
    frame: pd.DataFrame,
    name: str,
    packaged: PackagedGates,
    *,
    id_column: str | None = None,
    event_time: str | None = None,
    target: str | None = None,
    positive_label: str | None = None,
    timezone: str = "UTC",
    source: str = "sample",
) -> Draft:
    """A contract, gate overrides and settings for data like `frame` (read as the pipeline reads
    it: CSV as text, Parquet as stored)."""
    if frame.empty:
        raise DraftError(f"{source}: the sample has no rows")
    typed, types, inferred = typed_frame(frame)
    notes = {name: column.note for name, column in inferred.items()}
    columns = ", ".join(f"{n} ({types[n]})" for n in frame.columns)
    time_guess = _chosen(
        event_time,
        lambda: guess_event_time(typed, types),
        frame,
        "event_time",
        f"{source}: no column parses as dates and times, and the platform needs one: it cuts the "
        "data into daily partitions by each row's event time and trains on the older rows, tests "
        "on the newer. Add a column with the time each row happened (ISO 8601, such as "
        "2016-01-31T14:05:00), or name it with --event-time. Columns: " + columns,
    )
    if types[time_guess.column] != "datetime":
        raise DraftError(
            f"--event-time {time_guess.column}: its values do not all parse as dates and times "
            f"(ISO 8601); it was read as {types[time_guess.column]}"
        )
    id_guess = _chosen(
        id_column,
        lambda: guess_id(typed, types),
        frame,
        "id",
        f"{source}: no column is unique and never missing, and the platform needs an id (rows are "
        "told apart and deduplicated by it). Add one, or name it with --id (its duplicates will "
        "be quarantined). Columns: " + columns,
    )
    target_guess = _chosen(
        target,
        lambda: guess_target(typed, types, {id_guess.column, time_guess.column}),
        frame,
        "target",
        f"{source}: no column holds exactly two values to use as the label; name it with --target "
        "(and --positive-label). Columns: " + columns,
    )
    roles = {"id": id_guess, "event time": time_guess, "target": target_guess}
    taken: dict[str, str] = {}
    for role, guess in roles.items():
        if guess.column in taken:
            raise DraftError(
                f"column '{guess.column}' cannot be both the {taken[guess.column]} and the {role}"
            )
        taken[guess.column] = role

    target_values = typed[target_guess.column]
    target_type = types[target_guess.column]
    if target_type == "datetime":
        raise DraftError(f"--target {target_guess.column}: a datetime is not a label")
    distinct = target_values.dropna().unique()
    if positive_label is not None:
        label = parse_label(positive_label, target_type, target_values)
        label_note = "positive label: given on the command line"
    elif len(distinct) == 2:
        label, label_note = guess_positive_label(target_values)
    else:
        raise DraftError(
            f"target '{target_guess.column}' holds {len(distinct)} values, not two: name the "
            "positive one with --positive-label (the others count as negative)"
        )
    if target_type == "string":
        # A target is a handful of labels, whatever their count in a small sample.
        types[target_guess.column] = target_type = "category"
        typed[target_guess.column] = pd.Categorical(target_values)
        notes[target_guess.column] = ""

    specs = column_specs(typed, types, frame.isna().any())
    draft_warnings = [
        f"{name}: {column.note}" for name, column in inferred.items() if column.unreadable
    ]
    column_drafts: dict[str, ColumnDraft] = {}
    for column, spec in specs.items():
        remarks = [notes[column]] if notes[column] else []
        if column == id_guess.column:
            # No range and no categories: new ids lie outside the sample's.
            spec = {"type": "string" if spec["type"] == "category" else spec["type"]}
            spec.update(nullable=False, feature=False)
            remarks = ["the id: not a feature", *remarks]
            duplicates = int(typed[column].dropna().duplicated().sum())
            if duplicates:
                remarks.append(f"{duplicates} duplicate value(s) in the sample: quarantined")
                draft_warnings.append(f"id '{column}': {remarks[-1]}")
        if column in (id_guess.column, time_guess.column, target_guess.column):
            spec = {**spec, "nullable": False}
            empty = int(frame[column].isna().sum())
            if empty:
                remarks.append(f"{empty} row(s) without a value in the sample: quarantined")
                draft_warnings.append(f"{column}: {remarks[-1]}")
        elif spec["type"] == "string":
            spec["feature"] = False
        if "min" in spec and column != target_guess.column:
            remarks.insert(0, "range of the sample: widen it to what is possible")
        note = "; ".join(remarks)
        column_drafts[column] = ColumnDraft(spec, note)

    contract = {
        "name": name,
        "description": f"Drafted by `mlplatform dataset init` from {source}.",
        "id": id_guess.column,
        "event_time": time_guess.column,
        "target": target_guess.column,
        "positive_label": label,
        "columns": {column: drafted.spec for column, drafted in column_drafts.items()},
    }
    parse_contract(contract, source=f"draft of {source}")  # the draft must be a valid contract
    gates, gate_notes, facts, settings = draft_gates(typed, contract, timezone, packaged)
    if "short_last_day" in facts:
        draft_warnings.append(facts["short_last_day"])
    settings = {
        "partitions": {"start_date": facts["first_day"].isoformat(), "timezone": timezone},
        **settings,
    }
    return Draft(
        name=name,
        columns=column_drafts,
        id=id_guess,
        event_time=time_guess,
        target=target_guess,
        positive_label=label,
        positive_label_note=label_note,
        timezone=timezone,
        contract=contract,
        gates=gates,
        gate_notes=gate_notes,
        settings=settings,
        settings_notes=_time_zone_notes(frame[time_guess.column], timezone, draft_warnings),
        facts=facts,
        warnings=draft_warnings,
    )


def _time_zone_notes(times: pd.Series, timezone: str, warnings: list[str]) -> dict[str, str]:
    """A remark when the sample's times carry a UTC offset and days are cut in UTC: the day of
    an evening event would then be the next one. An offset does not name its zone (daylight
    saving changes it), so the zone is the user's to give."""
    if timezone != "UTC" or pd.api.types.is_datetime64_any_dtype(times):
        return {}
    # A remark, not a rule: up to 10,000 rows spread over the sample show the offsets in use.
    present = times.dropna()
    present = present.iloc[:: max(1, len(present) // 10_000)]
    offsets = present.astype(str).str.extract(r"([+-]\d\d:?\d\d)$")[0]
    offsets = offsets[offsets.notna() & ~offsets.isin(["+00:00", "-00:00", "+0000", "-0000"])]
    if offsets.empty:
        return {}
    shown = ", ".join(offsets.value_counts().index[:3])
    remark = (
        f"Event times of the sample carry a UTC offset ({shown}) and days are "
        "cut in UTC: set the data's own time zone (such as Europe/Paris, with --timezone or "
        "below) so a day ends at its local midnight"
    )
    warnings.append(remark)
    return {"partitions": remark}


# Writing the draft as commented YAML -----------------------------------------------------------


def yaml_scalar(value: Any) -> str:
    """One value as YAML reads it back (`no` quoted, 1e-05 as a float), on one line."""
    text = yaml.safe_dump(value, default_flow_style=True, width=math.inf, allow_unicode=True)
    return text.removesuffix("\n").removesuffix("\n...").strip()


def _mapping(values: dict[str, Any]) -> str:
    return "{" + ", ".join(f"{yaml_scalar(k)}: {yaml_scalar(v)}" for k, v in values.items()) + "}"


def _comment_lines(text: str, indent: str = "", width: int = 98) -> list[str]:
    import textwrap

    return [
        f"{indent}# {line}"
        for line in textwrap.wrap(text, width - len(indent) - 2, break_on_hyphens=False)
    ]


def contract_yaml(draft: Draft, sample: str) -> str:
    contract = draft.contract
    lines = [
        *_comment_lines(
            f"Dataset contract drafted by `mlplatform dataset init` from {sample} "
            f"({draft.facts['rows']} rows, {draft.facts['first_day']} to "
            f"{draft.facts['last_day']}). Types, nullability, ranges and categories describe "
            "that sample: review each line, widen ranges to what is possible, and confirm the "
            "lines marked CONFIRM."
        ),
        f"name: {yaml_scalar(contract['name'])}",
        f"description: {yaml_scalar(contract['description'])}",
        f"id: {yaml_scalar(contract['id'])}  # {draft.id.comment('id')}",
        f"event_time: {yaml_scalar(contract['event_time'])}  # "
        + draft.event_time.comment("event time"),
        f"target: {yaml_scalar(contract['target'])}  # {draft.target.comment('target')}",
        f"positive_label: {yaml_scalar(contract['positive_label'])}  # {draft.positive_label_note}",
        "columns:",
    ]
    for column, drafted in draft.columns.items():
        line = f"  {yaml_scalar(column)}: {_mapping(drafted.spec)}"
        lines.append(f"{line}  # {drafted.note}" if drafted.note else line)
    return "\n".join(lines) + "\n"


def _nested_yaml(data: dict[str, Any], notes: dict[str, str], path: str = "") -> list[str]:
    lines: list[str] = []
    indent = "  " * path.count(".") + ("  " if path else "")
    for key, value in data.items():
        dotted = f"{path}.{key}" if path else key
        if dotted in notes:
            lines.extend(_comment_lines(notes[dotted], indent))
        if isinstance(value, dict) and any(isinstance(v, dict) for v in value.values()):
            lines.append(f"{indent}{key}:")
            lines.extend(_nested_yaml(value, notes, dotted))
        elif isinstance(value, dict):
            lines.append(f"{indent}{key}: {_mapping(value)}")
        else:
            lines.append(f"{indent}{key}: {yaml_scalar(value)}")
    return lines


def gates_yaml(draft: Draft, sample: str) -> str:
    header = _comment_lines(
        f"Quality gates of {draft.name} that differ from the packaged ones "
        "(mlplatform/config/quality_gates.yaml lists every key), drafted by `mlplatform dataset "
        f"init` from {sample}: the bands come from the sample's own figures, shown above each."
    )
    return "\n".join([*header, *_nested_yaml(draft.gates, draft.gate_notes)]) + "\n"


def settings_data(draft: Draft, sample_path: str, file_format: str) -> dict[str, Any]:
    """The dataset's settings.yaml: the drafted sections, and the sample itself as the source."""
    return {
        **draft.settings,
        "data_source": {"kind": "files", "path": sample_path, "file_format": file_format},
    }


def settings_yaml(draft: Draft, sample_path: str, file_format: str) -> str:
    notes = {
        "partitions": (
            f"The sample's first day: partitions start here (the sample runs from "
            f"{draft.facts['first_day']} to {draft.facts['last_day']}). Event times without an "
            f"offset are read as UTC; days are cut in the time zone below."
        ),
        "data_source": (
            "The sample itself, for a first run: point `path` at where the data arrives (a "
            "file, a folder or a glob; local or an fsspec URL; a relative path is relative to "
            "this folder)."
        ),
    }
    for section, remark in draft.settings_notes.items():
        notes[section] = f"{notes.get(section, '')} {remark}".strip()
    if "window_note" in draft.facts:
        notes["features"] = draft.facts["window_note"]
    data = settings_data(draft, sample_path, file_format)
    header = _comment_lines(
        f"Settings of {draft.name}, drafted by `mlplatform dataset init`: they override the "
        "same sections of the packaged platform.yaml."
    )
    lines = [*header]
    for section, values in data.items():
        lines.extend(_comment_lines(notes.get(section, "")) if section in notes else [])
        lines.append(f"{section}:")
        lines.extend(f"  {key}: {yaml_scalar(value)}" for key, value in values.items())
    return "\n".join(lines) + "\n"


def reads_back(text: str, expected: dict[str, Any], what: str) -> None:
    """The written YAML must read back, with the project's strict reader, as what was meant."""
    parsed = parse_yaml(text)
    if parsed != expected:
        raise AssertionError(f"{what}: the drafted YAML does not read back as drafted")
