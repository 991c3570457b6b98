"""Features for the model: generic columns derived from the contract plus named domain features,
and a time-based split into train / validation / test.

Everything here is a function of the row and of strictly earlier rows (never of later ones), so
features computed over a trailing window carry no information from the future. Transforms that are
fitted (category encoding) live in the model pipeline and are fitted on the training split only.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from mlplatform.core.domain_features import DOMAIN_FEATURES

if TYPE_CHECKING:
    from mlplatform.core.contract import Contract

SPLIT_COLUMN = "split"
LABEL_COLUMN = "label"
SPLITS = ("train", "validation", "test")
# Rows whose label is not known yet (younger than the contract's label delay, or no label yet):
# in the features, so the day is scored, but in no split a model learns from or is judged on.
WAITING = "waiting"
MISSING_CATEGORY = "__missing__"


def positive_label_flags(target: pd.Series, positive_label: object) -> pd.Series:
    """1 where the target is the contract's positive label, compared as text (`1` matches 1 and
    "1"). Only the distinct values are turned into text, not every row."""
    codes, distinct = pd.factorize(target)
    positive_codes = [i for i, value in enumerate(distinct) if str(value) == str(positive_label)]
    return pd.Series(np.isin(codes, positive_codes).astype("int8"), index=target.index)


def ordered_positions(values: pd.Series, order: list[object]) -> pd.Series:
    """Each value's position in `order` (compared as text, like the positive label); missing
    values stay missing. Only the distinct values are looked up, not every row."""
    position = {str(category): float(i) for i, category in enumerate(order)}
    codes, distinct = pd.factorize(values)
    lookup = np.array([position.get(str(value), np.nan) for value in distinct] + [np.nan])
    return pd.Series(lookup[codes], index=values.index, dtype="float64")


def build_features(
    validated: pd.DataFrame,
    contract: Contract,
    validation_fraction: float = 0.15,
    test_fraction: float = 0.15,
    labels_known_before: dt.date | None = None,
    outcomes: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per validated row: id, event time, label, generic and domain features.

    `validated` may hold several partitions; rows are ordered by event time first so every
    history-based feature only looks backwards. Rows on `labels_known_before` (a day) or later,
    and rows without a label, are `waiting`: kept (to be scored) but in no split.

    `outcomes` (joined outcome records: the id, 0/1 `outcome`, `known_at`): the labels are these
    outcomes instead of the target column, each row's own once known before `labels_known_before`
    begins (`outcome_labels`); a row without one is `waiting`.
    """
    times = validated[contract.event_time]
    if times.is_monotonic_increasing and validated.index.equals(pd.RangeIndex(len(validated))):
        # Days are stored in time order, so a window usually is already: no copy of it.
        frame = validated
    else:
        frame = validated.sort_values(contract.event_time, kind="stable", ignore_index=True)
    if outcomes is not None:
        times = frame[contract.event_time]
        outcome = outcome_labels(
            frame[contract.id],
            outcomes,
            contract.id,
            known_before=labels_known_before,
            timezone=times.dt.tz or "UTC",
        )
        known = outcome.notna().to_numpy()
        label = pd.Series(outcome.fillna(0).to_numpy(dtype="int8"), index=frame.index)
    else:
        label = positive_label_flags(frame[contract.target], contract.positive_label)
        known = frame[contract.target].notna().to_numpy()
        if labels_known_before is not None:
            from mlplatform.core.days import before_day

            known &= before_day(frame[contract.event_time], labels_known_before).to_numpy()
    if label[known].nunique() < 2:
        from mlplatform.core.validate import DatasetError

        found = (
            f"the {int(known.sum())} outcome(s) known"
            + (f" before {labels_known_before}" if labels_known_before else "")
            + " for the window's rows hold"
            if outcomes is not None
            else f"target '{contract.target}' has"
        )
        raise DatasetError(
            f"{found} a single class in this window (or none); "
            f"positive label is {contract.positive_label!r}"
        )
    columns: dict[str, pd.Series] = {
        contract.id: frame[contract.id],
        # A copy: the features must not share memory with the caller's frame.
        contract.event_time: frame[contract.event_time].copy(),
        LABEL_COLUMN: label,
    }
    for name in contract.feature_columns:
        spec = contract.columns[name]
        values = frame[name]
        if spec.ordered:
            columns[name] = ordered_positions(values, spec.categories or [])
        elif spec.type in ("string", "category"):
            columns[name] = (
                values.astype(object).where(values.notna(), MISSING_CATEGORY).astype(str)
            )
        elif spec.type == "datetime":
            columns[f"{name}_hour"] = values.dt.hour.astype("float64")
            columns[f"{name}_day_of_week"] = values.dt.dayofweek.astype("float64")
        else:
            columns[name] = values.astype("float64")
    for name in contract.domain_features:
        feature = DOMAIN_FEATURES[name]
        columns[name] = feature.compute(frame, dict(contract.roles), contract.event_time)
    features = pd.DataFrame(columns)
    times = features[contract.event_time]
    labelled = time_split(
        times if known.all() else times[known],
        validation_fraction=validation_fraction,
        test_fraction=test_fraction,
    )
    codes = np.full(len(features), len(SPLITS), dtype="int8")  # WAITING
    codes[known] = labelled.cat.codes.to_numpy()
    features[SPLIT_COLUMN] = pd.Categorical.from_codes(codes, categories=[*SPLITS, WAITING])
    return features


