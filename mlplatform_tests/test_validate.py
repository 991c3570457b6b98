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


def categorical(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows as a Parquet file with dictionary-encoded text columns reads back: Categoricals."""
    import io

    rows = rows.astype({c: "category" for c in ("country", "channel", "merchant_category")})
    buffer = io.BytesIO()
    rows.to_parquet(buffer)
    buffer.seek(0)
    return pd.read_parquet(buffer)


def test_null_in_a_categorical_column_is_quarantined_or_kept_by_its_nullability(card_contract):
    rows = clean_rows()
    rows.loc[1, "channel"] = None  # not nullable
    rows.loc[2, "merchant_category"] = None  # nullable
    rows.loc[3, "country"] = "XX"  # not a category of the contract
    raw = categorical(rows)
    assert isinstance(raw["channel"].dtype, pd.CategoricalDtype)
    outcome = validate(raw, card_contract)
    assert reason_of(outcome, "t1") == "channel: missing value"
    assert reason_of(outcome, "t3") == "country: not an allowed category (got 'XX')"
    assert "t2" in set(outcome.validated["transaction_id"])
    assert len(outcome.validated) + len(outcome.quarantined) == len(rows)


def test_an_unexpected_error_names_the_partition_and_column(card_contract):
    rows = clean_rows()
    rows["is_fraud"] = [1 + 2j] * len(rows)  # complex numbers: converting to integer fails
    with pytest.raises(DatasetError, match=r"raw\[2026-03-02\]: column 'is_fraud' \(integer"):
        validate(rows, card_contract, source="raw[2026-03-02]")


def test_rows_outside_every_partition_are_quarantined_with_their_reason(card_contract):
    from mlplatform.core.validate import OUTSIDE_PARTITIONS_COLUMN, ROW_COLUMN

    rows = clean_rows().astype(object)
    rows.loc[1, "amount"] = -3.0
    rows[OUTSIDE_PARTITIONS_COLUMN] = None
    carried = clean_rows(2).astype(object).assign(transaction_id=["old", "t0"])
    carried["event_time"] = ["1970-01-01T00:00:00Z", "2031-01-01T00:00:00Z"]
    carried[OUTSIDE_PARTITIONS_COLUMN] = ["before the first partition (2026-01-01)",
                                          "in the future (after 2026-12-02)"]  # fmt: skip
    outcome = validate(pd.concat([rows, carried], ignore_index=True), card_contract)
    # A carried row does not take part in the day's rules: t0 is no duplicate of the day's t0.
    assert outcome.validated["transaction_id"].tolist() == ["t0", "t2", "t3", "t4", "t5"]
    assert outcome.quarantined[ROW_COLUMN].tolist() == [1, 6, 7]
    assert outcome.quarantined[REASON_COLUMN].tolist()[1:] == [
        "event_time: outside every partition: before the first partition (2026-01-01) "
        "(got '1970-01-01T00:00:00Z')",
        "event_time: outside every partition: in the future (after 2026-12-02) "
        "(got '2031-01-01T00:00:00Z')",
    ]
    assert outcome.reason_counts["event_time: outside every partition: in the future "
                                 "(after 2026-12-02)"] == 1  # fmt: skip
    assert OUTSIDE_PARTITIONS_COLUMN not in outcome.ignored_columns
