"""Probabilities that mean what they say: the chosen model is calibrated on the validation split
before its threshold is chosen, the test split's calibration is reported with intervals, and the
`trained_model:calibrated` gate warns, naming the bins, when a bin's predicted rate lies outside its
observed rate's 95% interval."""

import datetime as dt
import json

import dagster as dg
import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from mlplatform.core.calibration import (
    CalibrationReport,
    calibrate,
    calibration_gate,
    calibration_report,
    ece_and_brier,
    quantile_bins,
)
from mlplatform.core.evaluate import choose_threshold
from mlplatform.core.features import build_features, model_columns
from mlplatform.core.train import split_xy, train_model
from mlplatform.core.validate import validate
from mlplatform_tests.packaged import (
    bootstrap_resamples,
    generated_day,
    search_plan,
    threshold_metric,
)

BINS = 10
RESAMPLES = 200


def simulated(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """True probabilities of a rare class (mean about 5%) and labels drawn from them."""
    rng = np.random.default_rng(seed)
    truth = rng.beta(0.5, 10, rows)
    return truth, (rng.random(rows) < truth).astype(int)


def report(labels, scores, seed: int = 7) -> CalibrationReport:
    return calibration_report(labels, scores, bins=BINS, seed=seed, resamples=RESAMPLES)


# The pure functions ------------------------------------------------------------------------------


def test_a_miscalibrated_score_fails_the_bin_check_and_names_the_bins():
    truth, labels = simulated(20_000, seed=1)
    outcome = calibration_gate(report(labels, truth**0.3), min_positives=30)
    assert not outcome.passed and not outcome.inconclusive
    assert outcome.observed == BINS  # every bin claims far more than happened
    assert outcome.details["bins_off"] == list(range(1, BINS + 1))
    assert "10 of 10 bins predict a rate outside" in outcome.summary
    assert "bin 1 of 10 (scores " in outcome.summary and "bin 10 of 10" in outcome.summary


def test_a_score_miscalibrated_in_its_top_bins_only_is_named_there():
    truth, labels = simulated(20_000, seed=2)
    top = truth >= np.quantile(truth, 0.8)
    scores = np.where(top, np.minimum(truth * 2, 1), truth)
    outcome = calibration_gate(report(labels, scores), min_positives=30)
    assert not outcome.passed
    assert outcome.details["bins_off"] == [9, 10]
    assert "bin 9 of 10" in outcome.summary and "bin 8 of 10" not in outcome.summary


def test_a_calibrated_score_passes():
    """One sample (a calibrated score passes about 60% of samples at 10 bins: next test)."""
    truth, labels = simulated(20_000, seed=4)
    judged = report(labels, truth)
    outcome = calibration_gate(judged, min_positives=30)
    assert outcome.passed and outcome.observed == 0
    assert "each of 10 bins' mean predicted probability lies in" in outcome.summary
    assert [row["rows"] for row in outcome.details["bins"]] == [2000] * BINS
    assert sum(row["positives"] for row in outcome.details["bins"]) == labels.sum()


def test_calibrated_scores_hold_their_bins_about_95_percent_of_the_time():
    """Each bin's check is a 95% interval: over many samples of a calibrated score, about 95% of
    the bins hold, so with 10 bins some bin is outside in about 40% of samples (why the gate only
    warns); a score 30% too high holds far fewer bins and warns on nearly every sample."""
    held: dict[str, list[bool]] = {"calibrated": [], "30% over": []}
    warned: dict[str, list[bool]] = {"calibrated": [], "30% over": []}
    for seed in range(40):
        truth, labels = simulated(20_000, seed=100 + seed)
        for name, scores in (("calibrated", truth), ("30% over", truth * 1.3)):
            judged = report(labels, scores, seed=seed)
            held[name] += [b.holds for b in judged.bins]
            warned[name].append(bool(judged.bins_off))
    assert 0.92 <= np.mean(held["calibrated"]) <= 0.98
    assert 0.2 <= np.mean(warned["calibrated"]) <= 0.6
    assert np.mean(held["30% over"]) < 0.6
    assert np.mean(warned["30% over"]) >= 0.95


def test_intervals_contain_the_truth_on_simulated_data():
    """The truth of a score: its ECE over the population's quantile bins (a score against the true
    probabilities, no label noise), its Brier score E[(p - q)^2 + q(1 - q)], and each bin's true
    positive rate. Over 40 samples each interval contains its truth about 95% of the time."""
    rng = np.random.default_rng(0)
    population = rng.beta(0.5, 10, 2_000_000)

    def score(q: np.ndarray) -> np.ndarray:
        return np.minimum(q**0.8, 1)  # overstates rare events, most in the lowest scores

    index = quantile_bins(score(population), BINS)
    true_ece = np.abs(np.bincount(index, score(population) - population)).sum() / len(population)
    true_brier = np.mean((score(population) - population) ** 2 + population * (1 - population))
    ece_hits = brier_hits = bins_hit = bins_judged = 0
    samples = 40
    for seed in range(samples):
        truth, labels = simulated(5000, seed=200 + seed)
        judged = report(labels, score(truth), seed=seed)
        ece_hits += judged.ece.low <= true_ece <= judged.ece.high
        brier_hits += judged.brier.low <= true_brier <= judged.brier.high
        sample_bins = quantile_bins(score(truth), BINS)
        for number, b in enumerate(judged.bins):
            true_rate = truth[sample_bins == number].mean()
            bins_hit += b.low <= true_rate <= b.high
            bins_judged += 1
    assert true_ece > 0.01  # far enough from 0 to be a finding
    assert ece_hits / samples >= 0.85
    assert brier_hits / samples >= 0.85
    assert 0.9 <= bins_hit / bins_judged <= 0.99


def test_a_calibrated_scores_ece_interval_reaches_down_to_its_truth_of_zero_often():
    """ECE reads above 0 even for a perfect score (noise in each bin's observed rate): its basic
    bootstrap interval takes that push off and reaches 0 in about half the samples, where the
    percentile interval lay wholly above 0 in every one."""
    reaches = []
    for seed in range(30):
        truth, labels = simulated(5000, seed=300 + seed)
        reaches.append(report(labels, truth, seed=seed).ece.low == 0.0)
    assert np.mean(reaches) >= 0.3


def test_the_report_is_seeded_and_its_points_do_not_depend_on_the_seed():
    truth, labels = simulated(5000, seed=4)
    scores = truth**0.8
    first, again, other = report(labels, scores), report(labels, scores), report(labels, scores, 8)
    assert first == again
    assert (first.ece.value, first.brier.value) == (other.ece.value, other.brier.value)
    assert (first.ece.low, first.brier.high) != (other.ece.low, other.brier.high)
    assert first.bins == other.bins  # the bins' Wilson intervals are not resampled
    assert (first.ece.value, first.brier.value) == pytest.approx(ece_and_brier(labels, scores, 10))
    assert first.brier.value == pytest.approx(np.mean((scores - labels) ** 2))


def test_the_report_survives_the_trained_models_json_record():
    truth, labels = simulated(5000, seed=5)
    judged = report(labels, truth**0.5)
    assert CalibrationReport.from_dict(json.loads(json.dumps(judged.to_dict()))) == judged


def test_tied_scores_share_a_bin():
    scores = np.r_[np.zeros(600), np.linspace(0.1, 1, 400)]
    index = quantile_bins(scores, BINS)
    assert len(set(index[:600])) == 1
    assert index.max() + 1 == 5  # the six cuts inside the zeros fall together
    labels = (np.arange(1000) % 10 == 0).astype(int)
    assert len(report(labels, scores).bins) == 5


def test_too_few_positives_cannot_judge_and_an_unmeasured_model_says_so():
    truth, labels = simulated(2000, seed=6)
    thin = calibration_gate(report(labels, truth**0.3), min_positives=int(labels.sum()) + 1)
    assert thin.inconclusive and "cannot judge" in thin.summary
    unmeasured = calibration_gate(None, min_positives=30)
    assert unmeasured.inconclusive and "not measured" in unmeasured.summary


def test_calibrate_keeps_the_fit_and_learns_only_the_mapping():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(9)
    x = pd.DataFrame({"a": rng.normal(size=4000)})
    y = (rng.random(4000) < 1 / (1 + np.exp(-(2 * x["a"] - 4)))).astype(int)
    model = LogisticRegression(class_weight="balanced").fit(x, y)
    coefficients = model.coef_.copy()
    sigmoid = calibrate(model, "sigmoid", x, y)
    isotonic = calibrate(model, "isotonic", x, y)
    assert calibrate(model, "none", x, y) is model
    assert np.array_equal(model.coef_, coefficients)
    raw, scaled = model.predict_proba(x)[:, 1], sigmoid.predict_proba(x)[:, 1]
    # Balanced weights overstate the rate; calibrated, the mean score is the observed rate.
    assert raw.mean() > 3 * y.mean()
    assert scaled.mean() == pytest.approx(y.mean(), rel=0.1)
    assert isotonic.predict_proba(x)[:, 1].mean() == pytest.approx(y.mean(), rel=0.01)
    # Sigmoid keeps the ranking: the same order of rows.
    assert np.array_equal(np.argsort(raw, kind="stable"), np.argsort(scaled, kind="stable"))
    with pytest.raises(ValueError, match="unknown calibration method 'platt'"):
        calibrate(model, "platt", x, y)


# Training ----------------------------------------------------------------------------------------

# Enough for a validation split of about 90 positives to calibrate on (at 5,000 a day one sample
# held 26, half the usual rate, and its calibration inherited that).
ROWS_PER_DAY = 10_000


@pytest.fixture(scope="module")
def trained(card_contract):
    """A week of small generated days, trained with the packaged families (class-weighted, so
    their raw scores overstate fraud) and sigmoid calibration; five later days held out."""
    raw = pd.concat(
        generated_day(dt.date(2026, 3, d), rows_per_day=ROWS_PER_DAY) for d in range(1, 8)
    )
    features = build_features(validate(raw, card_contract).validated, card_contract)
    categorical, numeric = model_columns(features, card_contract)
    plan = search_plan(trials_per_family=2, folds=2)
    result = train_model(
        features, categorical, numeric, plan, threshold_metric(), bootstrap_resamples(), "sigmoid"
    )
    later = pd.concat(
        generated_day(dt.date(2026, 3, d), rows_per_day=ROWS_PER_DAY) for d in range(8, 13)
    )
    held_out = build_features(
        validate(later, card_contract).validated,
        card_contract,
        validation_fraction=0.01,
        test_fraction=0.98,
    )
    return features, result, held_out


def raw_model(model):
    """The model inside the registered wrapper, before calibration: threshold wrapper ->
    CalibratedClassifierCV -> its one (frozen model, calibrator) pair -> the frozen model."""
    calibrated = model.estimator.estimator
    return calibrated.calibrated_classifiers_[0].estimator


def test_the_trained_model_predicts_calibrated_probabilities_on_held_out_days(trained):
    _, result, held_out = trained
    assert result.calibration == "sigmoid"
    x, y = held_out[result.input_columns], held_out["label"].to_numpy()
    assert y.sum() >= 300
    calibrated = result.model.predict_proba(x)[:, 1]
    uncalibrated = raw_model(result.model).predict_proba(x)[:, 1]
    after, before = report(y, calibrated), report(y, uncalibrated)
    # The class weights overstate fraud several times over; calibrated, the scores add up to
    # about the fraud that happened, bin by bin.
    assert uncalibrated.mean() > 3 * y.mean()
    assert calibrated.mean() == pytest.approx(y.mean(), rel=0.25)
    assert after.ece.high < before.ece.low
    assert after.ece.value < before.ece.value / 4
    assert after.brier.high < before.brier.low
    assert len(before.bins_off) >= 8 and len(after.bins_off) < len(before.bins_off)
    # Sigmoid keeps the ranking, so ROC-AUC stays.
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(y, calibrated) == pytest.approx(roc_auc_score(y, uncalibrated), abs=1e-9)


def test_the_threshold_is_chosen_on_the_calibrated_validation_scores(trained):
    features, result, _ = trained
    x_validation, y_validation = split_xy(features, "validation", result.input_columns)
    calibrated = result.model.predict_proba(x_validation)[:, 1]
    uncalibrated = raw_model(result.model).predict_proba(x_validation)[:, 1]
    assert np.allclose(result.validation_scores, calibrated)
    assert result.threshold == choose_threshold(y_validation, calibrated, threshold_metric())
    # Chosen before calibration, it would be a point on the raw scores' scale instead.
    assert result.threshold < choose_threshold(y_validation, uncalibrated, threshold_metric()) / 2
    # The model applies it to its calibrated probability, as batch scoring does.
    x_test, _ = split_xy(features, "test", result.input_columns)
    assert np.array_equal(
        result.model.predict(x_test), (result.test_scores >= result.threshold).astype(int)
    )
    assert np.allclose(
        result.uncalibrated_test_scores, raw_model(result.model).predict_proba(x_test)[:, 1]
    )


def test_a_calibrated_model_loads_through_the_trusted_skops_loader(trained, tmp_path):
    """Each calibration's model loads trusting only `SKOPS_TRUSTED_TYPES` and scores as trained."""
    import mlflow
    import mlflow.sklearn

    from mlplatform.core.models import SKOPS_TRUSTED_TYPES, with_decision_threshold
    from mlplatform.resources.mlflow import MlflowResource

    features, result, _ = trained
    resource = MlflowResource(
        tracking_uri=f"sqlite:///{tmp_path}/mlflow.db",
        artifact_location=str(tmp_path / "artifacts"),
        experiment_name="calibrated",
    )
    mlflow.set_tracking_uri(resource.tracking_uri)
    try:
        x_validation, y_validation = split_xy(features, "validation", result.input_columns)
        x_test, _ = split_xy(features, "test", result.input_columns)
        for method in ("sigmoid", "isotonic"):
            model = with_decision_threshold(
                calibrate(raw_model(result.model), method, x_validation, y_validation),
                result.threshold, x_validation, y_validation,
            )  # fmt: skip
            with mlflow.start_run(experiment_id=resource.experiment_id):
                info = mlflow.sklearn.log_model(
                    model, name="model", pip_requirements=["scikit-learn"],
                    serialization_format="skops", skops_trusted_types=list(SKOPS_TRUSTED_TYPES),
                )  # fmt: skip
            mlflow.register_model(info.model_uri, f"calibrated_{method}")
            loaded = resource.load_sklearn_model(f"models:/calibrated_{method}/1")
            assert np.allclose(loaded.predict_proba(x_test), model.predict_proba(x_test))
            assert np.array_equal(loaded.predict(x_test), model.predict(x_test))
    finally:
        mlflow.set_tracking_uri(None)


# The gate's settings and wiring ------------------------------------------------------------------


def test_the_gate_is_declared_once_and_can_only_warn():
    from mlplatform.config.active import GATES
    from mlplatform.config.gates import CalibrationGate

    gate = GATES.trained_model.calibrated
    assert gate.severity == "WARN" and not gate.blocking
    assert gate.bins >= 2 and gate.min_positives >= 1
    for bad in ({"severity": "ERROR"}, {"bins": 1}, {"min_positives": 0}):
        with pytest.raises(ValidationError):
            CalibrationGate(**{**gate.model_dump(), **bad})


def test_the_check_warns_names_the_bins_and_shows_them_as_a_table():
    from mlplatform.checks.common import gate_result
    from mlplatform.checks.trained_model import judged_model_gates
    from mlplatform.config.active import GATES
    from mlplatform.core.uncertainty import metric_intervals

    truth, labels = simulated(20_000, seed=4)  # a sample whose calibrated bins all hold
    gates = GATES.trained_model
    for scores, passes in ((truth, True), (truth**0.3, False)):
        record = {
            "test_intervals": {
                k: v.to_dict()
                for k, v in metric_intervals(labels, scores, 0.5, seed=1, resamples=50).items()
            },
            "champion_comparison": {"basis": "no champion"},
            "calibration": report(labels, scores).to_dict(),
        }
        outcome = judged_model_gates(json.loads(json.dumps(record)), gates)["calibrated"]
        result = gate_result("trained_model", "calibrated", gates.calibrated, outcome)
        assert result.passed is passes
        assert result.severity == dg.AssetCheckSeverity.WARN
        table = result.metadata["bins"]
        assert isinstance(table, dg.TableMetadataValue)
        assert [c.name for c in table.schema.columns] == [
            "bin", "scores", "mean_predicted", "observed_rate", "observed_low", "observed_high",
            "rows", "positives", "holds",
        ]  # fmt: skip
        assert len(table.records) == BINS
        assert [r.data["holds"] for r in table.records] == [passes] * BINS
    # A model trained before calibration was measured: the check says so, as a warning.
    del record["calibration"]
    assert judged_model_gates(record, gates)["calibrated"].inconclusive


def test_the_calibration_setting_is_declared_once_and_reaches_the_launchpad():
    from mlplatform.assets.trained_model import TrainedModelConfig
    from mlplatform.config.settings import load_settings

    assert load_settings(environ={}).training.calibration in ("sigmoid", "isotonic", "none")
    assert TrainedModelConfig(calibration="isotonic").calibration == "isotonic"
    with pytest.raises(dg.Failure, match="calibration"):
        TrainedModelConfig(calibration="platt")
