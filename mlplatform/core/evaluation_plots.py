"""What a trained model looks like, not just its numbers: ROC and precision-recall curves with the
chosen threshold marked, the confusion matrix at that threshold, calibration, the score
distribution by class, and permutation importance.

Drawn with scikit-learn's displays (`RocCurveDisplay`, `PrecisionRecallDisplay`,
`ConfusionMatrixDisplay`, `CalibrationDisplay`) on matplotlib's object API: no pyplot state, no GUI
backend, safe in a step that runs beside others. `mlflow.models.evaluate` draws similar plots but
computes SHAP and a dozen extras on every call and marks no threshold; these are the plots a
reviewer of a thresholded classifier needs, from scores the training already has, in well under a
second. Importance is scikit-learn's `permutation_importance` on the raw input columns of the
whole model (encoding included), so it means the same for every model family.
"""

from __future__ import annotations

import io
import textwrap
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

# Calibration bins hold about this many rows each (quantile bins): fewer points, less noise on
# small test splits; at most 10 bins.
ROWS_PER_CALIBRATION_BIN = 100


@dataclass(frozen=True)
class ImportanceRow:
    feature: str
    importance: float  # mean drop in ROC-AUC when the column is shuffled
    spread: float  # its standard deviation over the repeats


@dataclass
class Evaluation:
    """The plots (file name -> figure) and the tables behind them."""

    figures: dict[str, Figure]
    confusion: dict[str, int]  # true/false positives/negatives on the test split at the threshold
    importance: list[ImportanceRow]
    importance_rows: int  # test rows the importance was measured on


def _mark_threshold(ax: Any, x: float, y: float, threshold: float) -> None:
    ax.plot([x], [y], marker="o", markersize=8, color="black", zorder=5)
    ax.annotate(f"threshold {threshold:.3g}", (x, y), xytext=(8, -14), textcoords="offset points")


def _at_threshold(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, int]:
    positive, flagged = labels.astype(bool), scores >= threshold
    return {
        "true_positives": int((positive & flagged).sum()),
        "false_positives": int((~positive & flagged).sum()),
        "false_negatives": int((positive & ~flagged).sum()),
        "true_negatives": int((~positive & ~flagged).sum()),
    }


def roc_figure(splits: dict[str, tuple[np.ndarray, np.ndarray]], threshold: float) -> Figure:
    from matplotlib.figure import Figure
    from sklearn.metrics import RocCurveDisplay

    figure = Figure(figsize=(5, 4.5))
    ax = figure.subplots()
    for name, (labels, scores) in splits.items():
        RocCurveDisplay.from_predictions(
            labels, scores, name=name, ax=ax, plot_chance_level=name == "test"
        )
    labels, scores = splits["test"]
    counts = _at_threshold(labels, scores, threshold)
    negatives = counts["false_positives"] + counts["true_negatives"]
    positives = counts["true_positives"] + counts["false_negatives"]
    _mark_threshold(
        ax, counts["false_positives"] / max(negatives, 1),
        counts["true_positives"] / max(positives, 1), threshold,
    )  # fmt: skip
    ax.set_title("ROC curve")
    return figure


def precision_recall_figure(
    splits: dict[str, tuple[np.ndarray, np.ndarray]], threshold: float
) -> Figure:
    from matplotlib.figure import Figure
    from sklearn.metrics import PrecisionRecallDisplay

    figure = Figure(figsize=(5, 4.5))
    ax = figure.subplots()
    for name, (labels, scores) in splits.items():
        PrecisionRecallDisplay.from_predictions(
            labels, scores, name=name, ax=ax, plot_chance_level=name == "test"
        )
    counts = _at_threshold(*splits["test"], threshold)
    flagged = counts["true_positives"] + counts["false_positives"]
    positives = counts["true_positives"] + counts["false_negatives"]
    _mark_threshold(
        ax, counts["true_positives"] / max(positives, 1),
        counts["true_positives"] / flagged if flagged else 1.0, threshold,
    )  # fmt: skip
    ax.set_title("Precision-recall curve")
    return figure


