"""Outcomes reconciled against their events: every record joins or is quarantined with its
reason, and records in = joined + quarantined."""

from __future__ import annotations

import datetime as dt
import io

import numpy as np
import pandas as pd
import pytest

from mlplatform.core.generator import generate_outcomes, generate_transactions
from mlplatform.core.outcomes import (
    CONFLICT_IN_FILE,
    CONFLICT_WITH_KNOWN,
    DUPLICATE_IN_FILE,
    DUPLICATE_OF_KNOWN,
    KNOWN_AT_NOT_ON_ARRIVAL_DAY,
    MISSING_ID,
    MISSING_KNOWN_AT,
    MISSING_OUTCOME,
    OUTCOME_BEFORE_EVENT,
    OUTCOME_NOT_ALLOWED,
    REASON_COLUMN,
    REASONS,
    TOO_LATE,
    UNKNOWN_ID,
    UNPARSEABLE_KNOWN_AT,
    OutcomeColumnsError,
    OutcomeSpec,
    Reconciliation,
    events_index,
    known_outcomes,
    reconcile_outcomes,
)
from mlplatform_tests.packaged import generator_params

ARRIVAL = dt.date(2026, 3, 20)
SPEC = OutcomeSpec(
    id_column="transaction_id",
    outcome_column="is_fraud",
    known_at_column="known_at",
    allowed_values=(0, 1),
    positive_label=1,
    max_delay_days=14,
)
# Events of the days an outcome arriving on ARRIVAL may name (and one long before).
EVENTS = events_index(
    pd.DataFrame(
        {
            "transaction_id": ["e1", "e2", "e3", "e4", "today", "old"],
            "event_time": pd.to_datetime(
                [
                    "2026-03-10 09:00",
                    "2026-03-11 10:00",
                    "2026-03-12 11:00",
                    "2026-03-19 23:00",
                    "2026-03-20 12:00",
                    "2026-02-01 08:00",
                ],
                utc=True,
            ),
        }
    ),
    "transaction_id",
    "event_time",
)
GOOD = {"transaction_id": "e1", "is_fraud": 1, "known_at": "2026-03-20T08:00:00Z"}


def records(*rows: dict) -> pd.DataFrame:
    return pd.DataFrame([{**GOOD, **row} for row in rows])


def reconciled(frame: pd.DataFrame, known: pd.Series | None = None, **kwargs) -> Reconciliation:
    result = reconcile_outcomes(frame, SPEC, ARRIVAL, EVENTS, known, **kwargs)
    summary = result.summary
    # Every record is accounted for, always.
    assert summary.records_in == len(frame) == len(result.joined) + len(result.quarantined)
    assert (summary.joined, summary.quarantined) == (len(result.joined), len(result.quarantined))
    assert sum(summary.reason_counts.values()) == summary.quarantined
    assert result.quarantined[REASON_COLUMN].notna().all()
    return result


KNOWN = pd.Series([1, 0], index=["e2", "e3"])

