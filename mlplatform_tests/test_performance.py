"""Post-deployment statistics on simulated data whose truth is known: intervals that cover it at
about their nominal rate, the estimate that matches realized performance while calibration holds
and misses concept drift, and each live verdict (promote, keep, rollback) in seeded trials."""

import numpy as np
import pytest
from scipy import stats
from sklearn import metrics

from mlplatform.core.estimate_dispersion import _given_scores_model, estimate_dispersion
from mlplatform.core.estimated_performance import estimated_performance, simulated_metrics
from mlplatform.core.live_comparison import live_comparison
from mlplatform.core.performance_gates import down_from_backtest, estimate_gap, score_drift
from mlplatform.core.realized_performance import PERFORMANCE_METRICS, realized_performance
from mlplatform.core.uncertainty import Interval, metric_interval

REPLICATIONS = 200
TRIALS = 100


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _binormal(rng, rows, prevalence=0.1, separation=1.5):
    """Labels at `prevalence`, scores whose logit is N(separation, 1) for positives and N(0, 1)
    for negatives: true ROC-AUC Phi(separation / sqrt 2)."""
    labels = (rng.random(rows) < prevalence).astype(int)
    scores = _sigmoid(rng.normal(separation * labels, 1.0) - 2.5)
    return labels, scores


def _calibrated(rng, rows, a=0.5, b=5.0):
    """Probabilities ~ Beta(a, b), labels drawn from them: a calibrated model."""
    scores = rng.beta(a, b, rows)
    return (rng.random(rows) < scores).astype(int), scores


def _share(hits):
    return float(np.mean(hits))


# realized_performance -----------------------------------------------------------------------------


def test_realized_metrics_are_scikit_learns_on_the_labelled_rows():
    labels, scores = _binormal(np.random.default_rng(1), 3000)
    threshold = 0.2
    result = realized_performance(
        labels, scores, threshold, scored_rows=4000, seed=0, resamples=100
    )
    flagged = (scores >= threshold).astype(int)
    assert result.metrics["roc_auc"].value == pytest.approx(metrics.roc_auc_score(labels, scores))
    assert result.metrics["pr_auc"].value == pytest.approx(
        metrics.average_precision_score(labels, scores)
    )
    assert result.metrics["precision"].value == pytest.approx(
        metrics.precision_score(labels, flagged)
    )
    assert result.metrics["recall"].value == pytest.approx(metrics.recall_score(labels, flagged))
    calibration = result.calibration
    assert calibration.brier.value == pytest.approx(metrics.brier_score_loss(labels, scores))
    assert calibration.expected_positives.value == pytest.approx(scores.sum())
    assert calibration.observed_positives.value == labels.sum() == result.positives
    assert result.coverage.value == pytest.approx(0.75)
    for interval in [*result.metrics.values(), result.coverage, *vars(calibration).values()]:
        assert interval.low <= interval.value <= interval.high
    assert not result.inconclusive and result.reason is None


def test_realized_intervals_cover_the_truth_at_about_the_nominal_rate():
    """ROC-AUC (DeLong) and coverage (Wilson) over seeded replications of a population with a
    known ROC-AUC and a known share of outcomes arrived."""
    true_auc = stats.norm.cdf(1.5 / np.sqrt(2))
    true_coverage = 0.8
    auc_hits, coverage_hits = [], []
    for seed in range(REPLICATIONS):
        rng = np.random.default_rng(seed)
        scored = 2500
        arrived = rng.random(scored) < true_coverage
        labels, scores = _binormal(rng, scored)
        result = realized_performance(
            labels[arrived], scores[arrived], 0.2, scored_rows=scored, seed=seed, resamples=20
        )
        auc = result.metrics["roc_auc"]
        auc_hits.append(auc.low <= true_auc <= auc.high)
        coverage_hits.append(result.coverage.low <= true_coverage <= result.coverage.high)
    assert 0.90 <= _share(auc_hits) <= 0.99
    assert 0.90 <= _share(coverage_hits) <= 0.99


