import pytest

from mlplatform.core.promote import decide_promotion

# The trained-model gates' blocking floors as quality_gates.yaml ships them (recall only warns).
FLOORS = {"accuracy": 0.85, "roc_auc": 0.85, "pr_auc": 0.30}
GOOD = {"accuracy": 0.97, "roc_auc": 0.93, "pr_auc": 0.62, "recall": 0.70}


def decide(metric, challenger, champion, tolerance=0.0, *, verified=True, floors=None, **metrics):
    """The decision on the comparison alone unless floors are given."""
    return decide_promotion(
        verified=verified,
        test_metrics={**GOOD, metric: challenger, **metrics},
        blocking_floors=floors or {},
        metric=metric,
        champion_value=champion,
        tolerance=tolerance,
    )


def test_first_model_is_promoted():
    decision = decide("pr_auc", 0.3, None)
    assert decision.promote and decision.reason == "no champion yet"


def test_better_or_equal_challenger_is_promoted():
    assert decide("pr_auc", 0.7, 0.6).promote
    assert decide("pr_auc", 0.6, 0.6).promote
    assert decide("pr_auc", 0.7, 0.6).reason == "challenger pr_auc 0.7000 >= champion 0.6000"


def test_worse_challenger_is_not_promoted():
    decision = decide("pr_auc", 0.59, 0.6)
    assert not decision.promote
    assert "0.5900 < champion 0.6000" in decision.reason


def test_tolerance_lets_a_slightly_worse_challenger_through():
    assert decide("roc_auc", 0.595, 0.6, tolerance=0.01).promote
    assert not decide("roc_auc", 0.58, 0.6, tolerance=0.01).promote
    assert decide("roc_auc", 0.595, 0.6, tolerance=0.01).reason.endswith(" - tolerance 0.01")


def test_every_floor_met_leaves_the_comparison_to_decide():
    decision = decide("pr_auc", 0.62, 0.5, floors=FLOORS)
    assert decision.promote and decision.below_floors == ()
    # A floor is met at exactly its minimum, as the gate judges it.
    assert decide("pr_auc", 0.30, None, floors=FLOORS).promote


@pytest.mark.parametrize("champion", [None, 0.1])
def test_below_a_blocking_floor_is_never_promoted(champion):
    # Better than the champion, or no champion at all: the floor still wins.
    decision = decide("pr_auc", 0.62, champion, floors=FLOORS, accuracy=0.80)
    assert not decision.promote
    assert decision.reason == "below the gate floors for ['accuracy']"
    assert decision.below_floors == ("accuracy",)


def test_every_floor_missed_is_named_in_the_gates_order():
    decision = decide("pr_auc", 0.2, None, floors=FLOORS, accuracy=0.5, roc_auc=0.6)
    assert decision.reason == "below the gate floors for ['accuracy', 'roc_auc', 'pr_auc']"


def test_a_floor_that_only_warns_is_not_applied():
    # recall is a WARN gate: not among the blocking floors, so a low recall does not block.
    assert decide("pr_auc", 0.62, 0.5, floors=FLOORS, recall=0.1).promote


@pytest.mark.parametrize("champion", [None, 0.1])
def test_failed_registry_checks_are_never_promoted(champion):
    decision = decide("pr_auc", 0.62, champion, verified=False, floors=FLOORS)
    assert not decision.promote
    assert decision.reason == "failed its registry checks"


def test_a_missed_floor_is_the_reason_before_failed_registry_checks():
    decision = decide("pr_auc", 0.62, None, verified=False, floors=FLOORS, roc_auc=0.5)
    assert not decision.promote
    assert decision.reason == "below the gate floors for ['roc_auc']"