def confusion_figure(labels: np.ndarray, scores: np.ndarray, threshold: float) -> Figure:
    from matplotlib.figure import Figure
    from sklearn.metrics import ConfusionMatrixDisplay

    figure = Figure(figsize=(4.5, 4))
    ax = figure.subplots()
    ConfusionMatrixDisplay.from_predictions(
        labels.astype(int),
        (scores >= threshold).astype(int),
        labels=[0, 1],
        display_labels=["negative", "positive"],
        ax=ax,
        colorbar=False,
    )
    ax.set_title(f"Test split at threshold {threshold:.3g}")
    return figure


def calibration_figure(labels: np.ndarray, scores: np.ndarray) -> Figure:
    from matplotlib.figure import Figure
    from sklearn.calibration import CalibrationDisplay

    figure = Figure(figsize=(5, 4.5))
    ax = figure.subplots()
    bins = int(np.clip(len(labels) // ROWS_PER_CALIBRATION_BIN, 2, 10))
    CalibrationDisplay.from_predictions(
        labels, scores, n_bins=bins, strategy="quantile", name="test", ax=ax
    )
    ax.set_title(f"Calibration ({bins} quantile bins)")
    return figure


def score_distribution_figure(labels: np.ndarray, scores: np.ndarray, threshold: float) -> Figure:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5, 4))
    ax = figure.subplots()
    edges = np.linspace(0.0, 1.0, 41)
    positive = labels.astype(bool)
    # Densities: the classes differ in size by orders of magnitude; counts would hide one.
    for mask, name in ((~positive, "negative"), (positive, "positive")):
        ax.hist(scores[mask], bins=edges, density=True, alpha=0.55, label=f"{name} ({mask.sum()})")
    ax.axvline(threshold, color="black", linestyle="--", label=f"threshold {threshold:.3g}")
    ax.set_xlabel("score")
    ax.set_ylabel("density")
    ax.set_title("Test scores by class")
    ax.legend()
    return figure


def permutation_importance_rows(
    model: Any,
    x: pd.DataFrame,
    labels: np.ndarray,
    *,
    seed: int,
    repeats: int,
    max_rows: int,
) -> tuple[list[ImportanceRow], int]:
    """Drop in ROC-AUC when each input column is shuffled, on at most `max_rows` rows (every
    positive kept where it fits, so a rare class still has a ranking to lose), most important
    first."""
    from sklearn.inspection import permutation_importance

    rows = _importance_sample(labels, max_rows, seed)
    result = permutation_importance(
        model, x.iloc[rows], labels[rows], scoring="roc_auc", n_repeats=repeats,
        random_state=seed, n_jobs=1,
    )  # fmt: skip
    table = [
        ImportanceRow(str(column), float(mean), float(std))
        for column, mean, std in zip(
            x.columns, result.importances_mean, result.importances_std, strict=True
        )
    ]
    return sorted(table, key=lambda row: -row.importance), len(rows)


