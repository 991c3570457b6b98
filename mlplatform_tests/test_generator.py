import datetime as dt
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from mlplatform.core.generator import (
    MERCHANT_CATEGORIES,
    OutcomeDelay,
    generate_outcomes,
    generate_transactions,
)
from mlplatform_tests.packaged import generated_day, generator_params

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


# Late outcomes: each event's outcome arrives on a later day, as a record of its own.
SMALL = {"rows_per_day": 2000, "customers": 2000}


def outcomes_of_days(first: dt.date, days: int, delay: OutcomeDelay, **changes) -> pd.DataFrame:
    """The outcome records that arrive on `days` days from `first`, each with its arrival day."""
    params = generator_params(**changes)
    frames = []
    for k in range(days):
        arrival = first + dt.timedelta(days=k)
        frames.append(generate_outcomes(arrival, params, delay).assign(arrival_day=arrival))
    return pd.concat(frames, ignore_index=True)


def test_outcomes_are_deterministic_per_seed_and_day():
    params = generator_params(**SMALL)
    delay = OutcomeDelay(min_days=1, max_days=5)
    first = generate_outcomes(DAY, params, delay)
    pd.testing.assert_frame_equal(first, generate_outcomes(DAY, params, delay))
    assert list(first.columns) == ["transaction_id", "is_fraud", "known_at"]
    assert not first.equals(generate_outcomes(DAY, generator_params(**SMALL, seed=7), delay))


@pytest.mark.parametrize(
    "delay",
    [
        OutcomeDelay(min_days=1, max_days=4),
        OutcomeDelay(min_days=0, max_days=3, shape="geometric", mean_days=1.0),
    ],
    ids=["uniform-1-4", "geometric-0-3"],
)
def test_every_event_gets_exactly_one_outcome_within_its_delay(delay):
    """Every distinct transaction of the day (a replayed row adds none) gets exactly one outcome,
    on a day `min_days` to `max_days` after it, known after the event, with the event's label."""
    events = generated_day(DAY, **SMALL)
    assert events["transaction_id"].duplicated().any()  # replayed rows
    outcomes = outcomes_of_days(DAY, delay.max_days + 2, delay, **SMALL)
    mine = outcomes[outcomes["transaction_id"].str.startswith(f"tx-{DAY:%Y%m%d}-")]
    distinct = events.drop_duplicates("transaction_id")
    assert not mine["transaction_id"].duplicated().any()
    assert set(mine["transaction_id"]) == set(distinct["transaction_id"])

    joined = mine.merge(distinct, on="transaction_id", suffixes=("", "_event"))
    days_late = (joined["arrival_day"] - DAY).map(lambda delta: delta.days)
    assert days_late.between(delay.min_days, delay.max_days).all()
    assert set(days_late) == set(range(delay.min_days, delay.max_days + 1))
    assert (joined["known_at"].dt.date == joined["arrival_day"]).all()
    assert (joined["known_at"] > joined["event_time"]).all()
    assert joined["is_fraud"].equals(joined["is_fraud_event"])


def test_outcome_delays_follow_their_shape():
    rng = np.random.default_rng(0)
    uniform = OutcomeDelay(min_days=1, max_days=14).draw(rng, 140_000)
    shares = np.bincount(uniform, minlength=15)[1:] / len(uniform)
    assert uniform.min() == 1 and uniform.max() == 14
    assert np.allclose(shares, 1 / 14, atol=0.005)
    geometric = OutcomeDelay(min_days=2, max_days=60, shape="geometric", mean_days=5.0)
    drawn = geometric.draw(rng, 100_000)
    assert drawn.min() == 2 and drawn.max() <= 60
    assert drawn.mean() == pytest.approx(5.0, abs=0.05)
    assert (drawn == 2).mean() > (drawn == 3).mean() > (drawn == 4).mean()


def test_outcome_delay_refuses_inconsistent_dials():
    with pytest.raises(ValueError, match="min_days <= max_days"):
        OutcomeDelay(min_days=5, max_days=2)
    with pytest.raises(ValueError, match="geometric delay needs"):
        OutcomeDelay(shape="geometric")
    with pytest.raises(ValueError, match="mean_days applies to the geometric shape only"):
        OutcomeDelay(mean_days=3.0)