def test_calibration_intervals_cover_the_truth_at_about_the_nominal_rate():
    """On a calibrated model: the observed positives fall in the expected positives' interval,
    the observed positives' interval holds the true expected count, and the Brier score's
    bootstrap interval holds the true Brier score E[p(1 - p)], each about 95% of the time."""
    a, b, rows = 0.5, 5.0, 2000
    mean = a / (a + b)
    true_brier = mean - a * (a + 1) / ((a + b) * (a + b + 1))
    within_expected, observed_hits, brier_hits = [], [], []
    for seed in range(REPLICATIONS):
        labels, scores = _calibrated(np.random.default_rng(seed), rows, a, b)
        calibration = realized_performance(
            labels, scores, 0.3, scored_rows=rows, seed=seed, resamples=200
        ).calibration
        expected, observed = calibration.expected_positives, calibration.observed_positives
        within_expected.append(expected.low <= observed.value <= expected.high)
        observed_hits.append(observed.low <= rows * mean <= observed.high)
        brier_hits.append(calibration.brier.low <= true_brier <= calibration.brier.high)
    for hits in (within_expected, observed_hits, brier_hits):
        assert 0.90 <= _share(hits) <= 0.99


def test_miscalibrated_scores_show_observed_positives_outside_the_expected_interval():
    rng = np.random.default_rng(3)
    labels, scores = _calibrated(rng, 5000)
    doubled = np.clip(scores * 2, 0, 1)  # a class-weighted model: scores far above the rate
    calibration = realized_performance(
        labels, doubled, 0.3, scored_rows=5000, seed=0, resamples=50
    ).calibration
    assert calibration.observed_positives.value < calibration.expected_positives.low


def test_no_labelled_rows_reports_coverage_alone():
    result = realized_performance([], [], 0.5, scored_rows=1000, seed=0, resamples=50)
    assert result.inconclusive and result.metrics is None and result.calibration is None
    assert "none of the 1000 scored rows" in result.reason
    assert result.coverage.value == 0 and result.coverage.low == 0
    assert 0 < result.coverage.high < 0.01
    flat = result.to_metadata()
    assert "roc_auc" not in flat and flat["coverage"] == 0 and flat["reason"] == result.reason
    nothing = realized_performance([], [], 0.5, scored_rows=0, seed=0, resamples=50)
    assert nothing.coverage is None and nothing.reason == "no rows were scored"


def test_one_class_reports_coverage_and_calibration_but_no_ranking_metric():
    scores = np.random.default_rng(0).beta(0.5, 5, 300)
    result = realized_performance(
        np.zeros(300, int), scores, 0.5, scored_rows=900, seed=0, resamples=50
    )
    assert result.inconclusive and result.metrics is None
    assert "only one class" in result.reason
    assert result.calibration.observed_positives.value == 0
    assert result.calibration.expected_positives.value == pytest.approx(scores.sum())
    assert result.coverage.value == pytest.approx(1 / 3)


def test_one_positive_gives_the_widest_roc_auc_interval_without_warnings(recwarn):
    labels = np.r_[1, np.zeros(99, int)]
    scores = np.linspace(0.99, 0.01, 100)
    auc = realized_performance(labels, scores, 0.5, scored_rows=100, seed=0, resamples=50).metrics[
        "roc_auc"
    ]
    assert (auc.value, auc.low, auc.high) == (1.0, 0.0, 1.0)
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


def test_metadata_names_are_stable():
    labels, scores = _binormal(np.random.default_rng(1), 500)
    flat = realized_performance(
        labels, scores, 0.2, scored_rows=600, seed=0, resamples=20
    ).to_metadata()
    measured = ["coverage", *PERFORMANCE_METRICS, "expected_positives"]
    measured += ["observed_positives", "brier"]
    expected = {"threshold", "scored_rows", "labelled_rows", "positives"}
    expected |= {f"{name}{end}" for name in measured for end in ("", "_low", "_high")}
    assert set(flat) == expected
    assert all(isinstance(v, int | float) for v in flat.values())
    estimated = estimated_performance(scores, 0.2, seed=0, simulations=20).to_metadata()
    assert set(estimated) == {"estimated_rows", "estimated_positives", "estimated_dispersion"} | {
        f"estimated_{name}{end}" for name in PERFORMANCE_METRICS for end in ("", "_low", "_high")
    }


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="one length"):
        realized_performance([0, 1], [0.5], 0.5, scored_rows=2, seed=0, resamples=5)
    with pytest.raises(ValueError, match="0 or 1"):
        realized_performance([0, 2], [0.5, 0.5], 0.5, scored_rows=2, seed=0, resamples=5)
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\]"):
        estimated_performance(np.array([0.5, 1.5]), 0.5, seed=0, simulations=5)
    with pytest.raises(ValueError, match="only 1 scored rows"):
        realized_performance([0, 1], [0.2, 0.8], 0.5, scored_rows=1, seed=0, resamples=5)


