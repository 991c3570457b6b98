"""Outcomes as data: what happened to events (a chargeback weeks after the payment), arriving as
records of their own on later days, reconciled against the events they name.

One arrival day's records are split into joined records (one per event, its outcome as 0/1, when
it became known, the event's time and day) and quarantined records (every column as text and the
reason), and every record lands in exactly one of them: records in = joined + quarantined.

A record is quarantined for the first of these that applies (`REASONS`, in this order): a missing
id; a missing outcome; an outcome that is not one of the allowed values (compared as text, so `1`
matches 1 and "1", and a float 1.0 matches 1; `True` and "yes" do not); a missing or unparseable
known_at; known_at on another day than the arrival day (before it, or after it: in the future); an
id among none of the events; known_at before the event; an outcome later than `max_delay_days`
after its event; outcomes of one id that disagree within the file (all its records); the same id
and outcome again in the file (the first joins); an outcome that disagrees with one known from an
earlier arrival day (the earlier one stands); the same outcome as one known from an earlier day.

Agreement is on the 0/1 outcome (the positive label or not). Everything is vectorised: the only
Python loops run over distinct outcome values, never over records.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mlplatform.core.record_values import (
    as_text,
    day_texts,
    outcome_texts,
    parse_times,
    text_frame,
    text_index,
    text_series,
    utc_times,
    wall_days,
)

if TYPE_CHECKING:
    from mlplatform.core.contract import Contract

# Columns of the joined records (the id keeps the spec's column name).
OUTCOME = "outcome"
KNOWN_AT = "known_at"
EVENT_TIME = "event_time"
EVENT_DAY = "event_day"
# The quarantined records' reason, named as validation names it for rows.
REASON_COLUMN = "quarantine_reason"

MISSING_ID = "missing id"
MISSING_OUTCOME = "missing outcome"
OUTCOME_NOT_ALLOWED = "outcome not allowed"
MISSING_KNOWN_AT = "missing known_at"
UNPARSEABLE_KNOWN_AT = "unparseable known_at"
KNOWN_AT_NOT_ON_ARRIVAL_DAY = "known_at not on the arrival day"
UNKNOWN_ID = "unknown id"
OUTCOME_BEFORE_EVENT = "outcome before its event"
TOO_LATE = "outcome too late"
CONFLICT_IN_FILE = "conflicting outcomes in the file"
DUPLICATE_IN_FILE = "duplicate in the file"
CONFLICT_WITH_KNOWN = "conflicts with an earlier outcome"
DUPLICATE_OF_KNOWN = "duplicate of an earlier outcome"
# Each record gets the first reason that applies, in this order.
REASONS = (
    MISSING_ID,
    MISSING_OUTCOME,
    OUTCOME_NOT_ALLOWED,
    MISSING_KNOWN_AT,
    UNPARSEABLE_KNOWN_AT,
    KNOWN_AT_NOT_ON_ARRIVAL_DAY,
    UNKNOWN_ID,
    OUTCOME_BEFORE_EVENT,
    TOO_LATE,
    CONFLICT_IN_FILE,
    DUPLICATE_IN_FILE,
    CONFLICT_WITH_KNOWN,
    DUPLICATE_OF_KNOWN,
)


class OutcomeColumnsError(ValueError):
    """The outcome records lack columns the spec names; the caller adds which file."""


@dataclass(frozen=True)
class OutcomeSpec:
    """How to read outcome records: their columns, the values an outcome may take and which one
    is positive (compared as text), and how many days after its event an outcome may arrive
    (None: any; an event older than the events given is an unknown id either way)."""

    id_column: str
    outcome_column: str
    known_at_column: str
    allowed_values: tuple[Any, ...]
    positive_label: Any = 1
    max_delay_days: int | None = None

    def __post_init__(self) -> None:
        if not self.allowed_values:
            raise ValueError("outcome spec: allowed_values is empty")
        if as_text(self.positive_label) not in {as_text(v) for v in self.allowed_values}:
            raise ValueError(
                f"outcome spec: the positive label {self.positive_label!r} is not one of the "
                f"allowed values {list(self.allowed_values)}"
            )

    @property
    def columns(self) -> tuple[str, str, str]:
        return (self.id_column, self.outcome_column, self.known_at_column)


@dataclass(frozen=True)
class OutcomeSummary:
    """One arrival day's reconciliation in numbers: what a person reads in the UI and what a
    sensor needs (the event days whose outcomes changed, to recompute them)."""

    arrival_day: str
    records_in: int
    joined: int
    quarantined: int
    positives: int
    reason_counts: dict[str, int] = field(default_factory=dict)
    # The days (YYYY-MM-DD) of the events that gained an outcome, in order.
    event_days: tuple[str, ...] = ()

    def as_metadata(self) -> dict[str, Any]:
        return {
            "arrival_day": self.arrival_day,
            "records_in": self.records_in,
            "joined": self.joined,
            "quarantined": self.quarantined,
            "positives": self.positives,
            "reason_counts": dict(self.reason_counts),
            "event_days": list(self.event_days),
        }


@dataclass(frozen=True)
class Reconciliation:
    joined: pd.DataFrame
    quarantined: pd.DataFrame
    summary: OutcomeSummary


def events_index(events: pd.DataFrame, id_column: str, event_time_column: str) -> pd.Series:
    """The events' time by id (as text), for `reconcile_outcomes`: one entry per id (a replayed
    row adds none), rows without an id left out."""
    ids = text_series(events[id_column])
    times = utc_times(events[event_time_column].reset_index(drop=True))
    index = pd.Series(times.array, index=pd.Index(ids.to_numpy(dtype=object), dtype=object))
    index = index[ids.notna().to_numpy()]
    return index[~index.index.duplicated(keep="first")]


def known_outcomes(joined: pd.DataFrame, id_column: str) -> pd.Series:
    """The 0/1 outcome by id of earlier days' joined records (their concatenation)."""
    ids = text_series(joined[id_column]).to_numpy(dtype=object)
    return pd.Series(joined[OUTCOME].to_numpy(), index=pd.Index(ids, dtype=object))


