"""The promotion rule: when does a newly trained model take the `champion` alias?"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PromotionDecision:
    promote: bool
    reason: str
    metric: str
    challenger_value: float
    champion_value: float | None


def decide_promotion(
    metric: str,
    challenger_value: float,
    champion_value: float | None,
    tolerance: float = 0.0,
) -> PromotionDecision:
    """Promote when there is no champion, or the challenger is at least as good as the champion
    on the same (new) test split, within `tolerance`."""
    if champion_value is None:
        return PromotionDecision(True, "no champion yet", metric, challenger_value, None)
    if challenger_value + tolerance >= champion_value:
        return PromotionDecision(
            True,
            f"challenger {metric} {challenger_value:.4f} >= champion {champion_value:.4f}"
            + (f" - tolerance {tolerance}" if tolerance else ""),
            metric,
            challenger_value,
            champion_value,
        )
    return PromotionDecision(
        False,
        f"challenger {metric} {challenger_value:.4f} < champion {champion_value:.4f}"
        + (f" - tolerance {tolerance}" if tolerance else ""),
        metric,
        challenger_value,
        champion_value,
    )
