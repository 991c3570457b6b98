"""Classification metrics at a decision threshold, and the choice of that threshold."""

from __future__ import annotations

import numpy as np

METRIC_NAMES = ("accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc", "balanced_accuracy")


def classification_metrics(
    y_true: np.ndarray, scores: np.ndarray, threshold: float
) -> dict[str, float]:
    from sklearn import metrics

    y_true = np.asarray(y_true)
    predicted = (np.asarray(scores) >= threshold).astype(int)
    return {
        "accuracy": float(metrics.accuracy_score(y_true, predicted)),
        "precision": float(metrics.precision_score(y_true, predicted, zero_division=0)),
        "recall": float(metrics.recall_score(y_true, predicted, zero_division=0)),
        "f1": float(metrics.f1_score(y_true, predicted, zero_division=0)),
        "roc_auc": float(metrics.roc_auc_score(y_true, scores)),
        "pr_auc": float(metrics.average_precision_score(y_true, scores)),
        "balanced_accuracy": float(metrics.balanced_accuracy_score(y_true, predicted)),
    }


def choose_threshold(y_true: np.ndarray, scores: np.ndarray, metric: str = "f1") -> float:
    """The score threshold that maximises `metric` on these (validation) labels.

    Candidates are the distinct scores (capped at 512 quantiles); ties go to the higher
    threshold, which raises fewer alerts. Counts at every candidate come from one sort, not from
    scoring each candidate separately (which took seconds per million rows).
    """
    if metric not in ("f1", "precision", "recall", "balanced_accuracy"):
        raise KeyError(metric)
    positive = np.asarray(y_true).astype(bool)
    scores = np.asarray(scores, dtype=float)
    candidates = np.unique(scores)
    if len(candidates) > 512:
        candidates = np.unique(np.quantile(scores, np.linspace(0, 1, 513)))
    positives, negatives = np.sort(scores[positive]), np.sort(scores[~positive])
    # Rows at or above each candidate, by class.
    true_positive = len(positives) - np.searchsorted(positives, candidates, side="left")
    false_positive = len(negatives) - np.searchsorted(negatives, candidates, side="left")
    false_negative = len(positives) - true_positive
    true_negative = len(negatives) - false_positive
    with np.errstate(divide="ignore", invalid="ignore"):
        values = {
            "f1": 2 * true_positive / (2 * true_positive + false_positive + false_negative),
            "precision": true_positive / (true_positive + false_positive),
            "recall": true_positive / len(positives) if len(positives) else 0 * true_positive,
            "balanced_accuracy": (
                np.divide(true_positive, len(positives)) + np.divide(true_negative, len(negatives))
            )
            / 2,
        }[metric]
    values = np.nan_to_num(np.asarray(values, dtype=float), nan=0.0)
    if not len(values):
        return 0.5
    best = np.flatnonzero(values == values.max())[-1]
    return float(candidates[best])