# One bad record per reason (beside a good record of another id): the reason, words of its text.
CORPUS = [
    pytest.param(
        [{"transaction_id": None}], None, MISSING_ID, "transaction_id: missing", id="id-none"
    ),
    pytest.param(
        [{"transaction_id": "  "}], None, MISSING_ID, "transaction_id: missing", id="id-blank"
    ),
    pytest.param(
        [{"is_fraud": None}],
        None,
        MISSING_OUTCOME,
        "is_fraud: missing for transaction_id 'e1'",
        id="outcome-missing",
    ),
    pytest.param(
        [{"is_fraud": "yes"}],
        None,
        OUTCOME_NOT_ALLOWED,
        "is_fraud: 'yes' is not an allowed outcome (allowed: 0, 1)",
        id="outcome-text",
    ),
    pytest.param(
        [{"is_fraud": 2}],
        None,
        OUTCOME_NOT_ALLOWED,
        "is_fraud: 2 (int) is not an allowed outcome",
        id="outcome-out-of-set",
    ),
    pytest.param(
        [{"is_fraud": 0.5}],
        None,
        OUTCOME_NOT_ALLOWED,
        "is_fraud: 0.5 (float) is not an allowed outcome",
        id="outcome-float",
    ),
    pytest.param(
        [{"is_fraud": True}],
        None,
        OUTCOME_NOT_ALLOWED,
        "is_fraud: True (bool) is not an allowed outcome",
        id="outcome-bool",
    ),
    pytest.param(
        [{"known_at": None}], None, MISSING_KNOWN_AT, "known_at: missing", id="known-at-missing"
    ),
    pytest.param(
        [{"known_at": "yesterday"}],
        None,
        UNPARSEABLE_KNOWN_AT,
        "known_at: 'yesterday' is not a date-time",
        id="known-at-text",
    ),
    pytest.param(
        [{"known_at": "1773993600"}],
        None,
        UNPARSEABLE_KNOWN_AT,
        "known_at: '1773993600' is not a date-time",
        id="known-at-epoch",
    ),
    pytest.param(
        [{"known_at": "2026-03-19T23:59:59Z"}],
        None,
        KNOWN_AT_NOT_ON_ARRIVAL_DAY,
        "known_at 2026-03-19 23:59:59+00:00 is not on the arrival day 2026-03-20 (UTC): "
        "it is before it",
        id="known-at-day-before",
    ),
    pytest.param(
        [{"known_at": "2026-03-21T00:00:00Z"}],
        None,
        KNOWN_AT_NOT_ON_ARRIVAL_DAY,
        "it is in the future",
        id="known-at-future",
    ),
    pytest.param(
        [{"transaction_id": "nope"}],
        None,
        UNKNOWN_ID,
        "transaction_id 'nope' is not among the events of 2026-02-01 to 2026-03-20 (UTC)",
        id="unknown-id",
    ),
    pytest.param(
        [{"transaction_id": "today", "known_at": "2026-03-20T11:59:59Z"}],
        None,
        OUTCOME_BEFORE_EVENT,
        "known_at 2026-03-20 11:59:59+00:00 is before the event of transaction_id 'today' at "
        "2026-03-20 12:00:00+00:00",
        id="before-event",
    ),
    pytest.param(
        [{"transaction_id": "old"}],
        None,
        TOO_LATE,
        "the outcome of transaction_id 'old' arrived 47 days after its event: later than the 14",
        id="too-late",
    ),
    pytest.param(
        [{"transaction_id": "e2", "is_fraud": 0}, {"transaction_id": "e2", "is_fraud": 1}],
        None,
        CONFLICT_IN_FILE,
        "conflicting outcomes for transaction_id 'e2' in this file (1 (int) and 0 (int)): all "
        "its records are quarantined",
        id="conflict-in-file",
    ),
    pytest.param(
        [{"transaction_id": "e2"}, {"transaction_id": "e2", "known_at": "2026-03-20T09:00Z"}],
        None,
        DUPLICATE_IN_FILE,
        "duplicate: transaction_id 'e2' has outcome 1 (int) again (first in record 1 of this file)",
        id="duplicate-in-file",
    ),
    pytest.param(
        [{"transaction_id": "e2", "is_fraud": 0}],
        KNOWN,
        CONFLICT_WITH_KNOWN,
        "conflicting outcome for transaction_id 'e2': 0 (int) here, but a positive one "
        "(positive: 1) was known on an earlier day, and it stands",
        id="conflict-with-known",
    ),
    pytest.param(
        [{"transaction_id": "e3", "is_fraud": 0}],
        KNOWN,
        DUPLICATE_OF_KNOWN,
        "duplicate: transaction_id 'e3' has outcome 0 (int), known on an earlier day already",
        id="duplicate-of-known",
    ),
]


@pytest.mark.parametrize(("bad", "known", "reason", "text"), CORPUS)
def test_each_bad_record_is_quarantined_with_its_reason(bad, known, reason, text):
    good = {"transaction_id": "e4", "is_fraud": 0, "known_at": "2026-03-20T10:00:00+01:00"}
    frame = records(good, *bad)
    result = reconciled(frame, known)
    # The good record joins, with its event.
    joined = result.joined.set_index("transaction_id")
    assert joined.loc["e4", "outcome"] == 0
    assert joined.loc["e4", "event_day"] == "2026-03-19"
    assert joined.loc["e4", "known_at"] == pd.Timestamp("2026-03-20 09:00", tz="UTC")
    quarantined = result.quarantined
    assert result.summary.reason_counts[reason] == len(quarantined) >= 1
    if reason == DUPLICATE_IN_FILE:  # the first of the two joins
        assert len(quarantined) == 1 and "e2" in set(result.joined["transaction_id"])
    else:
        assert len(quarantined) == len(bad)
    assert text in quarantined[REASON_COLUMN].iloc[-1]
    # Each record keeps its columns, as text, and its position in the file.
    assert list(quarantined.columns) == [*frame.columns, REASON_COLUMN]
    assert list(quarantined.index) == list(range(len(frame) - len(quarantined), len(frame)))


