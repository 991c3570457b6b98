"""The promotion rule: when does a newly registered version take the `champion` alias?"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from mlplatform.core.quality import metric_floor


@dataclass(frozen=True)
class PromotionDecision:
    promote: bool
    reason: str
    metric: str
    challenger_value: float
    champion_value: float | None
    below_floors: tuple[str, ...] = ()


def decide_promotion(
    *,
    verified: bool,
    test_metrics: Mapping[str, float],
    blocking_floors: Mapping[str, float],
    metric: str,
    champion_value: float | None,
    tolerance: float = 0.0,
) -> PromotionDecision:
    """Promote a version that passed its registry checks (`verified`: it reloads and reproduces
    its metrics, its signature is the feature columns), meets every blocking floor of the
    trained-model gates (`blocking_floors`: metric -> minimum, judged as the gates judge them),
    and is at least as good on `metric` as the champion on the same (new) test split, within
    `tolerance`; with no champion (`champion_value` None) the comparison passes.

    The floors are judged again here because registration may run in a later run than the one
    whose checks blocked the model (a re-execution, a click in the UI)."""
    challenger_value = test_metrics[metric]
    below = tuple(
        name
        for name, floor in blocking_floors.items()
        if not metric_floor(name, test_metrics[name], floor).passed
    )

    def decision(promote: bool, reason: str) -> PromotionDecision:
        return PromotionDecision(promote, reason, metric, challenger_value, champion_value, below)

    if below:
        return decision(False, f"below the gate floors for {list(below)}")
    if not verified:
        return decision(False, "failed its registry checks")
    if champion_value is None:
        return decision(True, "no champion yet")
    promote = challenger_value + tolerance >= champion_value
    return decision(
        promote,
        f"challenger {metric} {challenger_value:.4f} {'>=' if promote else '<'} champion "
        f"{champion_value:.4f}" + (f" - tolerance {tolerance}" if tolerance else ""),
    )
