"""Gate bands and settings drafted from a sample's own figures: freshness, the volume band, the
null-rate limit, the label-rate band, floors for the model gates, and a feature window long enough
for the model gates to judge, each with a note of the figures it came from."""

from __future__ import annotations

import datetime as dt
import math
import statistics
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mlplatform.core.features import positive_label_flags

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