# estimated_performance ----------------------------------------------------------------------------


def test_estimate_is_cbpes_expected_curve():
    """Against the definition written out threshold by threshold (with tied scores)."""
    rng = np.random.default_rng(5)
    scores = rng.beta(0.7, 3, 400).round(2)
    threshold = 0.3
    estimate = estimated_performance(scores, threshold, seed=0, simulations=50).metrics
    cuts = np.unique(scores)[::-1]
    tp = np.array([scores[scores >= t].sum() for t in cuts])
    fp = np.array([(1 - scores[scores >= t]).sum() for t in cuts])
    tpr, fpr = np.r_[0, tp / scores.sum()], np.r_[0, fp / (1 - scores).sum()]
    assert estimate["roc_auc"].value == pytest.approx(metrics.auc(fpr, tpr))
    recall, precision = tp / scores.sum(), tp / (tp + fp)
    assert estimate["pr_auc"].value == pytest.approx(np.sum(np.diff(np.r_[0, recall]) * precision))
    flagged = scores >= threshold
    assert estimate["precision"].value == pytest.approx(scores[flagged].mean())
    assert estimate["recall"].value == pytest.approx(scores[flagged].sum() / scores.sum())


def test_simulated_metrics_are_the_realized_metric_of_each_draw():
    """The vectorised simulation computes, for each drawn label set, what realized_performance
    computes on those labels."""
    from mlplatform.core.uncertainty import _Ranking

    scores = np.random.default_rng(2).beta(0.7, 3, 300).round(2)
    ranking = _Ranking.of(scores, scores, 0.3)
    drawn = simulated_metrics(ranking, seed=4, simulations=5)
    rng = np.random.default_rng(4)
    outcomes = rng.random((5, len(scores))) < ranking.labels
    ordered = scores[ranking.order]
    for i, outcome in enumerate(outcomes):
        realized = realized_performance(
            outcome.astype(int), ordered, 0.3, scored_rows=len(scores), seed=0, resamples=5
        ).metrics
        for name in PERFORMANCE_METRICS:
            assert drawn[name][i] == pytest.approx(realized[name].value), (i, name)


def test_estimate_matches_realized_performance_while_calibration_holds():
    """Labels drawn from the scores: the realized ROC-AUC is the estimate in expectation, falls in
    its interval about 95% of the time, and estimate_gap passes as often."""
    gaps, within, passed = [], [], []
    for seed in range(REPLICATIONS):
        labels, scores = _calibrated(np.random.default_rng(seed), 5000)
        estimated = estimated_performance(scores, 0.3, seed=seed, simulations=200)
        realized = realized_performance(
            labels, scores, 0.3, scored_rows=5000, seed=seed, resamples=10
        )
        estimate, actual = estimated.metrics["roc_auc"], realized.metrics["roc_auc"]
        gaps.append(actual.value - estimate.value)
        within.append(estimate.low <= actual.value <= estimate.high)
        passed.append(estimate_gap("roc_auc", actual, estimate, 0.0, 30).passed)
    # One replication's ROC-AUC varies by about 0.012: the mean of 200 by about 0.001.
    assert abs(np.mean(gaps)) < 0.003
    assert 0.90 <= _share(within) <= 0.99
    assert _share(passed) >= 0.90


def test_estimate_misses_concept_drift_and_estimate_gap_says_so():
    """The link between inputs and outcome changes: outcomes now follow a weaker relation to the
    score (at the same overall rate). The estimate does not move; realized ROC-AUC falls below
    its interval, and estimate_gap fails, below."""
    for seed in range(20):
        rng = np.random.default_rng(seed)
        scores = rng.beta(0.5, 5, 5000)
        logit = np.log(scores / (1 - scores))
        drifted = _sigmoid(0.3 * logit - 1.55)  # about the same positive rate, a weaker link
        labels = (rng.random(5000) < drifted).astype(int)
        estimated = estimated_performance(scores, 0.3, seed=seed, simulations=200)
        realized = realized_performance(
            labels, scores, 0.3, scored_rows=5000, seed=seed, resamples=10
        )
        gap = estimate_gap(
            "roc_auc", realized.metrics["roc_auc"], estimated.metrics["roc_auc"], 0.01, 30
        )
        assert not gap.passed and not gap.inconclusive, gap.summary
        assert "lies below" in gap.summary and "missed" in gap.summary