def reconcile_outcomes(
    records: pd.DataFrame,
    spec: OutcomeSpec,
    arrival_day: dt.date,
    events: pd.Series,
    known: pd.Series | None = None,
    timezone: str = "UTC",
) -> Reconciliation:
    """Split one arrival day's outcome `records` into joined and quarantined records.

    `events`: the time of each event an outcome may name, by id (`events_index`); `known`: the
    0/1 outcomes known from earlier arrival days, by id (`known_outcomes`); `timezone`: where the
    days are cut (the partitions' time zone). Joined: the spec's id column, `outcome` (0/1,
    int8), `known_at` and `event_time` (UTC) and `event_day` (YYYY-MM-DD), in the records' order.
    Quarantined: the records' columns as text (missing values stay missing) and
    `quarantine_reason`, under the records' own index (a reason that points at another record
    names it by that index: keep the position in the file there, or give text such as "3 of
    /landing/a.csv"). Raises OutcomeColumnsError if a column of the spec is missing (a file with
    no records and no columns at all is fine)."""
    day = arrival_day
    missing = [column for column in spec.columns if column not in records.columns]
    if missing and not (len(records) == 0 and len(records.columns) == 0):
        raise OutcomeColumnsError(
            f"outcome records lack the column(s) {', '.join(map(repr, missing))} "
            f"(expected {', '.join(spec.columns)}; found {', '.join(map(str, records.columns))})"
        )
    if missing:  # no records and no columns: nothing to reconcile
        records = pd.DataFrame({column: pd.Series(dtype=object) for column in spec.columns})
    id_name, outcome_name, known_name = spec.columns
    work = records[list(spec.columns)].reset_index(drop=True)
    # How a reason names a record: by its index in this file, or by the caller's text labels
    # ("3 of /landing/a.csv": the day's records may come from several files).
    labels = pd.Series(records.index.astype(str), dtype=object)
    if pd.api.types.infer_dtype(records.index, skipna=True) != "string":
        labels = labels + " of this file"
    state = _Quarantine(len(work))

    # The record on its own: id, outcome, known_at.
    ids = text_series(work[id_name])
    missing_id = ids.isna() | ids.str.strip().eq("")
    ids = ids.where(~missing_id, None)
    state.flag(missing_id, MISSING_ID, lambda m: f"{id_name}: missing")
    shown_id = id_name + " '" + ids.fillna("") + "'"

    outcome_text, outcome_shown = outcome_texts(work[outcome_name])
    state.flag(
        outcome_text.isna() | outcome_text.str.strip().eq(""),
        MISSING_OUTCOME,
        lambda m: f"{outcome_name}: missing for " + shown_id[m],
    )
    allowed = {as_text(value) for value in spec.allowed_values}
    allowed_shown = ", ".join(repr(value) for value in spec.allowed_values)
    state.flag(
        ~outcome_text.isin(allowed),
        OUTCOME_NOT_ALLOWED,
        lambda m: (
            f"{outcome_name}: "
            + outcome_shown[m]
            + f" is not an allowed outcome (allowed: {allowed_shown})"
        ),
    )
    flags = outcome_text.eq(as_text(spec.positive_label)).astype("int8")

    raw_known = work[known_name]
    known_at = parse_times(raw_known)
    missing_known = raw_known.isna()
    if not pd.api.types.is_datetime64_any_dtype(raw_known.dtype):
        missing_known |= text_series(raw_known).str.strip().eq("")
    state.flag(missing_known, MISSING_KNOWN_AT, lambda m: f"{known_name}: missing")
    state.flag(
        known_at.isna(),
        UNPARSEABLE_KNOWN_AT,
        lambda m: f"{known_name}: '" + text_series(raw_known[m]) + "' is not a date-time",
    )
    known_day = wall_days(known_at, timezone)
    arrival = pd.Timestamp(day)
    on_day = f"is not on the arrival day {day.isoformat()} ({timezone})"
    state.flag(
        known_day < arrival,
        KNOWN_AT_NOT_ON_ARRIVAL_DAY,
        lambda m: f"{known_name} " + known_at[m].astype(str) + f" {on_day}: it is before it",
    )
    state.flag(
        known_day > arrival,
        KNOWN_AT_NOT_ON_ARRIVAL_DAY,
        lambda m: f"{known_name} " + known_at[m].astype(str) + f" {on_day}: it is in the future",
    )

    # Against the events.
    event_times = pd.Series(utc_times(events).array, index=text_index(events.index))
    event_times = event_times[~event_times.index.duplicated(keep="first")]
    position = event_times.index.get_indexer(ids.to_numpy(dtype=object))
    if len(event_times):
        event_days = wall_days(event_times, timezone)
        searched = (
            f"is not among the events of {event_days.min():%Y-%m-%d} to "
            f"{event_days.max():%Y-%m-%d} ({timezone})"
        )
    else:
        searched = "is not among the events (none were given)"
    state.flag(position < 0, UNKNOWN_ID, lambda m: shown_id[m] + " " + searched)
    event_time = pd.Series(event_times.array.take(position, allow_fill=True))
    event_day = wall_days(event_time, timezone)
    state.flag(
        known_at < event_time,
        OUTCOME_BEFORE_EVENT,
        lambda m: (
            f"{known_name} "
            + known_at[m].astype(str)
            + " is before the event of "
            + shown_id[m]
            + " at "
            + event_time[m].astype(str)
        ),
    )
    if spec.max_delay_days is not None:
        days_late = (arrival - event_day).dt.days
        state.flag(
            days_late > spec.max_delay_days,
            TOO_LATE,
            lambda m: (
                "the outcome of "
                + shown_id[m]
                + " arrived "
                + days_late[m].astype("int64").astype(str)
                + f" days after its event: later than the {spec.max_delay_days} days outcomes are "
                "looked for"
            ),
        )

    # Against each other, within the file (the records still standing).
    standing = ~state.flagged
    mine = pd.DataFrame({"id": ids, "flag": flags, "shown": outcome_shown, "label": labels})[
        standing
    ]
    by_id = mine.groupby("id", sort=False)["flag"]
    disagree = pd.Series(False, index=ids.index)
    disagree[standing] = (by_id.transform("min") != by_id.transform("max")).to_numpy()
    said = {
        flag: mine[mine["flag"] == flag].groupby("id", sort=False)["shown"].first()
        for flag in (0, 1)
    }
    state.flag(
        disagree,
        CONFLICT_IN_FILE,
        lambda m: (
            "conflicting outcomes for "
            + shown_id[m]
            + " in this file ("
            + ids[m].map(said[1])
            + " and "
            + ids[m].map(said[0])
            + "): all its records are quarantined"
        ),
    )
    standing = ~state.flagged
    mine = mine[standing[mine.index]]
    repeated = pd.Series(False, index=ids.index)
    repeated[mine.index] = mine["id"].duplicated(keep="first").to_numpy()
    first_label = mine.groupby("id", sort=False)["label"].first()
    state.flag(
        repeated,
        DUPLICATE_IN_FILE,
        lambda m: (
            "duplicate: "
            + shown_id[m]
            + " has outcome "
            + outcome_shown[m]
            + " again (first in record "
            + ids[m].map(first_label)
            + ")"
        ),
    )

    # Against the outcomes known from earlier arrival days: the earlier one stands.
    if known is not None and len(known):
        earlier_flags = pd.Series(known.to_numpy(), index=text_index(known.index)).astype("int8")
        earlier_flags = earlier_flags[~earlier_flags.index.duplicated(keep="first")]
        at = earlier_flags.index.get_indexer(ids.to_numpy(dtype=object))
        earlier = pd.Series(
            np.where(at >= 0, earlier_flags.to_numpy()[at], -1), index=ids.index, dtype="int8"
        )
        polarity = pd.Series(np.where(earlier == 1, "positive", "negative"), index=ids.index)
        state.flag(
            (earlier >= 0) & (earlier != flags),
            CONFLICT_WITH_KNOWN,
            lambda m: (
                "conflicting outcome for "
                + shown_id[m]
                + ": "
                + outcome_shown[m]
                + " here, but a "
                + polarity[m]
                + f" one (positive: {spec.positive_label!r}) was known on an earlier day, and it "
                "stands"
            ),
        )
        state.flag(
            earlier == flags,
            DUPLICATE_OF_KNOWN,
            lambda m: (
                "duplicate: "
                + shown_id[m]
                + " has outcome "
                + outcome_shown[m]
                + ", known on an earlier day already"
            ),
        )

    keep = pd.Series(~state.flagged, index=ids.index)
    joined = pd.DataFrame(
        {
            id_name: ids[keep],
            OUTCOME: flags[keep],
            KNOWN_AT: known_at[keep],
            EVENT_TIME: event_time[keep],
            EVENT_DAY: day_texts(event_day[keep]),
        }
    ).reset_index(drop=True)
    quarantined = text_frame(records.iloc[np.flatnonzero(state.flagged)])
    quarantined[REASON_COLUMN] = state.messages[state.flagged]
    counts = pd.Series(state.kinds[state.flagged], dtype=object).value_counts()
    summary = OutcomeSummary(
        arrival_day=day.isoformat(),
        records_in=len(records),
        joined=len(joined),
        quarantined=len(quarantined),
        positives=int(joined[OUTCOME].sum()),
        reason_counts={kind: int(counts[kind]) for kind in REASONS if kind in counts.index},
        event_days=tuple(sorted(joined[EVENT_DAY].unique())),
    )
    return Reconciliation(joined=joined, quarantined=quarantined, summary=summary)


