import datetime as dt

import pandas as pd
import pytest

from mlplatform.core.validate import REASON_COLUMN, DatasetError, validate
from mlplatform_tests.packaged import generated_day


def clean_rows(n: int = 6) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "transaction_id": [f"t{i}" for i in range(n)],
            "event_time": pd.date_range("2026-03-02", periods=n, freq="h", tz="UTC"),
            "customer_id": ["c1"] * n,
            "device_id": ["d1"] * n,
            "amount": [10.0 + i for i in range(n)],
            "merchant_category": ["grocery"] * n,
            "country": ["US"] * n,
            "channel": ["pos"] * n,
            "card_present": [True] * n,
            "distance_from_home_km": [1.0] * n,
            "is_fraud": [0, 1] * (n // 2),
        }
    )


def reason_of(outcome, transaction_id: str) -> str:
    rows = outcome.quarantined[outcome.quarantined["transaction_id"] == transaction_id]
    assert len(rows) == 1, f"{transaction_id} not quarantined exactly once"
    return rows[REASON_COLUMN].iloc[0]


def test_clean_rows_all_pass_with_contract_types(card_contract):
    outcome = validate(clean_rows(), card_contract)
    assert len(outcome.validated) == 6 and outcome.quarantined.empty
    assert isinstance(outcome.validated["country"].dtype, pd.CategoricalDtype)
    assert outcome.validated["card_present"].dtype == bool
    assert outcome.validated["is_fraud"].dtype == "int64"


@pytest.mark.parametrize(
    ("column", "value", "expected"),
    [
        ("amount", -5.0, "amount: outside [0.01, 50000.0] (got -5.0)"),
        ("amount", None, "amount: missing value"),
        ("amount", "abc", "amount: not a valid float (got 'abc')"),
        ("country", "XX", "country: not an allowed category (got 'XX')"),
        ("channel", None, "channel: missing value"),
        ("card_present", "maybe", "card_present: not a valid boolean (got 'maybe')"),
        ("event_time", "not a time", "event_time: not a valid datetime"),
        ("distance_from_home_km", 30000.0, "distance_from_home_km: outside [0.0, 20100.0]"),
        ("is_fraud", 3, "is_fraud: not an allowed category (got 3)"),
        ("is_fraud", None, "is_fraud: missing value"),
    ],
)
def test_each_rule_quarantines_the_row_with_its_reason(card_contract, column, value, expected):
    rows = clean_rows().astype(object)
    rows.loc[2, column] = value
    outcome = validate(rows, card_contract)
    assert expected in reason_of(outcome, "t2")
    assert len(outcome.validated) == 5
    assert outcome.reason_counts == {expected.split(" (got")[0]: 1}


def test_nullable_columns_accept_missing_values(card_contract):
    rows = clean_rows()
    rows.loc[1, "merchant_category"] = None
    rows.loc[1, "distance_from_home_km"] = None
    outcome = validate(rows, card_contract)
    assert outcome.quarantined.empty


def test_duplicate_ids_keep_the_first_and_quarantine_the_rest(card_contract):
    rows = pd.concat([clean_rows(), clean_rows().iloc[[1]]], ignore_index=True)
    outcome = validate(rows, card_contract)
    assert list(outcome.validated["transaction_id"]).count("t1") == 1
    assert outcome.quarantined["source_row"].tolist() == [6]
    assert "transaction_id: duplicate id" in outcome.quarantined[REASON_COLUMN].iloc[0]


def test_a_row_failing_two_rules_lists_both(card_contract):
    rows = clean_rows().astype(object)
    rows.loc[3, "amount"] = -1.0
    rows.loc[3, "country"] = "ZZ"
    reason = reason_of(validate(rows, card_contract), "t3")
    assert "amount: outside" in reason and "country: not an allowed category" in reason


def test_no_row_is_lost_on_generated_data(card_contract):
    raw = generated_day(dt.date(2026, 3, 2))
    outcome = validate(raw, card_contract)
    assert len(outcome.validated) + len(outcome.quarantined) == len(raw)
    assert len(outcome.quarantined) > 0
    assert sum(outcome.reason_counts.values()) >= len(outcome.quarantined)
    assert outcome.validated["transaction_id"].is_unique


def test_missing_column_is_named(card_contract):
    with pytest.raises(DatasetError, match=r"missing: \['is_fraud'\]"):
        validate(clean_rows().drop(columns=["is_fraud"]), card_contract, source="raw[2026-03-02]")


def test_empty_partition_is_refused(card_contract):
    with pytest.raises(DatasetError, match=r"raw\[2026-03-02\]: no rows"):
        validate(clean_rows().iloc[0:0], card_contract, source="raw[2026-03-02]")


def test_extra_columns_are_reported_not_kept(card_contract):
    rows = clean_rows().assign(note="x")
    outcome = validate(rows, card_contract)
    assert outcome.ignored_columns == ["note"]
    assert "note" not in outcome.validated.columns