def test_estimate_without_anything_to_rank():
    assert estimated_performance(np.array([]), 0.5, seed=0, simulations=10).metrics is None
    zeros = estimated_performance(np.zeros(50), 0.5, seed=0, simulations=10)
    assert zeros.metrics is None and "nothing to rank" in zeros.reason
    assert zeros.to_metadata()["estimated_reason"] == zeros.reason


# estimate_dispersion ------------------------------------------------------------------------------


def _clustered(rng, clusters, a=0.5, b=8.0):
    """Clusters of 1-4 consecutive rows that share one probability ~ Beta(a, b) and one outcome
    drawn from it (a compromised card's burst): every row's probability is exactly right, yet
    outcomes vary more than independent draws."""
    size = rng.integers(1, 5, clusters)
    probability = rng.beta(a, b, clusters)
    outcome = rng.random(clusters) < probability
    return np.repeat(outcome, size).astype(int), np.repeat(probability, size)


def _roc_auc_within(labels, scores, dispersion, seed):
    estimate = estimated_performance(
        scores, 0.3, seed=seed, simulations=100, dispersion=dispersion
    ).metrics["roc_auc"]
    realized = metrics.roc_auc_score(labels, scores)
    return estimate.low <= realized <= estimate.high


def test_dispersion_widens_each_side_around_the_estimate():
    scores = np.random.default_rng(3).beta(0.5, 5, 3000)
    plain = estimated_performance(scores, 0.3, seed=1, simulations=100)
    wide = estimated_performance(scores, 0.3, seed=1, simulations=100, dispersion=2.5)
    assert plain.dispersion == 1.0 and wide.dispersion == 2.5
    assert wide.to_metadata()["estimated_dispersion"] == 2.5
    for name in PERFORMANCE_METRICS:
        before, after = plain.metrics[name], wide.metrics[name]
        assert after.value == before.value
        assert after.low == pytest.approx(
            max(0.0, before.value - 2.5 * (before.value - before.low))
        )
        assert after.high == pytest.approx(
            min(1.0, before.value + 2.5 * (before.high - before.value))
        )
        assert 0.0 <= after.low <= after.value <= after.high <= 1.0
        assert "widened x2.5" in after.method and "widened" not in before.method
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="dispersion"):
            estimated_performance(scores, 0.3, seed=1, simulations=10, dispersion=bad)


def test_dispersion_is_about_one_on_independent_rows():
    """Exact probabilities, independent outcomes, no calibrator: nothing to widen for, and the
    factor stays near 1 (the held-out check widens by its own noise now and then)."""
    factors = []
    for seed in range(12):
        labels, scores = _calibrated(np.random.default_rng(seed), 6000)
        measured = estimate_dispersion(labels, scores, 10, seed=seed, simulations=100)
        assert measured.blocks == 10 and measured.calibration_fit == 0.0
        assert measured.label_noise >= 1.0 and measured.factor >= measured.label_noise
        factors.append(measured.factor)
    assert np.median(factors) < 1.25
    assert np.mean(factors) < 1.4


def test_dispersion_covers_clustered_outcomes_at_about_the_nominal_rate():
    """Outcomes shared by clusters of consecutive rows: the simulated interval holds the realized
    ROC-AUC on about three days in four; widened by the factor measured on a held-out split of
    the same process, on about 95% of the days."""
    factors, widened, plain = [], [], []
    for trial in range(12):
        rng = np.random.default_rng(trial)
        labels, scores = _clustered(rng, 2500)
        factor = estimate_dispersion(labels, scores, 10, seed=trial, simulations=100).factor
        factors.append(factor)
        for day in range(8):
            labels, scores = _clustered(rng, 2500)
            widened.append(_roc_auc_within(labels, scores, factor, day))
            plain.append(_roc_auc_within(labels, scores, 1.0, day))
    assert 1.4 < np.median(factors) < 2.6
    assert _share(plain) < 0.85
    assert 0.90 <= _share(widened) <= 0.99


def _raw_rows(rng, rows):
    """Outcomes from true probabilities q, and a raw score that ranks as q does but that no
    sigmoid maps to q (q ** 0.25): a model whose scores need calibrating."""
    q = _sigmoid(rng.normal(-3.5, 1.3, rows))
    return (rng.random(rows) < q).astype(int), q**0.25