def test_the_settings_delay_is_the_default_one():
    params = generator_params(
        outcome_delay_min_days=2, outcome_delay_max_days=3, outcome_delay_shape="uniform"
    )
    assert params.outcome_delay == OutcomeDelay(min_days=2, max_days=3)
    pd.testing.assert_frame_equal(
        generate_outcomes(DAY, replace(params, **SMALL)),
        generate_outcomes(DAY, replace(params, **SMALL), OutcomeDelay(min_days=2, max_days=3)),
    )


def test_events_can_come_without_labels():
    labelled = generated_day(DAY, **SMALL)
    unlabelled = generated_day(DAY, **SMALL, events_carry_labels=False)
    assert "is_fraud" not in unlabelled.columns
    pd.testing.assert_frame_equal(unlabelled, labelled.drop(columns=["is_fraud"]))
    # Their outcomes still carry the label.
    params = generator_params(**SMALL, events_carry_labels=False)
    assert "is_fraud" in generate_outcomes(DAY, params, OutcomeDelay(1, 2)).columns


# Concept drift: from day D the link between inputs and fraud changes; the inputs do not.
DRIFT_DAY = dt.date(2026, 3, 8)


def test_concept_drift_changes_the_labels_and_nothing_else():
    for day in (DRIFT_DAY, DRIFT_DAY + dt.timedelta(days=3)):
        before = generated_day(day)
        after = generated_day(day, concept_drift_from=DRIFT_DAY.isoformat())
        inputs = [column for column in before.columns if column != "is_fraud"]
        pd.testing.assert_frame_equal(after[inputs], before[inputs])
        changed = (after["is_fraud"] != before["is_fraud"]).mean()
        assert changed > 0.01
        # The fraud rate stays about the same: only who is fraud changes.
        assert after["is_fraud"].mean() == pytest.approx(before["is_fraud"].mean(), rel=0.3)
    # Days before the drift are untouched.
    day = DRIFT_DAY - dt.timedelta(days=1)
    pd.testing.assert_frame_equal(
        generated_day(day, concept_drift_from=DRIFT_DAY), generated_day(day)
    )


def _model_inputs(frame: pd.DataFrame) -> pd.DataFrame:
    """A few numeric columns, one-hot categories and hour bands: what any simple model sees."""
    hour = frame["event_time"].dt.hour
    inputs = {
        "log_amount": np.log(frame["amount"]),
        "log_distance": np.log1p(frame["distance_from_home_km"]),
        "card_present": frame["card_present"].astype(float),
        "new_device": frame["device_id"].str.contains("-dn").astype(float),
    }
    for category in MERCHANT_CATEGORIES:
        inputs[str(category)] = (frame["merchant_category"] == category).astype(float)
    for start in range(0, 24, 3):
        inputs[f"hour_{start}"] = hour.between(start, start + 2).astype(float)
    return pd.DataFrame(inputs)


def test_a_model_trained_before_the_drift_ranks_fraud_after_it_much_worse():
    """Trained on 3 pre-drift days: ROC-AUC ~0.96 on later pre-drift days, ~0.3 after the drift
    (its ranking inverted); a model retrained on post-drift days recovers (~0.89)."""
    params = generator_params(
        rows_per_day=10_000,
        null_rate=0,
        duplicate_rate=0,
        out_of_range_rate=0,
        concept_drift_from=DRIFT_DAY,
    )

    def days(offsets) -> pd.DataFrame:
        return pd.concat(
            generate_transactions(DRIFT_DAY + dt.timedelta(days=k), params) for k in offsets
        )

    def fitted(frame: pd.DataFrame) -> LogisticRegression:
        return LogisticRegression(max_iter=1000).fit(_model_inputs(frame), frame["is_fraud"])

    def auc(model: LogisticRegression, frame: pd.DataFrame) -> float:
        scores = model.predict_proba(_model_inputs(frame))[:, 1]
        return roc_auc_score(frame["is_fraud"], scores)

    pre_train, pre_test = days([-3, -2, -1]), days([-5, -4])
    post_train, post_test = days([0, 1, 2]), days([3, 4])
    pre_model, post_model = fitted(pre_train), fitted(post_train)
    assert auc(pre_model, pre_test) > 0.9
    assert auc(pre_model, post_test) < 0.6
    assert auc(post_model, post_test) > 0.8
