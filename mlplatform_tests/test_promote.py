"""The promotion rule on its own: floors judged on intervals, registry checks, and non-inferiority
against the champion on the same rows."""

import numpy as np

from mlplatform.core import gate_outcome, model_gates
from mlplatform.core.promote import decide_promotion
from mlplatform.core.uncertainty import Interval, paired_difference


def interval(value: float, low: float, high: float, positives: int = 200) -> Interval:
    return Interval(value, low, high, positives, 10_000, "test")


def floors(**values: Interval) -> dict[str, gate_outcome.GateOutcome]:
    return {name: model_gates.metric_floor(name, i, 0.85, 30) for name, i in values.items()}


GOOD_FLOORS = floors(roc_auc=interval(0.95, 0.93, 0.97), accuracy=interval(0.97, 0.96, 0.98))
NOT_WORSE = model_gates.non_inferior("roc_auc", interval(0.002, -0.006, 0.010), 0.02, 30)


def test_no_champion_yet_promotes():
    no_champion = model_gates.non_inferior("roc_auc", None, 0.02, 30)
    decision = decide_promotion(
        verified=True, blocking_floors=GOOD_FLOORS, comparison=no_champion, has_champion=False
    )
    assert decision.promote and decision.reason == "no champion yet"


def test_not_worse_than_the_champion_promotes_with_the_interval_in_the_reason():
    decision = decide_promotion(
        verified=True, blocking_floors=GOOD_FLOORS, comparison=NOT_WORSE, has_champion=True
    )
    assert decision.promote
    assert "[-0.0060, +0.0100]" in decision.reason


def test_possibly_worse_than_the_champion_keeps_the_champion():
    worse = model_gates.non_inferior("roc_auc", interval(-0.01, -0.03, 0.01), 0.02, 30)
    assert not worse.passed and not worse.inconclusive
    decision = decide_promotion(
        verified=True, blocking_floors=GOOD_FLOORS, comparison=worse, has_champion=True
    )
    assert not decision.promote and decision.reason.startswith("champion kept")


def test_confidently_below_a_blocking_floor_is_not_promoted():
    below = floors(roc_auc=interval(0.80, 0.78, 0.82))
    decision = decide_promotion(
        verified=True, blocking_floors=below, comparison=NOT_WORSE, has_champion=True
    )
    assert not decision.promote
    assert decision.reason == "below the gate floors for ['roc_auc']"
    assert decision.below_floors == ("roc_auc",)


def test_a_point_below_the_floor_inside_its_interval_does_not_block():
    straddling = floors(roc_auc=interval(0.84, 0.80, 0.88))
    assert straddling["roc_auc"].passed
    assert decide_promotion(
        verified=True, blocking_floors=straddling, comparison=NOT_WORSE, has_champion=True
    ).promote


def test_a_floor_too_thin_to_judge_warns_and_does_not_hold_back():
    thin = floors(roc_auc=interval(0.60, 0.40, 0.80, positives=5))
    assert thin["roc_auc"].inconclusive and "cannot judge" in thin["roc_auc"].summary
    assert decide_promotion(
        verified=True, blocking_floors=thin, comparison=NOT_WORSE, has_champion=False
    ).promote


def test_a_comparison_too_thin_to_judge_keeps_the_champion():
    thin = model_gates.non_inferior("roc_auc", interval(0.05, -0.2, 0.3, positives=4), 0.02, 30)
    assert thin.inconclusive
    decision = decide_promotion(
        verified=True, blocking_floors=GOOD_FLOORS, comparison=thin, has_champion=True
    )
    assert not decision.promote and "cannot judge" in decision.reason


def test_failed_registry_checks_are_not_promoted():
    decision = decide_promotion(
        verified=False, blocking_floors=GOOD_FLOORS, comparison=NOT_WORSE, has_champion=True
    )
    assert not decision.promote and decision.reason == "failed its registry checks"


def test_a_floor_is_reported_before_the_registry_checks():
    below = floors(accuracy=interval(0.5, 0.45, 0.55))
    decision = decide_promotion(
        verified=False, blocking_floors=below, comparison=NOT_WORSE, has_champion=True
    )
    assert decision.reason == "below the gate floors for ['accuracy']"


def test_a_challenger_better_by_noise_alone_does_not_displace_the_champion():
    """Two models of the same quality: the challenger's scores are the champion's plus noise, and
    on this sample it happens to score higher. Its lead is within noise, the paired interval
    reaches below -margin: the champion stays."""
    rng = np.random.default_rng(3)
    labels = (rng.random(3000) < 0.02).astype(int)
    signal = labels * 1.5 + rng.normal(0, 1, len(labels))
    champion = signal + rng.normal(0, 0.8, len(labels))
    lucky = None
    for seed in range(40):
        challenger = signal + np.random.default_rng(seed).normal(0, 0.8, len(labels))
        difference = paired_difference(
            labels, challenger, champion, "roc_auc", threshold_challenger=0.5,
            threshold_champion=0.5, seed=1, resamples=100,
        )  # fmt: skip
        if difference.value > 0:
            lucky = difference
            break
    assert lucky is not None and lucky.value > 0
    comparison = model_gates.non_inferior("roc_auc", lucky, 0.01, 30)
    assert not comparison.passed
    assert not decide_promotion(
        verified=True, blocking_floors=GOOD_FLOORS, comparison=comparison, has_champion=True
    ).promote


def test_the_promotion_reason_says_each_thing_once():
    from mlplatform.assets.registered_model_version import why_promoted
    from mlplatform.core.promote import PromotionDecision

    first = PromotionDecision(True, "no champion yet")
    assert why_promoted(first, {"basis": "no champion yet"}) == "no champion yet"
    kept = PromotionDecision(False, "champion kept: may be worse")
    assert why_promoted(kept, {"basis": "champion v1 on the new test split"}) == (
        "champion kept: may be worse (champion v1 on the new test split)"
    )
