import datetime as dt

import numpy as np
import pandas as pd
import pytest

from mlplatform.core.features import (
    LABEL_COLUMN,
    MISSING_CATEGORY,
    SPLIT_COLUMN,
    WAITING,
    build_features,
    model_columns,
    positive_label_flags,
    time_split,
)
from mlplatform.core.validate import validate
from mlplatform_tests.packaged import generated_day


def history(card_contract) -> pd.DataFrame:
    times = pd.to_datetime(
        [
            "2026-03-02 10:00", "2026-03-02 10:20", "2026-03-02 10:50", "2026-03-02 12:00",
            "2026-03-02 10:10", "2026-03-02 10:30",
        ],
        utc=True,
    )  # fmt: skip
    frame = pd.DataFrame(
        {
            "transaction_id": [f"t{i}" for i in range(6)],
            "event_time": times,
            "customer_id": ["a", "a", "a", "a", "b", "b"],
            "device_id": ["d1", "d1", "d2", "d1", "e1", None],
            "amount": [10.0, 30.0, 40.0, 100.0, 5.0, 5.0],
            "merchant_category": ["grocery", None, "fuel", "fuel", "fuel", "fuel"],
            "country": ["US"] * 6,
            "channel": ["pos"] * 6,
            "card_present": [True] * 6,
            "distance_from_home_km": [1.0] * 6,
            "is_fraud": [0, 0, 1, 0, 0, 1],
        }
    )
    return validate(frame, card_contract).validated


@pytest.fixture
def table(card_contract):
    features = build_features(history(card_contract), card_contract)
    return features.set_index("transaction_id")


def test_hour_of_day(table):
    assert table.loc["t3", "hour_of_day"] == 12


def test_customer_amount_ratio_uses_only_earlier_transactions(table):
    assert np.isnan(table.loc["t0", "customer_amount_ratio"])  # no history yet
    assert table.loc["t1", "customer_amount_ratio"] == pytest.approx(30 / 10)
    assert table.loc["t2", "customer_amount_ratio"] == pytest.approx(40 / 20)
    assert table.loc["t3", "customer_amount_ratio"] == pytest.approx(100 / (80 / 3))


def test_velocity_counts_the_previous_hour_of_the_same_customer(table):
    assert table.loc["t0", "customer_velocity_1h"] == 0
    assert table.loc["t2", "customer_velocity_1h"] == 2  # 10:00 and 10:20, not b's
    assert table.loc["t3", "customer_velocity_1h"] == 0  # 12:00: 10:50 is 70 minutes earlier
    assert table.loc["t5", "customer_velocity_1h"] == 1


def test_new_device(table):
    assert table.loc["t0", "new_device"] == 1
    assert table.loc["t1", "new_device"] == 0
    assert table.loc["t2", "new_device"] == 1
    assert np.isnan(table.loc["t5", "new_device"])


def test_generic_columns_from_the_contract(table, card_contract):
    assert table.loc["t1", "merchant_category"] == MISSING_CATEGORY
    assert table.loc["t0", "card_present"] == 1.0
    assert table[LABEL_COLUMN].tolist() == [0, 0, 1, 0, 0, 1] or set(table[LABEL_COLUMN]) == {0, 1}
    categorical, numeric = model_columns(table.reset_index(), card_contract)
    assert categorical == ["merchant_category", "country", "channel"]
    assert "customer_id" not in numeric and "transaction_id" not in numeric
    assert {"amount", "hour_of_day", "customer_velocity_1h", "new_device"} <= set(numeric)


def test_features_do_not_depend_on_later_rows(card_contract):
    """Appending future rows must not change any feature of earlier rows."""
    validated = validate(generated_day(dt.date(2026, 3, 2)), card_contract).validated
    cut = validated["event_time"].quantile(0.5)
    early = build_features(validated[validated["event_time"] <= cut], card_contract)
    full = build_features(validated, card_contract)
    columns = [c for c in early.columns if c != SPLIT_COLUMN]
    pd.testing.assert_frame_equal(early[columns], full.iloc[: len(early)][columns])