def test_the_whole_corpus_in_one_file_is_accounted_for_record_by_record():
    rows, expected = [], {}
    for case in CORPUS:
        bad, known, reason, _ = case.values
        if known is not None or reason in (CONFLICT_IN_FILE, DUPLICATE_IN_FILE):
            continue  # these depend on their neighbours: tested above
        rows += bad
        expected[reason] = expected.get(reason, 0) + len(bad)
    good = [
        {"transaction_id": "e1", "is_fraud": 1.0},  # read as float (a gap): 1.0 is 1
        {"transaction_id": "e2", "is_fraud": "0"},  # read as text: "0" is 0
        {"transaction_id": "e3", "known_at": pd.Timestamp("2026-03-20 23:59:59.999", tz="UTC")},
    ]
    result = reconciled(records(*rows, *good))
    assert result.summary.reason_counts == expected
    assert result.joined["transaction_id"].tolist() == ["e1", "e2", "e3"]
    assert result.joined["outcome"].tolist() == [1, 0, 1]
    assert result.summary.event_days == ("2026-03-10", "2026-03-11", "2026-03-12")
    assert list(result.summary.reason_counts) == [r for r in REASONS if r in expected]


def test_a_conflict_in_the_file_quarantines_every_record_of_the_id_even_a_duplicate():
    frame = records(
        {"transaction_id": "e2", "is_fraud": 1},
        {"transaction_id": "e2", "is_fraud": 1},
        {"transaction_id": "e2", "is_fraud": 0},
        {"transaction_id": "e3", "is_fraud": "maybe"},  # not a valid outcome: no conflict
        {"transaction_id": "e3", "is_fraud": 0},
    )
    result = reconciled(frame)
    assert result.summary.reason_counts == {OUTCOME_NOT_ALLOWED: 1, CONFLICT_IN_FILE: 3}
    assert result.joined["transaction_id"].tolist() == ["e3"]


def test_outcomes_of_later_days_build_on_those_known():
    first = reconciled(records({"transaction_id": "e1"}, {"transaction_id": "e2", "is_fraud": 0}))
    known = known_outcomes(first.joined, "transaction_id")
    assert known.to_dict() == {"e1": 1, "e2": 0}
    second = reconciled(
        records({"transaction_id": "e1"}, {"transaction_id": "e2"}, {"transaction_id": "e3"}),
        known,
    )
    assert second.summary.reason_counts == {CONFLICT_WITH_KNOWN: 1, DUPLICATE_OF_KNOWN: 1}
    assert second.joined["transaction_id"].tolist() == ["e3"]


def test_a_file_with_no_records_gives_nothing_and_no_error():
    empty = records({}).iloc[0:0]
    for frame in (empty, pd.DataFrame()):
        result = reconciled(frame)
        assert result.joined.empty and result.quarantined.empty
        assert result.summary.as_metadata() == {
            "arrival_day": "2026-03-20",
            "records_in": 0,
            "joined": 0,
            "quarantined": 0,
            "positives": 0,
            "reason_counts": {},
            "event_days": [],
        }


def test_columns_that_do_not_match_the_spec_are_named():
    frame = records({}).rename(columns={"known_at": "resolved_at"}).drop(columns=["is_fraud"])
    with pytest.raises(OutcomeColumnsError, match="lack the column\\(s\\) 'is_fraud', 'known_at'"):
        reconcile_outcomes(frame, SPEC, ARRIVAL, EVENTS)


def test_no_events_means_every_id_is_unknown():
    result = reconcile_outcomes(records({}), SPEC, ARRIVAL, EVENTS.iloc[0:0])
    assert result.summary.reason_counts == {UNKNOWN_ID: 1}
    assert "is not among the events (none were given)" in result.quarantined[REASON_COLUMN][0]


def test_days_are_cut_in_the_partitions_time_zone():
    # 02:00 UTC on the 21st is 21:00 on the 20th in Chicago; e4 at 23:00 UTC on the 19th is
    # 18:00 there, still the 19th.
    frame = records({"transaction_id": "e4", "known_at": "2026-03-21T02:00:00Z"})
    assert reconciled(frame).summary.reason_counts == {KNOWN_AT_NOT_ON_ARRIVAL_DAY: 1}
    result = reconciled(frame, timezone="America/Chicago")
    assert result.summary.joined == 1
    assert result.joined["event_day"].tolist() == ["2026-03-19"]


def test_the_spec_refuses_a_positive_label_it_does_not_allow():
    with pytest.raises(ValueError, match="positive label 'bad' is not one of the allowed"):
        OutcomeSpec(
            "id", "status", "known_at", allowed_values=("good", "fine"), positive_label="bad"
        )


def test_text_labels_such_as_a_loan_status():
    spec = OutcomeSpec("transaction_id", "Status", "known_at", ("good", "bad"), "bad")
    frame = records(
        {"transaction_id": "e1", "Status": "bad"},
        {"transaction_id": "e2", "Status": "good"},
        {"transaction_id": "e3", "Status": "BAD"},
    ).drop(columns=["is_fraud"])
    result = reconcile_outcomes(frame, spec, ARRIVAL, EVENTS)
    assert result.joined["outcome"].tolist() == [1, 0]
    assert (
        "Status: 'BAD' is not an allowed outcome (allowed: 'good', 'bad')"
        in (result.quarantined[REASON_COLUMN].iloc[0])
    )


