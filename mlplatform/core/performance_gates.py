"""The judgments of a scored day's performance, each a `GateOutcome`: realized down from the model's
own backtest (`down_from_backtest`), realized outside the estimate's range (`estimate_gap`), and
the day's scores drifting from the reference scores (`score_drift`). Below a floor with
confidence is `model_gates.metric_floor`, which fits exactly."""

from __future__ import annotations

import numpy as np

from mlplatform.core.feature_gates import population_stability_index
from mlplatform.core.gate_outcome import GateOutcome
from mlplatform.core.uncertainty import Interval, _z


def _cannot_judge(threshold: object, summary: str, details: dict | None = None) -> GateOutcome:
    return GateOutcome(False, None, threshold, summary, details or {}, inconclusive=True)


def down_from_backtest(
    metric: str,
    realized: Interval | None,
    backtest: Interval,
    margin: float,
    min_positives: int,
    confidence: float = 0.95,
) -> GateOutcome:
    """Fails when the realized metric is below the model's own backtest (its test split at
    training) by more than `margin` with confidence: the upper end of the interval of
    realized - backtest lies below -margin.

    The two rest on different rows, so the difference is unpaired: its standard error combines the
    two estimates' errors, each read from its interval on the side facing the other (the realized
    interval's upper half, the backtest's lower half; asymmetric bootstrap intervals stay honest).
    Inconclusive without a realized figure or with fewer than `min_positives` positives in either.
    """
    if realized is None:
        return _cannot_judge(-margin, f"cannot judge: no realized {metric} yet")
    details = {"realized": realized.to_dict(), "backtest": backtest.to_dict(), "margin": margin}
    fewest = min(realized.positives, backtest.positives)
    if fewest < min_positives:
        return _cannot_judge(
            -margin,
            f"cannot judge: realized {realized.describe(metric)} against backtest "
            f"{backtest.value:.4f}; at least {min_positives} positives are needed in each",
            details,
        )
    z = _z(confidence)
    spread = np.hypot((realized.high - realized.value) / z, (backtest.value - backtest.low) / z)
    difference = realized.value - backtest.value
    low, high = difference - z * spread, difference + z * spread
    details["difference_interval"] = [round(low, 6), round(high, 6)]
    down = high < -margin
    return GateOutcome(
        not down,
        round(difference, 6),
        -margin,
        f"realized - backtest {metric} {difference:+.4f} [{low:+.4f}, {high:+.4f}] "
        f"(realized {realized.value:.4f} on {realized.positives} positives, backtest "
        f"{backtest.value:.4f} on {backtest.positives}): "
        + ("confidently" if down else "not confidently")
        + f" down by more than {margin}",
        details,
    )


def estimate_gap(
    metric: str,
    realized: Interval | None,
    estimated: Interval | None,
    tolerance: float,
    min_positives: int,
) -> GateOutcome:
    """Fails when the realized metric lies outside the estimate's interval widened by `tolerance`
    on each side: the estimate missed (concept drift, or calibration lost), in either direction.

    The estimate's interval already is where the realized metric falls 95% of the time if the
    probabilities are calibrated (it holds the realized figure's sampling noise), so the realized
    point is judged against it, not the realized interval (that would count the same noise
    twice). An estimate made on more rows than the realized figure rests on (all of a day's scored
    rows, outcomes still arriving) has its interval widened by sqrt(estimated rows / realized
    rows), as that noise grows on fewer rows. Inconclusive with fewer than `min_positives`
    realized positives or without either figure."""
    if realized is None or estimated is None:
        missing = "realized" if realized is None else "estimated"
        return _cannot_judge(tolerance, f"cannot judge: no {missing} {metric}")
    details = {"realized": realized.to_dict(), "estimated": estimated.to_dict()}
    if realized.positives < min_positives:
        return _cannot_judge(
            tolerance,
            f"cannot judge: realized {realized.describe(metric)}; at least {min_positives} "
            "positives are needed",
            details,
        )
    widen = float(np.sqrt(estimated.rows / realized.rows)) if realized.rows else 1.0
    low = estimated.value - (estimated.value - estimated.low) * widen - tolerance
    high = estimated.value + (estimated.high - estimated.value) * widen + tolerance
    details.update(range=[round(low, 6), round(high, 6)], tolerance=tolerance, widened=widen)
    side = "below" if realized.value < low else "above" if realized.value > high else "within"
    return GateOutcome(
        side == "within",
        round(realized.value, 6),
        [round(low, 6), round(high, 6)],
        f"realized {metric} {realized.value:.4f} lies {side} the estimate's range "
        f"[{low:.4f}, {high:.4f}] (estimate {estimated.value:.4f}, tolerance {tolerance})"
        + ("" if side == "within" else ": the estimate missed (concept drift or lost calibration)"),
        details,
    )


def score_drift(
    reference_scores: np.ndarray, current_scores: np.ndarray, max_psi: float, bins: int = 10
) -> GateOutcome:
    """PSI of the day's scores against reference scores (the backtest's, or earlier days'):
    fails above `max_psi`. Nothing to compare with: passes, not judged."""
    reference = np.asarray(reference_scores, dtype=float)
    current = np.asarray(current_scores, dtype=float)
    if not len(reference) or not len(current):
        return GateOutcome(True, None, max_psi, "no scores to compare: not judged yet")
    psi = population_stability_index(reference, current, bins)
    return GateOutcome(
        psi <= max_psi,
        round(psi, 4),
        max_psi,
        f"score PSI {psi:.3f} (limit {max_psi})",
        {
            "reference_rows": len(reference),
            "current_rows": len(current),
            "reference_mean_score": round(float(reference.mean()), 6),
            "current_mean_score": round(float(current.mean()), 6),
        },
    )
