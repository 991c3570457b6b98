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

    Candidates are the distinct scores (capped at 512 quantiles for speed); ties go to the higher
    threshold, which raises fewer alerts.
    """
    from sklearn import metrics

    y_true = np.asarray(y_true)
    scores = np.asarray(scores)
    candidates = np.unique(scores)
    if len(candidates) > 512:
        candidates = np.unique(np.quantile(scores, np.linspace(0, 1, 513)))
    scorer = {
        "f1": lambda p: metrics.f1_score(y_true, p, zero_division=0),
        "precision": lambda p: metrics.precision_score(y_true, p, zero_division=0),
        "recall": lambda p: metrics.recall_score(y_true, p, zero_division=0),
        "balanced_accuracy": lambda p: metrics.balanced_accuracy_score(y_true, p),
    }[metric]
    best_threshold, best_value = 0.5, -np.inf
    for threshold in candidates:
        value = scorer((scores >= threshold).astype(int))
        if value >= best_value:
            best_threshold, best_value = float(threshold), value
    return best_threshold
