"""Each gate's measurement on data built to pass it and on data built to fail it."""

import numpy as np
import pandas as pd
import pytest

from mlplatform.core import data_gates, feature_gates, model_gates
from mlplatform.core.features import build_features, model_columns
from mlplatform.core.generator import generate_transactions
from mlplatform.core.uncertainty import Interval
from mlplatform.core.validate import validate
from mlplatform_tests.packaged import generated_day, generator_params

DAY = pd.Timestamp("2026-03-02").date()


@pytest.fixture(scope="module")
def validated(card_contract) -> pd.DataFrame:
    return validate(generated_day(DAY), card_contract).validated


@pytest.fixture(scope="module")
def features(card_contract) -> pd.DataFrame:
    days = [generated_day(DAY - pd.Timedelta(days=i).to_pytimedelta()) for i in (1, 0)]
    return build_features(validate(pd.concat(days), card_contract).validated, card_contract)


def test_schema(card_contract, validated):
    assert data_gates.schema_matches_contract(validated, card_contract).passed
    broken = data_gates.schema_matches_contract(validated.drop(columns=["channel"]), card_contract)
    assert not broken.passed and broken.details["missing_columns"] == ["channel"]


def test_not_empty():
    assert data_gates.not_empty(10, 1).passed
    assert not data_gates.not_empty(0, 1).passed


def test_freshness():
    end = pd.Timestamp("2026-03-03", tz="UTC")
    assert data_gates.freshness(end - pd.Timedelta(minutes=5), end, 120).passed
    stale = data_gates.freshness(end - pd.Timedelta(hours=12), end, 120)
    assert not stale.passed and stale.observed == 720
    assert not data_gates.freshness(None, end, 120).passed


def test_volume_band():
    history = {"d1": 1000, "d2": 1100, "d3": 900}
    assert data_gates.volume_in_band(1050, history, 3, 0.5, 2.0).passed
    drop = data_gates.volume_in_band(100, history, 3, 0.5, 2.0)
    assert not drop.passed and drop.observed == 0.1
    assert not data_gates.volume_in_band(2500, history, 3, 0.5, 2.0).passed
    too_little_history = data_gates.volume_in_band(100, {"d1": 1000}, 3, 0.5, 2.0)
    assert too_little_history.passed and "not judged" in too_little_history.summary


def test_quarantine_rate():
    assert data_gates.max_rate("quarantine rate", 0.01, 0.05).passed
    assert not data_gates.max_rate("quarantine rate", 0.2, 0.05).passed


