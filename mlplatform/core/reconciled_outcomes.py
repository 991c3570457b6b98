"""What the platform does with reconciled outcomes: the day's quarantine with the records carried
because they fall in no partition, the outcomes of a scored day, and the labelled scores of the
scored rows whose outcome is known (matched by id as text, the way outcomes are reconciled)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from mlplatform.core.outcomes import EVENT_DAY, OUTCOME, REASON_COLUMN
from mlplatform.core.record_values import text_frame, text_series
from mlplatform.core.validate import OUTSIDE_PARTITIONS_REASON


def with_carried(
    quarantined: pd.DataFrame, carried: pd.DataFrame, reason_column: str, known_at_column: str
) -> pd.DataFrame:
    """The quarantined records and, after them, records the file reader carried because they fall
    in no partition (`reason_column` says why), in the same shape: text and the reason, worded as
    validation words it for events ("known_at: outside every partition: in the future (after
    2026-12-08) (got '2099-06-01 00:00:00+00:00')")."""
    if carried.empty:
        return quarantined
    extra = text_frame(carried.drop(columns=[reason_column]))
    got = text_series(carried[known_at_column]).map(repr, na_action="ignore").fillna("nothing")
    extra[REASON_COLUMN] = (
        _carried_kinds(carried, reason_column, known_at_column).to_numpy()
        + " (got "
        + got.to_numpy(dtype=object)
        + ")"
    )
    return pd.concat([quarantined, extra], ignore_index=True)


def carried_reason_counts(
    carried: pd.DataFrame, reason_column: str, known_at_column: str
) -> dict[str, int]:
    """How many carried records (see `with_carried`) fall in no partition, by reason."""
    if carried.empty:
        return {}
    counts = _carried_kinds(carried, reason_column, known_at_column).value_counts()
    return {str(kind): int(count) for kind, count in counts.items()}


def _carried_kinds(carried: pd.DataFrame, reason_column: str, known_at_column: str) -> pd.Series:
    prefix = f"{known_at_column}: {OUTSIDE_PARTITIONS_REASON}: "
    return prefix + carried[reason_column].astype(str).reset_index(drop=True)


def day_outcomes(outcomes: pd.DataFrame, day: dt.date) -> pd.DataFrame:
    """The joined outcomes of the events of `day` (from the arrival days a scored day's outcomes
    span, concatenated). `event_day` is stored as text (YYYY-MM-DD), as Parquet keeps it."""
    if outcomes.empty:
        return pd.DataFrame({EVENT_DAY: pd.Series(dtype=object), OUTCOME: pd.Series(dtype="int8")})
    return outcomes[outcomes[EVENT_DAY] == day.isoformat()]


def labelled(
    scores: pd.DataFrame, outcomes: pd.DataFrame, id_column: str
) -> tuple[np.ndarray, np.ndarray]:
    """The outcomes (0/1) and scores of the scored rows whose outcome is known, matched by id (as
    text, the way outcomes are reconciled), in the scores' order."""
    if outcomes.empty or scores.empty:
        return np.zeros(0, dtype=int), np.zeros(0, dtype=float)
    by_id = pd.Series(
        outcomes[OUTCOME].to_numpy(),
        index=pd.Index(text_series(outcomes[id_column]), dtype=object),
    )
    by_id = by_id[~by_id.index.duplicated(keep="first")]
    matched = by_id.reindex(pd.Index(text_series(scores[id_column]), dtype=object))
    known = matched.notna().to_numpy()
    return matched.to_numpy()[known].astype(int), scores["score"].to_numpy(dtype=float)[known]
