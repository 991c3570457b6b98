"""The gates of a trained and of a registered model: metric floors judged on 95% intervals,
non-inferiority against the champion on the same rows, calibration, and the reloaded model
reproducing its metrics and signature; each a `GateOutcome`. `trained_model_gates` gives the
trained model's together, as its check reports them (`gates`: the trained_model section of
quality_gates.yaml, read by mlplatform.config, which core does not import)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlplatform.core.gate_outcome import GateOutcome
from mlplatform.core.uncertainty import Interval

if TYPE_CHECKING:
    from mlplatform.core.calibration import CalibrationReport


def metric_floor(metric: str, interval: Interval, floor: float, min_positives: int) -> GateOutcome:
    """Fails only when the whole 95% interval lies below `floor`; too few positives to judge:
    inconclusive."""
    details = {"interval": [round(interval.low, 6), round(interval.high, 6)],
               "positives": interval.positives, "rows": interval.rows}  # fmt: skip
    if interval.positives < min_positives:
        return GateOutcome(
            False,
            round(interval.value, 6),
            floor,
            f"cannot judge: {interval.describe(metric)}; at least {min_positives} positives "
            f"are needed against the floor {floor}",
            details,
            inconclusive=True,
        )
    below = interval.high < floor
    return GateOutcome(
        not below,
        round(interval.value, 6),
        floor,
        f"{interval.describe(metric)}: "
        + ("confidently below" if below else "not confidently below")
        + f" the floor {floor}",
        details,
    )


def non_inferior(
    metric: str, difference: Interval | None, margin: float, min_positives: int
) -> GateOutcome:
    """The challenger minus the champion on the same rows: passes when the interval's lower end
    lies above -margin (worse by less than `margin` with 95% confidence). No champion: passes."""
    if difference is None:
        return GateOutcome(True, None, -margin, "no champion to compare with")
    details = {"difference_interval": [round(difference.low, 6), round(difference.high, 6)],
               "positives": difference.positives, "margin": margin}  # fmt: skip
    shown = (
        f"challenger - champion {metric} {difference.value:+.4f} "
        f"[{difference.low:+.4f}, {difference.high:+.4f}] on {difference.positives} positives"
    )
    if difference.positives < min_positives:
        return GateOutcome(
            False,
            round(difference.value, 6),
            -margin,
            f"cannot judge: {shown}; at least {min_positives} positives are needed",
            details,
            inconclusive=True,
        )
    passed = difference.low > -margin
    return GateOutcome(
        passed,
        round(difference.value, 6),
        -margin,
        f"{shown}: "
        + ("not worse" if passed else "may be worse")
        + f" than the champion by {margin} or more",
        details,
    )


def reproduces(
    expected: dict[str, float], reproduced: dict[str, float], tolerance: float
) -> GateOutcome:
    differences = {k: abs(expected[k] - reproduced.get(k, float("nan"))) for k in expected}
    off = {k: d for k, d in differences.items() if not d <= tolerance}
    worst = max(differences.values(), default=0.0)
    return GateOutcome(
        passed=not off,
        observed=worst,
        threshold=tolerance,
        summary=(
            f"reloaded model differs on {sorted(off)}"
            if off
            else f"reloaded model reproduces every test metric (max difference {worst:.2g})"
        ),
        details={"expected": expected, "reproduced": reproduced},
    )


def signature_matches(signature_columns: list[str], feature_columns: list[str]) -> GateOutcome:
    missing = [c for c in feature_columns if c not in signature_columns]
    unexpected = [c for c in signature_columns if c not in feature_columns]
    return GateOutcome(
        passed=not missing and not unexpected,
        observed=len(missing) + len(unexpected),
        threshold=0,
        summary=(
            f"signature lacks {missing} and has extra {unexpected}"
            if missing or unexpected
            else "signature inputs are exactly the model's feature columns"
        ),
        details={"signature_columns": signature_columns, "feature_columns": feature_columns},
    )


FLOOR_METRICS = ("accuracy", "roc_auc", "pr_auc", "recall")


def trained_model_gates(
    test_intervals: dict[str, Interval],
    champion_difference: Interval | None,
    gates: Any,
    calibration: CalibrationReport | None,
) -> dict[str, GateOutcome]:
    """The metric floors on the test split's intervals, then non-inferiority against the champion
    on the same rows (`champion_difference` None: there is no champion to compare with), then the
    test split's calibration bins (None: not measured)."""
    from mlplatform.core.calibration import calibration_gate

    outcomes = {
        name: metric_floor(
            name, test_intervals[name], getattr(gates, name).min, getattr(gates, name).min_positives
        )
        for name in FLOOR_METRICS
    }
    rule = gates.not_worse_than_champion
    outcomes["not_worse_than_champion"] = non_inferior(
        rule.metric, champion_difference, rule.margin, rule.min_positives
    )
    outcomes["calibrated"] = calibration_gate(calibration, gates.calibrated.min_positives)
    return outcomes