def test_null_rates(card_contract, validated):
    assert data_gates.null_rates(validated, card_contract, 0.02).passed
    holes = validated.copy()
    holes.loc[holes.index[: len(holes) // 10], "merchant_category"] = None
    outcome = data_gates.null_rates(holes, card_contract, 0.02)
    assert not outcome.passed and list(outcome.details["offending_columns"]) == [
        "merchant_category"
    ]


def test_value_ranges(card_contract, validated):
    assert data_gates.value_ranges(validated, card_contract).passed
    broken = validated.copy()
    broken["amount"] = broken["amount"].astype(float)
    broken.loc[broken.index[:3], "amount"] = -1.0
    outcome = data_gates.value_ranges(broken, card_contract)
    assert not outcome.passed and outcome.details["violations_by_column"] == {"amount": 3}


def test_unique_ids(validated):
    assert data_gates.unique_ids(validated, "transaction_id").passed
    doubled = pd.concat([validated, validated.head(2)])
    outcome = data_gates.unique_ids(doubled, "transaction_id")
    assert not outcome.passed and outcome.observed == 2


def test_label_rate(card_contract, validated):
    assert data_gates.label_rate(validated, card_contract, 0.002, 0.05).passed
    shifted = validated.assign(is_fraud=1)
    assert not data_gates.label_rate(shifted, card_contract, 0.002, 0.05).passed


def test_finite_values(features, card_contract):
    categorical, numeric = model_columns(features, card_contract)
    assert feature_gates.finite_values(features, categorical, numeric).passed
    broken = features.copy()
    broken.loc[broken.index[:4], "customer_amount_ratio"] = np.inf
    broken.loc[broken.index[:2], "country"] = None
    outcome = feature_gates.finite_values(broken, categorical, numeric)
    assert not outcome.passed
    assert outcome.details["offending_columns"] == {"customer_amount_ratio": 4, "country": 2}


def test_population_stability_index():
    rng = np.random.default_rng(0)
    reference = rng.normal(0, 1, 20000)
    assert feature_gates.population_stability_index(reference, rng.normal(0, 1, 5000)) < 0.02
    assert feature_gates.population_stability_index(reference, rng.normal(1.5, 1, 5000)) > 0.25


def test_drift(features, card_contract):
    _, numeric = model_columns(features, card_contract)
    today = features["event_time"].dt.date == DAY
    assert feature_gates.drift(features, today, numeric, 0.25, 10).passed
    drifted = features.copy()
    drifted.loc[today, "amount"] *= 4
    outcome = feature_gates.drift(drifted, today, numeric, 0.25, 10)
    assert not outcome.passed and "amount" in outcome.details["drifted_features"]
    first_day = feature_gates.drift(features, features["event_time"].notna(), numeric, 0.25, 10)
    assert first_day.passed and "not judged" in first_day.summary


def test_no_target_leakage(features, card_contract):
    categorical, numeric = model_columns(features, card_contract)
    columns = [*categorical, *numeric]
    today = features["event_time"].dt.date == DAY
    assert feature_gates.no_target_leakage(features, columns, 0.98, today, min_positives=30).passed
    leaking = features.assign(merchant_category=np.where(features["label"] == 1, "x", "y"))
    outcome = feature_gates.no_target_leakage(leaking, columns, 0.98, today, min_positives=30)
    assert not outcome.passed and list(outcome.details["leaking_features"]) == ["merchant_category"]
    # A leak that starts today, while the training split is still clean.
    leaking_today = features.copy()
    leaking_today.loc[today, "distance_from_home_km"] = leaking_today.loc[today, "label"] * 15000.0
    outcome = feature_gates.no_target_leakage(leaking_today, columns, 0.98, today, min_positives=30)
    assert list(outcome.details["leaking_features"]) == ["distance_from_home_km"]


def interval(value: float, low: float, high: float, positives: int = 200) -> Interval:
    return Interval(value, low, high, positives, 10_000, "test")


def test_metric_floor_judges_the_interval():
    assert model_gates.metric_floor("accuracy", interval(0.9, 0.88, 0.92), 0.85, 30).passed
    below = model_gates.metric_floor("accuracy", interval(0.8, 0.78, 0.82), 0.85, 30)
    assert not below.passed and not below.inconclusive
    assert "confidently below" in below.summary
    # The point is below the floor, the interval is not: not a block.
    assert model_gates.metric_floor("accuracy", interval(0.84, 0.80, 0.88), 0.85, 30).passed
    thin = model_gates.metric_floor("accuracy", interval(0.5, 0.2, 0.8, positives=3), 0.85, 30)
    assert thin.inconclusive and not thin.passed
    assert thin.details["positives"] == 3


def test_not_worse_than_champion_is_non_inferiority():
    assert model_gates.non_inferior("pr_auc", None, 0.05, 30).passed
    assert model_gates.non_inferior("pr_auc", interval(-0.02, -0.04, 0.0), 0.05, 30).passed
    assert not model_gates.non_inferior("pr_auc", interval(-0.02, -0.07, 0.03), 0.05, 30).passed
    assert model_gates.non_inferior(
        "pr_auc", interval(0, -0.3, 0.3, positives=5), 0.05, 30
    ).inconclusive


def test_a_clean_many_level_column_does_not_look_like_a_leak(card_contract):
    """A category with many levels, each seen a few times, predicts its own rows' labels when its
    rates are fit on them; judged on rows it was not fit on, it predicts nothing."""
    day = validate(generated_day(DAY, rows_per_day=3000), card_contract).validated
    features = build_features(day, card_contract)
    noise = np.random.default_rng(0).integers(0, 1500, len(features)).astype(str)
    features = features.assign(device_id=noise)
    outcome = feature_gates.no_target_leakage(
        features, ["device_id"], 0.98, features["event_time"].notna(), min_positives=5
    )
    assert outcome.details["single_feature_auc"]["device_id"] < 0.65


def leakage_gate_on_window(card_contract, days: int, incident: str = "none"):
    """The features gates' no_target_leakage on the first `days` partition days of a fresh
    backfill at 5,000 rows a day, judged on the last, with the packaged gate settings."""
    from mlplatform.config.active import GATES, SETTINGS

    first = SETTINGS.partitions.start_date
    window = [first + pd.Timedelta(days=i).to_pytimedelta() for i in range(days)]
    raw = pd.concat([generated_day(day, rows_per_day=5000, incident=incident) for day in window])
    features = build_features(validate(raw, card_contract).validated, card_contract)
    gates = feature_gates.features_gates(features, card_contract, GATES.features, window[-1])
    return gates["no_target_leakage"], GATES.features.no_target_leakage


def test_the_first_days_leakage_gate_does_not_block_clean_data(card_contract):
    """Issue 24: on a fresh backfill's first day (one day of data, ~3,500 training rows, ~30
    positives) a numeric feature was judged on the newer half of the training split alone (4
    positives) and scored 0.9989. Judged on every sampled row, with its interval, it is ~0.6."""
    outcome, gate = leakage_gate_on_window(card_contract, days=1)
    assert gate.blocking
    assert outcome.passed and not outcome.inconclusive, outcome.summary
    assert not outcome.details["leaking_features"]
    table = {row["feature"]: row for row in outcome.details["auc_by_feature"]}
    assert table["distance_from_home_km"]["high"] < 0.9
    assert outcome.details["positives_judged"]["train"] >= gate.min_positives


@pytest.mark.parametrize("days", [1, 7])
def test_a_real_leak_still_blocks_on_one_day_and_on_seven(card_contract, days):
    from mlplatform.checks.common import gate_result

    outcome, gate = leakage_gate_on_window(card_contract, days, incident="leak")
    assert not outcome.passed and not outcome.inconclusive
    assert list(outcome.details["leaking_features"]) == ["distance_from_home_km"]
    assert outcome.details["auc_by_feature"][0]["low"] >= gate.max_single_feature_auc
    result = gate_result("features", "no_target_leakage", gate, outcome)
    import dagster as dg

    assert result.severity == dg.AssetCheckSeverity.ERROR


def test_the_leakage_gate_warns_when_too_few_positives_to_judge(features):
    """A point AUC near 1 on a handful of positives is no evidence: with fewer than
    min_positives in both samples the gate cannot judge, and a blocking gate only warns."""
    import dagster as dg

    from mlplatform.checks.common import gate_result
    from mlplatform.config.active import GATES

    few = features.iloc[np.r_[np.flatnonzero(features["label"] == 1)[:8], np.arange(3000)]]
    few = few[~few.index.duplicated()].sort_values("event_time")
    leaking = few.assign(distance_from_home_km=few["label"] * 15000.0)
    outcome = feature_gates.no_target_leakage(
        leaking, ["distance_from_home_km"], 0.98, leaking["event_time"].notna(), min_positives=500
    )
    assert outcome.inconclusive and not outcome.passed and "cannot judge" in outcome.summary
    gate = GATES.features.no_target_leakage
    assert gate_result("features", "no_target_leakage", gate, outcome).severity == (
        dg.AssetCheckSeverity.WARN
    )


def test_reproduction():
    expected = {"roc_auc": 0.9, "accuracy": 0.99}
    assert model_gates.reproduces(expected, dict(expected), 1e-6).passed
    outcome = model_gates.reproduces(expected, {"roc_auc": 0.8, "accuracy": 0.99}, 1e-6)
    assert not outcome.passed and "roc_auc" in outcome.summary
    assert not model_gates.reproduces(expected, {}, 1e-6).passed


def test_signature():
    assert model_gates.signature_matches(["a", "b"], ["a", "b"]).passed
    outcome = model_gates.signature_matches(["a", "c"], ["a", "b"])
    assert not outcome.passed and "lacks ['b']" in outcome.summary


def test_incidents_are_documented_and_deterministic():
    from mlplatform.core.generator import INCIDENTS

    for incident in INCIDENTS:
        params = generator_params(rows_per_day=2000, incident=incident)
        first = generate_transactions(DAY, params)
        pd.testing.assert_frame_equal(first, generate_transactions(DAY, params))
    with pytest.raises(ValueError, match="unknown incident 'flood'"):
        generated_day(DAY, incident="flood")


def test_no_target_leakage_on_a_sample_sees_the_same(card_contract):
    day = generated_day(DAY, rows_per_day=200_000)
    features = build_features(validate(day, card_contract).validated, card_contract)
    categorical, numeric = model_columns(features, card_contract)
    columns = [*categorical, *numeric]
    today = features["event_time"].notna()
    leaking = features.assign(merchant_category=np.where(features["label"] == 1, "x", "y"))
    every_row = feature_gates.no_target_leakage(leaking, columns, 0.98, today, min_positives=30)
    sampled = feature_gates.no_target_leakage(
        leaking, columns, 0.98, today, sample_rows=50_000, min_positives=30
    )
    assert sampled.details["rows_judged"] == {"train": 50_000, "day": 50_000}
    assert every_row.details["rows_judged"]["day"] == len(features)
    assert list(sampled.details["leaking_features"]) == ["merchant_category"]
    for column, auc in every_row.details["single_feature_auc"].items():
        assert abs(sampled.details["single_feature_auc"][column] - auc) < 0.03, column
    # The same sample every time: the gate's verdict is reproducible.
    again = feature_gates.no_target_leakage(
        leaking, columns, 0.98, today, sample_rows=50_000, min_positives=30
    )
    assert again.details == sampled.details


def test_a_blocking_gate_only_warns_when_the_split_is_too_small_to_judge():
    import dagster as dg

    from mlplatform.checks.common import gate_result
    from mlplatform.config.active import GATES

    floor = GATES.trained_model.roc_auc
    assert floor.blocking
    tiny = model_gates.metric_floor("roc_auc", interval(0.55, 0.2, 0.9, positives=4), floor.min, 30)
    warned = gate_result("trained_model", "roc_auc", floor, tiny)
    assert not warned.passed and warned.severity == dg.AssetCheckSeverity.WARN
    assert warned.metadata["inconclusive"].value is True
    bad = model_gates.metric_floor("roc_auc", interval(0.6, 0.55, 0.65), floor.min, 30)
    blocked = gate_result("trained_model", "roc_auc", floor, bad)
    assert not blocked.passed and blocked.severity == dg.AssetCheckSeverity.ERROR
