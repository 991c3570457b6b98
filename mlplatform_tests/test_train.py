import datetime as dt

import numpy as np
import pandas as pd
import pytest

from mlplatform.config.settings import load_settings
from mlplatform.core.evaluate import choose_threshold, classification_metrics
from mlplatform.core.features import build_features, model_columns
from mlplatform.core.generator import GeneratorParams, generate_transactions
from mlplatform.core.train import train_model
from mlplatform.core.validate import validate
from mlplatform_tests.packaged import (
    bootstrap_resamples,
    calibration,
    search_plan,
    threshold_metric,
)

# Half the default generator's 50,000 rows a day: the model search samples the same rows either
# way (every positive, a fixed number of negatives), and the training split stays over the soft
# vote's row limit, as at the default size (the test below trains on a window under it).
ROWS_PER_DAY = 25_000


@pytest.fixture(scope="module")
def week_of_features(card_contract):
    """Seven days of the default generator, as the default settings train on them (at
    ROWS_PER_DAY rows a day)."""
    defaults = load_settings(environ={})
    params = GeneratorParams(
        **{**defaults.data_source.generator.model_dump(), "rows_per_day": ROWS_PER_DAY}
    )
    raw = pd.concat(generate_transactions(dt.date(2026, 3, d), params) for d in range(1, 8))
    return build_features(validate(raw, card_contract).validated, card_contract)


@pytest.mark.slow  # the packaged search on a week of 25,000-row days
def test_default_generator_trains_a_good_model(week_of_features, card_contract):
    categorical, numeric = model_columns(week_of_features, card_contract)
    # The packaged search, bounded by its trials: a time budget would make the result depend on
    # how loaded the machine is.
    plan = search_plan(time_budget_seconds=3600)
    assert (week_of_features["split"] == "train").sum() > plan.soft_vote_max_training_rows
    result = train_model(
        week_of_features, categorical, numeric, plan, threshold_metric(), bootstrap_resamples(),
        calibration(),
    )  # fmt: skip
    assert result.test_metrics["roc_auc"] >= 0.90
    assert result.test_metrics["accuracy"] >= 0.85
    assert result.test_metrics["pr_auc"] > 5 * result.test_positive_rate
    assert set(result.test_metrics) == {
        "accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc", "balanced_accuracy",
    }  # fmt: skip


def test_a_small_window_of_generated_data_trains_a_good_model_with_the_soft_vote_a_candidate(
    card_contract,
):
    """A week of 5,000-row days (a backfill's size): the training split is under the soft vote's
    row limit, so the vote is among the candidates, and whichever wins clears the gates."""
    params = GeneratorParams(
        **{**load_settings(environ={}).data_source.generator.model_dump(), "rows_per_day": 5000}
    )
    raw = pd.concat(generate_transactions(dt.date(2026, 3, d), params) for d in range(1, 8))
    features = build_features(validate(raw, card_contract).validated, card_contract)
    categorical, numeric = model_columns(features, card_contract)
    plan = search_plan(time_budget_seconds=3600)
    assert (features["split"] == "train").sum() <= plan.soft_vote_max_training_rows
    result = train_model(
        features, categorical, numeric, plan, threshold_metric(), bootstrap_resamples(),
        calibration(),
    )  # fmt: skip
    assert "soft_vote" in result.selection.candidates
    assert result.families == result.selection.winner.families
    assert result.test_metrics["roc_auc"] >= 0.90
    assert result.test_metrics["accuracy"] >= 0.85
    # The threshold the model applies itself is the one chosen on validation.
    x_test = features.loc[features["split"] == "test", result.input_columns]
    flagged = result.model.predict(x_test)
    assert np.array_equal(flagged, (result.test_scores >= result.threshold).astype(int))


def test_threshold_maximises_the_metric_on_validation():
    y = np.array([0, 0, 0, 1, 1])
    scores = np.array([0.1, 0.2, 0.6, 0.7, 0.9])
    threshold = choose_threshold(y, scores, "f1")
    assert threshold == pytest.approx(0.7)
    assert classification_metrics(y, scores, threshold)["f1"] == 1.0


def test_a_split_with_one_class_is_refused(week_of_features, card_contract):
    categorical, numeric = model_columns(week_of_features, card_contract)
    no_positives_in_test = week_of_features.copy()
    no_positives_in_test.loc[no_positives_in_test["split"] == "test", "label"] = 0
    with pytest.raises(ValueError, match="test split .* only one class"):
        train_model(
            no_positives_in_test, categorical, numeric, search_plan(trials_per_family=1),
            threshold_metric(), bootstrap_resamples(), calibration(),
        )  # fmt: skip


def test_threshold_search_agrees_with_scoring_every_candidate():
    """The one-sort threshold search picks what scoring each candidate with scikit-learn picks."""
    import numpy as np
    from sklearn import metrics

    scorers = {
        "f1": lambda y, p: metrics.f1_score(y, p, zero_division=0),
        "precision": lambda y, p: metrics.precision_score(y, p, zero_division=0),
        "recall": lambda y, p: metrics.recall_score(y, p, zero_division=0),
        "balanced_accuracy": metrics.balanced_accuracy_score,
    }
    rng = np.random.default_rng(3)
    for rows in (40, 3000):
        labels = (rng.random(rows) < 0.08).astype(int)
        scores = np.clip(rng.normal(0.3 + 0.4 * labels, 0.2), 0, 1).round(2)
        for metric, scorer in scorers.items():
            candidates = np.unique(scores)
            values = [scorer(labels, (scores >= t).astype(int)) for t in candidates]
            best = max(range(len(values)), key=lambda i: (values[i], candidates[i]))
            assert choose_threshold(labels, scores, metric) == candidates[best], (rows, metric)