@pytest.mark.parametrize(("method", "trials"), [("isotonic", 12), ("sigmoid", 6)])
def test_dispersion_covers_the_calibrators_error(method, trials):
    """A calibrator fitted on a validation split, as training does: isotonic has fitting error
    only (none on its own rows), a sigmoid on these scores also a misfit. Widened by the factor
    measured on the held-out split, the interval holds the realized ROC-AUC on at least 90% of
    later days, where the simulated interval alone misses clearly more often. (Fewer sigmoid
    trials: each refits 8 sigmoids by L-BFGS.)"""
    from mlplatform.core.calibration import calibrate

    model = _given_scores_model()
    widened, plain, parts = [], [], []
    for trial in range(trials):
        rng = np.random.default_rng(trial)
        validation_labels, validation_raw = _raw_rows(rng, 6000)
        calibrated = calibrate(model, method, validation_raw.reshape(-1, 1), validation_labels)

        def probability(raw, calibrated=calibrated):
            return calibrated.predict_proba(raw.reshape(-1, 1))[:, 1]

        test_labels, test_raw = _raw_rows(rng, 6000)
        measured = estimate_dispersion(
            test_labels, probability(test_raw), 10, seed=trial, simulations=100,
            calibration=method, calibration_labels=validation_labels,
            calibration_scores=probability(validation_raw), resamples=8,
        )  # fmt: skip
        parts.append(measured)
        for day in range(5):
            labels, raw = _raw_rows(rng, 6000)
            widened.append(_roc_auc_within(labels, probability(raw), measured.factor, day))
            plain.append(_roc_auc_within(labels, probability(raw), 1.0, day))
    assert all(m.calibration_fit > 0 and m.calibration == method for m in parts)
    if method == "isotonic":
        assert all(m.calibration_misfit == 0 for m in parts)
    else:
        assert any(m.calibration_misfit > 0 for m in parts)
    assert _share(widened) >= 0.90
    assert _share(plain) <= _share(widened) - 0.1


def test_dispersion_scales_the_systematic_error_to_the_scored_day():
    """The same systematic error weighs more against the smaller spread of a larger day."""
    labels, scores = _raw_rows(np.random.default_rng(4), 4000)
    scores = np.clip(scores**4 * 1.6, 0, 1)  # probabilities 1.6 times too high
    one_day = estimate_dispersion(labels, scores, 8, seed=0, simulations=100)
    four_days = estimate_dispersion(labels, scores, 8, seed=0, simulations=100, scale_rows=16000)
    assert one_day.systematic > 0 and one_day.scale_rows == 4000
    assert four_days.systematic == one_day.systematic
    day_sd = one_day.held_out_sd / 2
    assert four_days.factor == pytest.approx(
        np.sqrt(one_day.label_noise**2 + (one_day.systematic / day_sd) ** 2)
    )
    assert four_days.factor > one_day.factor
    flat = one_day.to_metadata()
    assert flat["estimate_dispersion"] == one_day.factor
    assert flat["estimate_dispersion_calibration"] == "none"


def test_dispersion_refuses_what_it_cannot_measure():
    labels, scores = _calibrated(np.random.default_rng(0), 500)
    with pytest.raises(ValueError, match="both classes"):
        estimate_dispersion(np.zeros(10), np.full(10, 0.1), 2, seed=0, simulations=10)
    with pytest.raises(ValueError, match="unknown metric"):
        estimate_dispersion(labels, scores, 5, seed=0, simulations=10, metric="f1")
    with pytest.raises(ValueError, match="one block id per held-out row"):
        estimate_dispersion(labels, scores, np.zeros(3), seed=0, simulations=10)
    with pytest.raises(ValueError, match="calibration_labels and calibration_scores"):
        estimate_dispersion(labels, scores, 5, seed=0, simulations=10, calibration="sigmoid")
    # Too few blocks to tell a spread: label noise is taken as Bernoulli's.
    assert estimate_dispersion(labels, scores, 2, seed=0, simulations=10).label_noise == 1.0


# Judgments ----------------------------------------------------------------------------------------


def _interval(value, half, positives=500, rows=10000):
    return Interval(value, value - half, value + half, positives, rows, "test")


