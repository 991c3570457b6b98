"""The evaluation plots and tables of a trained model, on data whose answer is known."""

import numpy as np
import pandas as pd
import pytest

from mlplatform.core.evaluation_plots import evaluate_model, png_bytes


@pytest.fixture(scope="module")
def fitted():
    """A model whose one informative column is `signal`; `noise` carries nothing."""
    from mlplatform.core.models import build_model, fit_model, with_decision_threshold

    rng = np.random.default_rng(3)
    rows = 3000
    x = pd.DataFrame(
        {
            "signal": rng.normal(size=rows),
            "noise": rng.normal(size=rows),
            "shop": rng.choice(["a", "b", "c"], rows),
        }
    )
    y = (x["signal"] + rng.normal(scale=0.7, size=rows) > 1.3).astype(int).to_numpy()
    train, validation, test = slice(0, 1800), slice(1800, 2400), slice(2400, rows)
    pipeline = build_model("logistic_regression", ["shop"], ["signal", "noise"], {"C": 1.0}, seed=0)
    fit_model(pipeline, x.iloc[train], y[train])
    model = with_decision_threshold(pipeline, 0.3, x.iloc[validation], y[validation])
    return model, x, y, validation, test


def test_every_plot_is_drawn_and_the_tables_are_the_test_split(fitted):
    model, x, y, validation, test = fitted
    test_scores = model.predict_proba(x.iloc[test])[:, 1]
    evaluation = evaluate_model(
        model, x.iloc[test], y[test], test_scores, y[validation],
        model.predict_proba(x.iloc[validation])[:, 1], 0.3, seed=1,
    )  # fmt: skip
    assert set(evaluation.figures) == {
        "roc_curve.png", "precision_recall_curve.png", "confusion_matrix.png",
        "calibration.png", "score_distribution.png", "permutation_importance.png",
    }  # fmt: skip
    for figure in evaluation.figures.values():
        assert png_bytes(figure).startswith(b"\x89PNG")

    flagged = test_scores >= 0.3
    positive = y[test].astype(bool)
    assert evaluation.confusion == {
        "true_positives": int((flagged & positive).sum()),
        "false_positives": int((flagged & ~positive).sum()),
        "false_negatives": int((~flagged & positive).sum()),
        "true_negatives": int((~flagged & ~positive).sum()),
    }
    assert evaluation.confusion["true_positives"] > 0
    # The model's own decisions are the ones counted.
    assert (model.predict(x.iloc[test]).astype(bool) == flagged).all()

    ranking = [row.feature for row in evaluation.importance]
    assert ranking[0] == "signal"
    assert evaluation.importance[0].importance > 0.1
    noise = next(row for row in evaluation.importance if row.feature == "noise")
    assert abs(noise.importance) < 0.02
    assert evaluation.importance_rows == 600


def test_the_threshold_is_marked_where_it_operates(fitted):
    model, x, y, validation, test = fitted
    test_scores = model.predict_proba(x.iloc[test])[:, 1]
    evaluation = evaluate_model(
        model, x.iloc[test], y[test], test_scores, y[validation],
        model.predict_proba(x.iloc[validation])[:, 1], 0.3, seed=1,
    )  # fmt: skip
    positive, flagged = y[test].astype(bool), test_scores >= 0.3
    recall = (flagged & positive).sum() / positive.sum()
    false_positive_rate = (flagged & ~positive).sum() / (~positive).sum()
    precision = (flagged & positive).sum() / flagged.sum()

    def marker(name):
        (axes,) = evaluation.figures[name].axes
        (point,) = [line for line in axes.lines if line.get_marker() == "o"]
        return tuple(point.get_xydata()[0])

    assert marker("roc_curve.png") == pytest.approx((false_positive_rate, recall))
    assert marker("precision_recall_curve.png") == pytest.approx((recall, precision))


def test_importance_on_a_sample_keeps_the_positives():
    from mlplatform.core.evaluation_plots import _importance_sample

    labels = np.zeros(10_000, dtype=int)
    labels[::100] = 1  # 100 positives
    rows = _importance_sample(labels, 1_000, seed=0)
    assert len(rows) == 1_000 and len(set(rows)) == 1_000
    assert labels[rows].sum() == 100
    assert (rows == _importance_sample(labels, 1_000, seed=0)).all()


def test_a_panel_for_the_dagster_ui_is_drawn_at_its_width_and_leaves_the_figure_alone():
    import struct

    from mlplatform.core.evaluation_plots import (
        PANEL_DPI,
        PANEL_INCHES,
        ImportanceRow,
        importance_figure,
        panel_png,
    )

    rows = [ImportanceRow(f"a_long_feature_name_{i}", 0.01 * i, 0.001) for i in range(8)]
    figure = importance_figure(rows, 5000)
    size_before = tuple(figure.get_size_inches())
    png = panel_png(figure)
    width, height = struct.unpack(">II", png[16:24])
    # Its own size, whatever its labels: the UI shows it unscaled, so its text stays legible.
    assert (width, height) == (PANEL_INCHES[0] * PANEL_DPI, PANEL_INCHES[1] * PANEL_DPI)
    assert tuple(figure.get_size_inches()) == size_before
    assert figure.axes[0].get_title()  # the title logged to MLflow stays on its axes
