from mlplatform.core.promote import decide_promotion


def test_first_model_is_promoted():
    decision = decide_promotion("pr_auc", 0.3, None)
    assert decision.promote and decision.reason == "no champion yet"


def test_better_or_equal_challenger_is_promoted():
    assert decide_promotion("pr_auc", 0.7, 0.6).promote
    assert decide_promotion("pr_auc", 0.6, 0.6).promote


def test_worse_challenger_is_not_promoted():
    decision = decide_promotion("pr_auc", 0.59, 0.6)
    assert not decision.promote
    assert "0.5900 < champion 0.6000" in decision.reason


def test_tolerance_lets_a_slightly_worse_challenger_through():
    assert decide_promotion("roc_auc", 0.595, 0.6, tolerance=0.01).promote
    assert not decide_promotion("roc_auc", 0.58, 0.6, tolerance=0.01).promote
