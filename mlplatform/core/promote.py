"""The promotion rule: when does a newly registered version take the `champion` alias? And the
evidence it weighs: the challenger against the champion on the same test rows."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlplatform.core.gate_outcome import GateOutcome


@dataclass(frozen=True)
class PromotionDecision:
    promote: bool
    reason: str
    below_floors: tuple[str, ...] = ()


def decide_promotion(
    *,
    verified: bool,
    blocking_floors: Mapping[str, GateOutcome],
    comparison: GateOutcome,
    has_champion: bool,
) -> PromotionDecision:
    """Promote a version that passed its registry checks (`verified`: it reloads and reproduces
    its metrics, its signature is the feature columns), is not confidently below any blocking
    floor of the trained-model gates (`blocking_floors`, as those gates judged them: a floor that
    could not be judged for lack of positives does not hold it back) and, when there is a
    champion, was shown not worse than it (`comparison`, the non-inferiority gate on the same test
    rows: a comparison too thin to judge keeps the champion).

    The floors are passed in again because registration may run in a later run than the one whose
    checks blocked the model (a re-execution, a click in the UI)."""
    below = tuple(
        name
        for name, outcome in blocking_floors.items()
        if not outcome.passed and not outcome.inconclusive
    )
    if below:
        return PromotionDecision(False, f"below the gate floors for {list(below)}", below)
    if not verified:
        return PromotionDecision(False, "failed its registry checks")
    if not has_champion:
        return PromotionDecision(True, "no champion yet")
    if comparison.inconclusive:
        return PromotionDecision(False, f"champion kept: {comparison.summary}")
    if comparison.passed:
        return PromotionDecision(True, comparison.summary)
    return PromotionDecision(False, f"champion kept: {comparison.summary}")


def champion_comparison(
    labels: Any,
    challenger_scores: Any,
    challenger_threshold: float,
    champion_scores: Any,
    champion_threshold: float,
    champion_version: str,
    metric: str,
    *,
    seed: int,
    resamples: int,
) -> dict[str, Any]:
    """The challenger against the champion on the same test rows, as the trained model records
    it: the paired difference challenger - champion on `metric` with its 95% interval (what the
    non-inferiority gate judges), and the champion's own interval and metrics there."""
    from mlplatform.core.evaluate import classification_metrics
    from mlplatform.core.uncertainty import metric_interval, paired_difference

    difference = paired_difference(
        labels, challenger_scores, champion_scores, metric,
        threshold_challenger=challenger_threshold, threshold_champion=champion_threshold,
        seed=seed, resamples=resamples,
    )  # fmt: skip
    return {
        "champion_version": champion_version,
        "basis": f"champion v{champion_version} on the new test split",
        "metric": metric,
        "difference": difference.to_dict(),
        "champion_interval": metric_interval(
            labels, champion_scores, champion_threshold, metric, seed=seed, resamples=resamples
        ).to_dict(),
        "champion_metrics": classification_metrics(labels, champion_scores, champion_threshold),
    }