# The generator's own outcomes, against its own events.
SMALL = {"rows_per_day": 3000, "customers": 3000}


def generated_events(params, first: dt.date, last: dt.date) -> pd.Series:
    days = pd.date_range(first, last).date
    frame = pd.concat(generate_transactions(day, params) for day in days)
    return events_index(frame, "transaction_id", "event_time")


def test_a_generated_day_of_outcomes_joins_entirely_with_the_events_labels():
    params = generator_params(**SMALL, outcome_delay_max_days=5)
    events = generated_events(params, ARRIVAL - dt.timedelta(days=5), ARRIVAL)
    outcomes = generate_outcomes(ARRIVAL, params)
    result = reconcile_outcomes(outcomes, SPEC, ARRIVAL, events)
    assert result.summary.joined == len(outcomes) > 0
    assert result.quarantined.empty
    assert result.summary.event_days == tuple(
        str(ARRIVAL - dt.timedelta(days=k)) for k in range(5, 0, -1)
    )
    # The outcome is the label the events would have carried.
    labels = pd.concat(
        generate_transactions(ARRIVAL - dt.timedelta(days=k), params) for k in range(1, 6)
    ).drop_duplicates("transaction_id")
    expected = labels.set_index("transaction_id")["is_fraud"]
    joined = result.joined.set_index("transaction_id")["outcome"]
    assert joined.eq(expected[joined.index]).all()
    assert result.summary.positives == joined.sum()


def test_generated_outcomes_read_back_from_csv_as_text_join_too():
    """As a file source reads them: every column as text."""
    params = generator_params(**SMALL, outcome_delay_max_days=3, events_carry_labels=False)
    events = generated_events(params, ARRIVAL - dt.timedelta(days=3), ARRIVAL)
    buffer = io.StringIO()
    generate_outcomes(ARRIVAL, params).to_csv(buffer, index=False)
    buffer.seek(0)
    outcomes = pd.read_csv(buffer, dtype=str)
    result = reconcile_outcomes(outcomes, SPEC, ARRIVAL, events)
    assert result.summary.joined == len(outcomes) and result.quarantined.empty


def test_arrival_days_in_turn_give_each_event_one_outcome_and_nothing_twice():
    params = generator_params(**SMALL, outcome_delay_max_days=4)
    first = ARRIVAL - dt.timedelta(days=4)
    events = generated_events(params, first - dt.timedelta(days=4), ARRIVAL)
    known = pd.Series(dtype="int8")
    for k in range(5):
        day = first + dt.timedelta(days=k)
        result = reconcile_outcomes(generate_outcomes(day, params), SPEC, day, events, known)
        assert result.quarantined.empty
        known = pd.concat([known, known_outcomes(result.joined, "transaction_id")])
    # Events of `first - 1` have had every delay (1-4 days) arrive by ARRIVAL.
    day_ids = events.index[events.index.str.startswith(f"tx-{first - dt.timedelta(days=1):%Y%m%d}")]
    assert set(day_ids) <= set(known.index)
    assert not known.index.duplicated().any()
    # Replaying an arrival day changes nothing: all of it is known already.
    again = reconcile_outcomes(generate_outcomes(ARRIVAL, params), SPEC, ARRIVAL, events, known)
    assert again.summary.joined == 0
    assert set(again.summary.reason_counts) == {DUPLICATE_OF_KNOWN}


def test_reconciliation_is_vectorised_on_a_full_day():
    """50,000 records against 14 days of events, mostly good; not a timed test, a sanity bound."""
    rng = np.random.default_rng(0)
    n_events = 14 * 50_000
    events = pd.Series(
        pd.Timestamp("2026-03-06", tz="UTC")
        + pd.to_timedelta(np.sort(rng.integers(0, 14 * 86400, n_events)), unit="s"),
        index=[f"tx-{i:08d}" for i in range(n_events)],
    )
    picked = rng.choice(n_events, 50_000, replace=False)
    frame = pd.DataFrame(
        {
            "transaction_id": events.index[picked],
            "is_fraud": rng.integers(0, 2, 50_000),
            "known_at": pd.Timestamp("2026-03-20 12:00", tz="UTC"),
        }
    )
    frame.loc[::100, "transaction_id"] = "unknown"
    result = reconcile_outcomes(frame, SPEC, ARRIVAL, events)
    assert result.summary.reason_counts == {UNKNOWN_ID: 500}
    assert result.summary.joined == 49_500