def _importance_sample(labels: np.ndarray, max_rows: int, seed: int) -> np.ndarray:
    if len(labels) <= max_rows:
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    positive = np.flatnonzero(labels.astype(bool))
    negative = np.flatnonzero(~labels.astype(bool))
    keep_positive = rng.choice(positive, min(len(positive), max_rows // 2), replace=False)
    keep_negative = rng.choice(negative, max_rows - len(keep_positive), replace=False)
    return np.sort(np.concatenate([keep_positive, keep_negative]))


def importance_figure(rows: list[ImportanceRow], sample_rows: int) -> Figure:
    from matplotlib.figure import Figure

    shown = rows[:20][::-1]
    figure = Figure(figsize=(6, max(3.0, 0.35 * len(shown) + 1.5)))
    ax = figure.subplots()
    ax.barh(
        [row.feature for row in shown],
        [row.importance for row in shown],
        xerr=[row.spread for row in shown],
    )
    ax.axvline(0, color="grey", linewidth=0.8)
    ax.set_xlabel("drop in ROC-AUC when shuffled")
    ax.set_title(f"Permutation importance ({sample_rows} test rows)")
    figure.tight_layout()
    return figure


def evaluate_model(
    model: Any,
    x_test: pd.DataFrame,
    y_test: np.ndarray,
    test_scores: np.ndarray,
    y_validation: np.ndarray,
    validation_scores: np.ndarray,
    threshold: float,
    *,
    seed: int,
    importance_repeats: int = 5,
    importance_max_rows: int = 5_000,
) -> Evaluation:
    """Every plot of one trained model, from scores the training already computed (the model
    itself is called only for permutation importance)."""
    y_test, y_validation = np.asarray(y_test), np.asarray(y_validation)
    test_scores, validation_scores = np.asarray(test_scores), np.asarray(validation_scores)
    splits = {"validation": (y_validation, validation_scores), "test": (y_test, test_scores)}
    importance, sample_rows = permutation_importance_rows(
        model, x_test, y_test, seed=seed, repeats=importance_repeats, max_rows=importance_max_rows
    )
    figures = {
        "roc_curve.png": roc_figure(splits, threshold),
        "precision_recall_curve.png": precision_recall_figure(splits, threshold),
        "confusion_matrix.png": confusion_figure(y_test, test_scores, threshold),
        "calibration.png": calibration_figure(y_test, test_scores),
        "score_distribution.png": score_distribution_figure(y_test, test_scores, threshold),
        "permutation_importance.png": importance_figure(importance, sample_rows),
    }
    return Evaluation(
        figures=figures,
        confusion=_at_threshold(y_test, test_scores, threshold),
        importance=importance,
        importance_rows=sample_rows,
    )


def png_bytes(figure: Figure, dpi: int = 80, *, tight: bool = True) -> bytes:
    """PNG of `figure`; `tight` trims (or grows) it to what is drawn, else it keeps its size."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight" if tight else None)
    return buffer.getvalue()


# The Dagster UI shows Markdown metadata in a dialog about 360 px wide, at the image's own size:
# a plot drawn for it at that width, its text at sizes that stay legible there.
PANEL_INCHES = (3.6, 3.0)
PANEL_DPI = 100
_PANEL_POINTS = {"title": 10.0, "label": 8.5, "ticks": 8.5, "legend": 7.5}
_PANEL_TITLE_CHARACTERS = 48


def panel_png(figure: Figure) -> bytes:
    """`figure` as a PNG for the Dagster UI's metadata dialog (a copy: the figure logged to MLflow
    keeps its size)."""
    import pickle

    panel = pickle.loads(pickle.dumps(figure))  # our own figure, copied in this process
    panel.set_size_inches(*PANEL_INCHES)
    # Long labels (importance's feature names) fit inside the panel instead of widening it.
    panel.set_layout_engine("constrained")
    for ax in panel.axes:
        # Over the whole panel, not the axes (which long tick labels push right), wrapped.
        title = textwrap.fill(ax.get_title(), _PANEL_TITLE_CHARACTERS)
        ax.set_title("")
        panel.suptitle(title, fontsize=_PANEL_POINTS["title"])
        ax.xaxis.label.set_fontsize(_PANEL_POINTS["label"])
        ax.yaxis.label.set_fontsize(_PANEL_POINTS["label"])
        ax.tick_params(labelsize=_PANEL_POINTS["ticks"])
        legend = ax.get_legend()
        if legend is not None:
            for text in legend.get_texts():
                text.set_fontsize(_PANEL_POINTS["legend"])
    return png_bytes(panel, dpi=PANEL_DPI, tight=False)