def test_down_from_backtest_combines_both_errors():
    backtest = _interval(0.90, 0.02)
    # 0.05 below: beyond the combined half-width sqrt(2) * 0.02 = 0.028 plus a 0.01 margin.
    down = down_from_backtest("roc_auc", _interval(0.85, 0.02), backtest, 0.01, 30)
    assert not down.passed and not down.inconclusive and down.observed == pytest.approx(-0.05)
    assert down.details["difference_interval"][1] < -0.01
    # 0.035 below: outside each interval alone, within the combined one's reach of the margin.
    near = down_from_backtest("roc_auc", _interval(0.865, 0.02), backtest, 0.01, 30)
    assert near.passed
    few = down_from_backtest("roc_auc", _interval(0.5, 0.02, positives=10), backtest, 0, 30)
    assert few.inconclusive and not few.passed
    assert down_from_backtest("roc_auc", None, backtest, 0, 30).inconclusive


def test_down_from_backtest_false_alarms_and_power_on_simulated_days():
    """Backtest and live days drawn from one model: it fails about 2.5% of the time (one side of
    a 95% interval; with the live error alone it would be about 8%); drawn from a live population
    truly 0.08 worse: it fails nearly always."""

    def auc(rng, separation=1.5):
        return metric_interval(
            *_binormal(rng, 3000, separation=separation), 0.2, "roc_auc", seed=0, resamples=1
        )

    false_alarms, caught = [], []
    for seed in range(500):
        rng = np.random.default_rng(seed)
        backtest, same, worse = auc(rng), auc(rng), auc(rng, separation=1.0)
        false_alarms.append(not down_from_backtest("roc_auc", same, backtest, 0, 30).passed)
        caught.append(not down_from_backtest("roc_auc", worse, backtest, 0, 30).passed)
    assert _share(false_alarms) <= 0.05
    assert _share(caught) >= 0.90


def test_estimate_gap_widens_for_fewer_realized_rows_and_by_the_tolerance():
    estimated = _interval(0.90, 0.01, rows=40000)
    realized = _interval(0.875, 0.03, rows=10000)
    # On a quarter of the rows the estimate's half-width doubles: 0.02, so 0.875 is outside...
    assert not estimate_gap("roc_auc", realized, estimated, 0.0, 30).passed
    # ...by 0.005: a tolerance of 0.01 keeps it in.
    assert estimate_gap("roc_auc", realized, estimated, 0.01, 30).passed
    same_rows = _interval(0.885, 0.03, rows=40000)
    outside = estimate_gap("roc_auc", same_rows, estimated, 0.0, 30)
    assert not outside.passed and outside.threshold == [0.89, 0.91]
    above = estimate_gap("roc_auc", _interval(0.95, 0.01, rows=40000), estimated, 0.0, 30)
    assert not above.passed and "lies above" in above.summary
    assert estimate_gap("roc_auc", None, estimated, 0.0, 30).inconclusive
    few = estimate_gap("roc_auc", _interval(0.5, 0.1, positives=5), estimated, 0.0, 30)
    assert few.inconclusive


def test_score_drift():
    rng = np.random.default_rng(0)
    reference = rng.beta(0.5, 5, 20000)
    assert score_drift(reference, rng.beta(0.5, 5, 20000), 0.1).passed
    shifted = score_drift(reference, rng.beta(1.5, 5, 20000), 0.1)
    assert not shifted.passed and shifted.observed > 0.1
    assert score_drift(reference, np.array([]), 0.1).passed


# Live comparisons ---------------------------------------------------------------------------------


def _live_rows(rng, rows, *noises):
    """Outcomes from a latent risk; each model sees the risk through its own noise (a smaller
    noise: a better model)."""
    risk = rng.normal(size=rows)
    labels = (rng.random(rows) < _sigmoid(2.0 * risk - 3.5)).astype(int)
    return labels, [_sigmoid(risk + rng.normal(0, noise, rows) - 2) for noise in noises]


def _live(labels, champion, challenger, **changes):
    arguments = dict(margin=0.0, min_positives=30, seed=0, resamples=50) | changes
    return live_comparison(
        labels, challenger, champion, "roc_auc", direction="promote", **arguments
    )


