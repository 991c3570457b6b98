import datetime as dt

import pandas as pd

from mlplatform_tests.packaged import generated_day

DAY = dt.date(2026, 3, 2)


def test_same_seed_and_date_give_the_same_rows():
    pd.testing.assert_frame_equal(generated_day(DAY), generated_day(DAY))


def test_other_date_or_seed_gives_other_rows():
    base = generated_day(DAY)
    assert not base["amount"].equals(generated_day(dt.date(2026, 3, 3))["amount"])
    other_seed = generated_day(DAY, seed=7)
    assert not base["amount"].equals(other_seed["amount"])


def test_shape_matches_the_contract(card_contract):
    frame = generated_day(DAY)
    assert list(frame.columns) == list(card_contract.columns)
    assert frame["event_time"].dt.date.eq(DAY).all()
    assert frame["event_time"].is_monotonic_increasing


def test_realistic_imbalance_and_customers():
    frames = [generated_day(dt.date(2026, 3, d)) for d in range(1, 4)]
    rate = pd.concat(frames)["is_fraud"].mean()
    assert 0.005 <= rate <= 0.02
    # Customers recur across days, so per-customer history means something.
    shared = set(frames[0]["customer_id"]) & set(frames[1]["customer_id"])
    assert len(shared) > 1000


def test_defects_are_injected_for_validation_to_find():
    frame = generated_day(DAY)
    assert frame["transaction_id"].duplicated().sum() > 0
    assert frame["merchant_category"].isna().sum() > 0
    assert (frame["amount"] < 0).sum() > 0
    assert (frame["country"] == "XX").sum() > 0


def test_defects_can_be_switched_off():
    frame = generated_day(DAY, null_rate=0, duplicate_rate=0, out_of_range_rate=0)
    assert not frame["transaction_id"].duplicated().any()
    assert not frame.drop(columns=["device_id"]).isna().any().any()
    assert (frame["amount"] > 0).all()


def test_fraud_follows_learnable_patterns():
    frame = pd.concat(generated_day(dt.date(2026, 3, d)) for d in range(1, 4))
    risky = frame["merchant_category"].isin(["electronics", "jewelry", "gift_cards"])
    assert frame.loc[risky, "is_fraud"].mean() > 3 * frame.loc[~risky, "is_fraud"].mean()
    new_device = frame["device_id"].str.contains("-dn", na=False)
    assert frame.loc[new_device, "is_fraud"].mean() > 5 * frame.loc[~new_device, "is_fraud"].mean()