class _Quarantine:
    """Each record's first reason: a later flag leaves an already flagged record alone."""

    def __init__(self, n: int) -> None:
        self.flagged = np.zeros(n, dtype=bool)
        self.kinds = np.full(n, None, dtype=object)
        self.messages = np.full(n, None, dtype=object)

    def flag(
        self,
        where: pd.Series | np.ndarray,
        kind: str,
        message: Callable[[pd.Series], pd.Series | str],
    ) -> None:
        if isinstance(where, pd.Series):
            where = where.to_numpy(dtype=bool, na_value=False)
        new = np.asarray(where, dtype=bool) & ~self.flagged
        if not new.any():
            return
        text = message(pd.Series(new))
        self.flagged |= new
        self.kinds[new] = kind
        self.messages[new] = text.to_numpy(dtype=object) if isinstance(text, pd.Series) else text


def spec_of(contract: Contract) -> OutcomeSpec:
    """The outcome records a dataset contract declares (`outcomes:`): its id, the outcome (values
    of its target), known_at, and how late an outcome may be."""
    if contract.outcomes is None:
        raise ValueError(f"{contract.source}: the contract declares no outcomes")
    target = contract.columns[contract.target]
    if target.categories:
        allowed: tuple[Any, ...] = tuple(target.categories)
    elif target.type == "boolean":
        allowed = (True, False)
    else:
        raise ValueError(
            f"{contract.source}: outcomes need the target '{contract.target}' to list its "
            "categories (the values an outcome may take)"
        )
    return OutcomeSpec(
        contract.id,
        contract.outcome_column,
        contract.outcomes.known_at,
        allowed,
        contract.positive_label,
        contract.outcomes.max_delay_days,
    )