def test_a_challenger_clearly_better_on_live_outcomes_is_promoted():
    actions = []
    for seed in range(TRIALS):
        labels, (champion, challenger) = _live_rows(np.random.default_rng(seed), 4000, 1.5, 0.3)
        verdict = _live(labels, champion, challenger, margin=0.01)
        actions.append(verdict.action)
    assert actions.count("promote") >= 0.95 * TRIALS
    assert verdict.finding == "challenger_better" and "better on live outcomes" in verdict.reason


def test_a_challenger_equal_but_for_noise_is_not_promoted():
    """Equal quality (independent noise of one size), and the champion's own score plus noise:
    promoted in at most 5% of trials, even with no margin."""
    equal, noisy_copy = [], []
    for seed in range(2 * TRIALS):
        rng = np.random.default_rng(seed)
        labels, (champion, challenger) = _live_rows(rng, 4000, 1.0, 1.0)
        equal.append(_live(labels, champion, challenger).action)
        copy = np.clip(champion + rng.normal(0, 0.01, len(champion)), 0, 1)
        noisy_copy.append(_live(labels, champion, copy).action)
    assert equal.count("promote") <= 0.05 * 2 * TRIALS
    assert noisy_copy.count("promote") <= 0.05 * 2 * TRIALS
    assert set(equal) <= {"keep", "promote"}


def test_a_challenger_worse_on_live_outcomes_is_kept_out():
    labels, (champion, challenger) = _live_rows(np.random.default_rng(1), 4000, 0.3, 1.5)
    verdict = _live(labels, champion, challenger)
    assert (verdict.action, verdict.finding) == ("keep", "challenger_worse")


def _rollback(labels, champion, predecessor, seed):
    return live_comparison(
        labels, champion, predecessor, "roc_auc", direction="rollback", margin=0.0,
        min_positives=30, seed=seed, resamples=50,
    )  # fmt: skip


def test_a_champion_confidently_worse_than_its_predecessor_takes_the_rollback_path():
    worse, equal = [], []
    for seed in range(TRIALS):
        rng = np.random.default_rng(seed)
        labels, (champion, predecessor) = _live_rows(rng, 4000, 1.5, 0.3)
        verdict = _rollback(labels, champion, predecessor, seed)
        worse.append(verdict.action)
        labels, (champion, predecessor) = _live_rows(rng, 4000, 1.0, 1.0)
        equal.append(_rollback(labels, champion, predecessor, seed).action)
    assert worse.count("rollback") >= 0.95 * TRIALS
    assert verdict.finding == "champion_worse" and "worse than its predecessor" in verdict.reason
    assert equal.count("rollback") <= 0.05 * TRIALS
    assert set(equal) <= {"keep", "rollback"}


def test_live_verdict_evidence_is_text_with_the_interval():
    labels, (champion, challenger) = _live_rows(np.random.default_rng(2), 4000, 1.5, 0.3)
    verdict = _live(labels, champion, challenger, margin=0.01)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in verdict.evidence.items())
    assert float(verdict.evidence["difference_low"]) == pytest.approx(
        verdict.difference.low, abs=1e-6
    )
    assert verdict.evidence["comparison"] == "challenger - champion"
    assert verdict.evidence["action"] == "promote" and verdict.evidence["method"] == "paired DeLong"


def test_too_few_live_positives_is_inconclusive():
    labels, (champion, challenger) = _live_rows(np.random.default_rng(3), 300, 1.5, 0.3)
    verdict = _live(labels, champion, challenger, min_positives=100)
    assert verdict.action == "inconclusive" and verdict.difference is None
    assert "at least 100 positives" in verdict.reason
    assert verdict.evidence["finding"] == "too_few_positives"


def test_threshold_metrics_compare_with_each_models_threshold():
    labels, (champion, challenger) = _live_rows(np.random.default_rng(4), 4000, 1.5, 0.3)
    with pytest.raises(ValueError, match="decision thresholds"):
        live_comparison(
            labels, challenger, champion, "recall", direction="promote", margin=0,
            min_positives=30, seed=0, resamples=50,
        )  # fmt: skip
    verdict = live_comparison(
        labels, challenger, champion, "recall", direction="promote", margin=0, min_positives=30,
        seed=0, resamples=100, older_threshold=0.2, newer_threshold=0.2,
    )  # fmt: skip
    assert verdict.action == "promote" and verdict.evidence["method"].startswith("paired bootstrap")
    with pytest.raises(ValueError, match="margin"):
        _live(labels, champion, challenger, margin=-0.01)
