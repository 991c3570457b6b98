from collections.abc import Iterator
from typing import Any

import dagster as dg

from mlplatform.checks.common import gate_checks, gate_results
from mlplatform.config.active import GATES
from mlplatform.core import gate_outcome, model_gates
from mlplatform.core.calibration import CalibrationReport
from mlplatform.core.uncertainty import Interval
from mlplatform.stages import carried_out


def judged_model_gates(record: dict[str, Any], gates: Any) -> dict[str, gate_outcome.GateOutcome]:
    """The trained-model gates on what training measured: the test intervals, the paired
    difference with the champion on the same test rows (None without a champion), and the test
    split's calibration bins (None for a model trained before they were measured)."""
    intervals = {name: Interval(**values) for name, values in record["test_intervals"].items()}
    difference = record["champion_comparison"].get("difference")
    calibration = record.get("calibration")
    outcomes = model_gates.trained_model_gates(
        intervals,
        None if difference is None else Interval(**difference),
        gates,
        None if calibration is None else CalibrationReport.from_dict(calibration),
    )
    outcomes["not_worse_than_champion"].details["basis"] = record["champion_comparison"]["basis"]
    return outcomes


@gate_checks(
    "trained_model",
    {
        "accuracy": "Accuracy on the test split, judged on its 95% interval.",
        "roc_auc": "ROC-AUC on the test split, judged on its 95% interval (DeLong).",
        "pr_auc": "PR-AUC (average precision) on the test split, judged on its 95% interval.",
        "recall": "Recall at the chosen decision threshold, judged on its 95% interval.",
        "not_worse_than_champion": (
            "Non-inferiority: not worse than the champion by the margin, with 95% confidence, "
            "on the same test rows."
        ),
        "calibrated": (
            "Probabilities that mean what they say: each quantile bin of test scores predicts a "
            "rate inside its observed rate's 95% interval."
        ),
    },
)
def trained_model_checks(
    context: dg.AssetCheckExecutionContext,
    trained_model: dict[str, Any],
) -> Iterator[dg.AssetCheckResult]:
    with carried_out(context, "checks"):
        gates = GATES.trained_model
        yield from gate_results("trained_model", gates, judged_model_gates(trained_model, gates))