def outcome_labels(
    ids: pd.Series,
    outcomes: pd.DataFrame,
    id_column: str,
    known_before: dt.date | None = None,
    timezone: str | dt.tzinfo = "UTC",
) -> pd.Series:
    """Each row's 0/1 outcome (nullable Int8, missing where none is known), matched by id as
    text (an integer id 7 matches the outcome of "7"), from joined outcome records (the id
    column, `outcome`, `known_at`). With `known_before` (a day): only the outcomes
    known before that day begins in `timezone`, so a model of a day never learns from an outcome
    that became known after it. An id with several outcomes takes the first known."""
    from mlplatform.core.outcomes import KNOWN_AT, OUTCOME

    if known_before is not None and len(outcomes):
        known_at = pd.to_datetime(outcomes[KNOWN_AT], utc=True).dt.tz_convert(timezone)
        # The wall clock's day, as the partitions cut it (a day is not always 24 hours long).
        known_day = known_at.dt.tz_localize(None).dt.normalize()
        outcomes = outcomes[(known_day < pd.Timestamp(known_before)).to_numpy()]
    if len(outcomes):
        outcomes = outcomes.sort_values(KNOWN_AT, kind="stable")
    by_id = pd.Series(
        outcomes[OUTCOME].to_numpy(dtype="int8") if len(outcomes) else np.zeros(0, "int8"),
        index=pd.Index(ids_as_text(outcomes[id_column]) if len(outcomes) else [], dtype=object),
    )
    by_id = by_id[~by_id.index.duplicated(keep="first")]
    matched = by_id.reindex(pd.Index(ids_as_text(ids), dtype=object))
    return pd.Series(matched.to_numpy(), index=ids.index, dtype="Int8")


def ids_as_text(values: pd.Series) -> np.ndarray:
    """Ids as text, the way ids are compared across sources: a whole float reads as the integer
    it holds (an integer id column read with a gap turns 7 into 7.0, which must still be "7");
    missing ids stay missing (None)."""
    missing = values.isna().to_numpy()
    if pd.api.types.is_float_dtype(values.dtype):
        numbers = values.to_numpy(dtype="float64", na_value=np.nan)
        whole = ~missing & (numbers == np.floor(numbers))
        text = values.astype(str).to_numpy(dtype=object)
        text[whole] = numbers[whole].astype("int64").astype(str)
    elif pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty"):
        text = values.to_numpy(dtype=object)
        # The caller's own array: copied only when a missing id is to be written into it.
        text = text.copy() if missing.any() else text
    else:
        text = values.astype(str).to_numpy(dtype=object)
    text[missing] = None
    return text


def time_split(
    event_time: pd.Series, validation_fraction: float, test_fraction: float
) -> pd.Series:
    """Label each row train / validation / test by time: the oldest rows train, the newest test.

    Boundaries are timestamps, so rows sharing a timestamp always land in the same split and no
    training row is later than any validation or test row.
    """
    if not 0 < validation_fraction < 1 or not 0 < test_fraction < 1:
        raise ValueError("validation and test fractions must lie strictly between 0 and 1")
    if validation_fraction + test_fraction >= 1:
        raise ValueError("validation + test fractions must leave rows to train on")
    # As int64 nanoseconds: a time-zone-aware column would otherwise become Timestamp objects.
    times = event_time.to_numpy(dtype="datetime64[ns]").view("int64")
    sorted_times = np.sort(times)
    n = len(sorted_times)
    validation_start = sorted_times[int(n * (1 - validation_fraction - test_fraction))]
    test_start = sorted_times[int(n * (1 - test_fraction))]
    split = np.where(
        times >= test_start, "test", np.where(times >= validation_start, "validation", "train")
    )
    return pd.Series(pd.Categorical(split, categories=list(SPLITS)), index=event_time.index)


def test_labels(features: pd.DataFrame) -> np.ndarray:
    """The labels of the test split, in row order."""
    return features.loc[features[SPLIT_COLUMN] == "test", LABEL_COLUMN].to_numpy()


def model_columns(features: pd.DataFrame, contract: Contract) -> tuple[list[str], list[str]]:
    """(categorical, numeric) columns that the model takes as input."""
    reserved = {contract.id, contract.event_time, LABEL_COLUMN, SPLIT_COLUMN}
    inputs = [c for c in features.columns if c not in reserved]
    categorical = [c for c in inputs if features[c].dtype == object]
    numeric = [c for c in inputs if c not in categorical]
    return categorical, numeric