def test_time_split_has_no_leakage_and_right_sizes(card_contract):
    validated = validate(generated_day(dt.date(2026, 3, 2)), card_contract).validated
    table = build_features(validated, card_contract, validation_fraction=0.2, test_fraction=0.1)
    times = {
        s: table.loc[table[SPLIT_COLUMN] == s, "event_time"]
        for s in ("train", "validation", "test")
    }
    assert times["train"].max() < times["validation"].min()
    assert times["validation"].max() < times["test"].min()
    shares = table[SPLIT_COLUMN].value_counts(normalize=True)
    assert shares["train"] == pytest.approx(0.7, abs=0.01)
    assert shares["test"] == pytest.approx(0.1, abs=0.01)


def test_rows_whose_labels_are_not_known_yet_wait_outside_every_split(card_contract):
    """With a label delay, the newest days are kept (to be scored) but no split learns from or is
    judged on them; nor on a row without a label. The fractions apply to the labelled rows."""
    days = [dt.date(2026, 3, d) for d in (1, 2, 3)]
    validated = pd.concat(
        [validate(generated_day(day, rows_per_day=3000), card_contract).validated for day in days],
        ignore_index=True,
    )
    validated["is_fraud"] = validated["is_fraud"].astype("Int64")
    validated.loc[5, "is_fraud"] = pd.NA  # a label still to come, on an old day
    table = build_features(
        validated, card_contract, validation_fraction=0.2, test_fraction=0.1,
        labels_known_before=dt.date(2026, 3, 3),
    )  # fmt: skip
    waiting = table[SPLIT_COLUMN] == WAITING
    on_last_day = table["event_time"].dt.date == days[2]
    assert waiting.sum() == on_last_day.sum() + 1
    assert waiting[on_last_day].all()
    assert (
        table.loc[
            table["transaction_id"] == validated.loc[5, "transaction_id"], SPLIT_COLUMN
        ].item()
        == WAITING
    )
    labelled = table[~waiting]
    assert labelled["event_time"].dt.date.max() == days[1]
    shares = labelled[SPLIT_COLUMN].value_counts(normalize=True)
    assert shares["test"] == pytest.approx(0.1, abs=0.01)
    # Without a delay every labelled row is in a split.
    assert (build_features(validated.drop(index=5), card_contract)[SPLIT_COLUMN] != WAITING).all()


def test_rows_sharing_a_timestamp_share_a_split():
    times = pd.Series(pd.to_datetime(["2026-03-02 10:00"] * 4 + ["2026-03-02 11:00"] * 6, utc=True))
    split = time_split(times, 0.3, 0.3)
    assert split[:4].nunique() == 1


def test_single_class_window_is_refused(card_contract):
    validated = history(card_contract).assign(is_fraud=0)
    with pytest.raises(ValueError, match="single class"):
        build_features(validated, card_contract)


def test_rows_are_taken_in_time_order(card_contract):
    """Stored days are in time order and used as they are; any other order is sorted first."""
    validated = validate(generated_day(dt.date(2026, 3, 2)), card_contract).validated
    in_order = build_features(validated, card_contract)
    assert in_order["transaction_id"].tolist() == validated["transaction_id"].tolist()
    reversed_rows = build_features(validated.iloc[::-1], card_contract)
    assert reversed_rows["event_time"].is_monotonic_increasing
    assert sorted(reversed_rows["transaction_id"]) == sorted(validated["transaction_id"])
    assert reversed_rows.index.equals(pd.RangeIndex(len(validated)))


def test_positive_label_is_matched_as_text():
    target = pd.Series([1, 0, "1", None, 1.5, "yes"], index=[10, 11, 12, 13, 14, 15])
    flags = positive_label_flags(target, 1)
    assert flags.tolist() == [1, 0, 1, 0, 0, 0]
    assert flags.index.tolist() == [10, 11, 12, 13, 14, 15]
    assert positive_label_flags(target, "yes").tolist() == [0, 0, 0, 0, 0, 1]


def test_ordered_categories_reach_the_model_in_their_declared_order():
    from mlplatform.core.contract import parse_contract
    from mlplatform.core.features import build_features, model_columns

    contract = parse_contract(
        {
            "name": "loans",
            "id": "loan_id",
            "event_time": "applied_at",
            "target": "bad",
            "columns": {
                "loan_id": {"type": "string", "nullable": False, "feature": False},
                "applied_at": {"type": "datetime", "nullable": False},
                "bad": {"type": "integer", "nullable": False},
                "grade": {"type": "category", "categories": ["A", "B", "C", "D"], "ordered": True},
                "purpose": {"type": "category", "categories": ["car", "home"]},
            },
        }
    )
    rows = pd.DataFrame(
        {
            "loan_id": [f"l{i}" for i in range(8)],
            "applied_at": pd.date_range("2026-03-01", periods=8, freq="h", tz="UTC"),
            "bad": [0, 1, 0, 1, 0, 0, 1, 0],
            "grade": pd.Categorical(["D", "B", None, "A", "C", "A", "D", "B"]),
            "purpose": ["car", "home"] * 4,
        }
    )
    features = build_features(rows, contract, validation_fraction=0.25, test_fraction=0.25)
    assert features["grade"].tolist()[:2] == [3.0, 1.0] and np.isnan(features["grade"][2])
    categorical, numeric = model_columns(features, contract)
    assert "grade" in numeric and categorical == ["purpose"]


def test_only_a_category_column_can_be_ordered():
    from mlplatform.core.contract import ContractError, parse_contract

    with pytest.raises(ContractError, match="ordered applies to category columns"):
        parse_contract(
            {"name": "x", "id": "i", "event_time": "t", "target": "y",
             "columns": {"i": {"type": "string"}, "t": {"type": "datetime"},
                         "y": {"type": "integer"}, "n": {"type": "float", "ordered": True}}}
        )  # fmt: skip


D = dt.date


def test_window_days_end_on_the_partition_day():
    from mlplatform.core.window import window_days

    day = dt.date(2026, 3, 2)
    assert window_days(day, 3) == [dt.date(2026, 2, 28), dt.date(2026, 3, 1), day]
    assert window_days(day, 1) == [day]


def test_a_window_short_of_the_partitions_start_or_of_failed_days_is_complete():
    from mlplatform.core.window import DayState, WindowStatus

    window = WindowStatus(
        {
            D(2025, 12, 30): DayState.BEFORE_START,
            D(2025, 12, 31): DayState.BEFORE_START,
            D(2026, 1, 1): DayState.INCLUDED,
            D(2026, 1, 2): DayState.FAILED_GATES,
            D(2026, 1, 3): DayState.INCLUDED,
        },
        {D(2026, 1, 2): "label_rate"},
    )
    assert window.complete
    assert window.summary() == (
        "window complete: 2/5 days: 2026-01-02 failed its gates; 2025-12-30..31 before the start"
    )


def test_a_day_still_to_come_or_never_written_makes_the_window_partial():
    from mlplatform.core.window import DayState, WindowStatus

    pending = WindowStatus(
        {D(2026, 3, 1): DayState.PENDING, D(2026, 3, 2): DayState.INCLUDED},
        {D(2026, 3, 1): "run 1234abcd (STARTED)"},
    )
    assert not pending.complete and pending.pending == [D(2026, 3, 1)]
    missing = WindowStatus(
        {
            D(2026, 2, 27): DayState.MISSING,
            D(2026, 2, 28): DayState.MISSING,
            D(2026, 3, 1): DayState.MISSING,
            D(2026, 3, 3): DayState.MISSING,
            D(2026, 3, 4): DayState.INCLUDED,
        }
    )
    assert not missing.complete and missing.pending == []
    assert missing.summary() == (
        "window PARTIAL: 1/5 days: 2026-02-27..2026-03-01, 2026-03-03 not materialized"
    )
