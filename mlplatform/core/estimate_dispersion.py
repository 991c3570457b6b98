"""At training: by how much the interval of `estimated_performance` must be widened for a model,
measured on held-out rows (outcomes clustered beyond independent draws, the calibrator's fitting
error and misfit), to be stored with the model version."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from mlplatform.core.estimated_performance import simulated_metrics
from mlplatform.core.realized_performance import PERFORMANCE_METRICS, labelled_rows
from mlplatform.core.uncertainty import _Ranking


@dataclass(frozen=True)
class EstimateDispersion:
    """What `estimate_dispersion` measured on a model's held-out rows: `factor` is what
    `estimated_performance(dispersion=...)` takes (store it with the model version).

    Its parts, in the units of `metric` unless said otherwise: `label_noise`, the spread of the
    estimate's standardized error over `blocks` time-ordered blocks (a factor, at least 1);
    `calibration_fit`, the standard deviation of the estimate over calibrators refitted on
    bootstrap resamples of their own rows; `calibration_misfit`, what the calibrator misses on
    its own rows beyond label noise; `held_out_error`, realized - estimated on all the held-out
    rows, whose simulated label noise is `held_out_sd`; `systematic`, the error that does not
    shrink with more rows, as used; `rows` and `scale_rows`, the held-out rows and the rows of
    the scored day the factor is sized for."""

    factor: float
    metric: str
    rows: int
    scale_rows: int
    label_noise: float
    blocks: int
    calibration: str
    calibration_fit: float
    calibration_misfit: float
    held_out_error: float
    held_out_sd: float
    systematic: float

    def to_metadata(self) -> dict[str, float | int | str]:
        """`estimate_dispersion` (the factor) and `estimate_dispersion_<part>` for each part."""
        parts = {k: v for k, v in vars(self).items() if k != "factor"}
        return {
            "estimate_dispersion": self.factor,
            **{f"estimate_dispersion_{k}": v for k, v in parts.items()},
        }


def _estimate_error(
    labels: np.ndarray,
    scores: np.ndarray,
    threshold: float,
    metric: str,
    *,
    seed: int,
    simulations: int,
) -> tuple[float, float]:
    """realized - estimated `metric` on these labelled rows, and the standard deviation of the
    realized metric that `estimated_performance` simulates for them (Bernoulli labels)."""
    ranking = _Ranking.of(scores, scores, threshold)
    every = np.ones(len(scores))
    estimate = ranking.metrics(every)[metric]
    realized = _Ranking.of(labels, scores, threshold).metrics(every)[metric]
    drawn = simulated_metrics(ranking, seed=seed, simulations=simulations)[metric]
    drawn = drawn[np.isfinite(drawn)]
    spread = float(np.std(drawn, ddof=1)) if len(drawn) > 1 else float("nan")
    return float(realized - estimate), spread


def _given_scores_model():
    """A fitted classifier whose probability is its one input column and whose decision function
    is that probability's logit: `calibration.calibrate` wraps it to refit a calibrator on
    calibrated scores alone. Refitting on them spans the calibrator's own family: the logit of a
    sigmoid-calibrated score is linear in whatever the first sigmoid was fitted on, and any
    monotone input is the same to an isotonic fit (which then keeps the first fit's steps)."""
    from sklearn.base import BaseEstimator, ClassifierMixin

    class GivenScores(ClassifierMixin, BaseEstimator):
        def fit(self, x=None, y=None):
            self.classes_ = np.array([0, 1])
            return self

        def predict_proba(self, x):
            probability = np.asarray(x, dtype=float)[:, 0]
            return np.column_stack([1 - probability, probability])

        def decision_function(self, x):
            probability = np.clip(np.asarray(x, dtype=float)[:, 0], 1e-15, 1 - 1e-15)
            return np.log(probability / (1 - probability))

        def predict(self, x):
            return (np.asarray(x, dtype=float)[:, 0] >= 0.5).astype(int)

    return GivenScores().fit()


def _calibration_fit_spread(
    method: str,
    labels: np.ndarray,
    scores: np.ndarray,
    held_out: np.ndarray,
    threshold: float,
    metric: str,
    *,
    seed: int,
    resamples: int,
) -> float:
    """Standard deviation of the estimate of `metric` on the `held_out` scores over `resamples`
    calibrators refitted (`method`) on bootstrap resamples of the calibrator's rows."""
    from mlplatform.core.calibration import calibrate

    model = _given_scores_model()
    rng = np.random.default_rng(seed)
    fitted_on, scored = scores.reshape(-1, 1), held_out.reshape(-1, 1)
    every = np.ones(len(held_out))
    estimates = []
    for _ in range(resamples):
        rows = rng.integers(0, len(labels), len(labels))
        if labels[rows].min() == labels[rows].max():
            continue
        refitted = calibrate(model, method, fitted_on[rows], labels[rows])
        probability = refitted.predict_proba(scored)[:, 1]
        estimates.append(_Ranking.of(probability, probability, threshold).metrics(every)[metric])
    estimates = np.asarray(estimates)
    estimates = estimates[np.isfinite(estimates)]
    return float(np.std(estimates, ddof=1)) if len(estimates) > 1 else 0.0


def _block_ids(blocks: int | np.ndarray, rows: int) -> np.ndarray:
    if np.ndim(blocks) == 0:
        count = int(blocks)
        if count < 1:
            raise ValueError(f"blocks must be 1 or more, not {blocks}")
        return np.arange(rows) * count // max(rows, 1)
    ids = np.asarray(blocks)
    if ids.shape != (rows,):
        raise ValueError(f"one block id per held-out row: {ids.shape} ids for {rows} rows")
    return ids


def estimate_dispersion(
    labels: np.ndarray,
    scores: np.ndarray,
    blocks: int | np.ndarray,
    *,
    seed: int,
    simulations: int,
    threshold: float = 0.5,
    metric: str = "roc_auc",
    calibration: str = "none",
    calibration_labels: np.ndarray | None = None,
    calibration_scores: np.ndarray | None = None,
    resamples: int = 50,
    scale_rows: int | None = None,
) -> EstimateDispersion:
    """By how much `estimated_performance`'s interval must be widened for this model, measured at
    training on rows neither the model nor its calibrator saw: `labels` and the calibrated
    `scores` of the test split, in time order. `blocks`: a block id per row, or a number of
    contiguous blocks of equal rows; keep rows that share an outcome's cause (one card's fraud
    burst, a session) in one block, which time order does, and aim for 30 positives or more in
    each of about ten blocks. With a calibrator (`calibration` sigmoid or isotonic, as
    `training.calibration`), also pass the rows it was fitted on: `calibration_labels` and
    `calibration_scores` (the validation split's labels and calibrated scores).

    The simulated interval holds the label noise of independent rows whose probabilities are
    exactly right. On a scored day, the realized metric differs from the estimate by more:

    - label noise beyond Bernoulli: outcomes come in clusters (a compromised card's burst of
      frauds, all scored alike), so the day's realized metric varies more than independent
      draws do. `label_noise` is the standard deviation, over the blocks, of the standardized
      error (realized - estimated) / simulated sd; independent rows give about 1, and it is
      floored at 1. The blocks' common offset is left out here: it is not noise.
    - the calibrator's fitting error: it was fitted on one validation split, and another would
      have given other probabilities, hence another estimate. `calibration_fit`: the estimate's
      standard deviation on the held-out scores over calibrators refitted on bootstrap
      resamples of the calibrator's rows (`resamples`), with the platform's own `calibrate`.
      This does not shrink with a larger scored day: it is the same error every day.
    - the calibrator's misfit: a form that cannot follow the model's scores (a sigmoid on scores
      no sigmoid maps) misses even on the rows it was fitted on. `calibration_misfit`: the
      estimate's error on those rows beyond label noise, sqrt(max(0, error^2 - noise^2)) with
      noise = label_noise x the simulated sd there (the squared error's expectation is the
      misfit's square plus noise's, so this is the moment estimate). An isotonic calibrator fits
      its own rows, so shows none there: its error is all fitting error.
    - as a check on the last two, the error on all the held-out rows: both as they fell for this
      model, plus noise, taken beyond noise in the same way.

    The systematic error is the larger of sqrt(fit^2 + misfit^2), what the calibrator's rows
    predict, and the held-out error, what the held-out rows show; a single split can reveal
    a misfit larger than predicted but cannot rule out fitting error below its own noise. The
    factor widens the simulated spread of a scored day of `scale_rows` rows (default: as many as
    held out; the default window's test split is about one day) to hold both:

        factor = sqrt(label_noise^2 + systematic^2 / day_sd^2),
        day_sd = held_out_sd * sqrt(rows / scale_rows).

    A day larger than `scale_rows` has a smaller simulated spread and the same systematic error,
    so its interval is slightly too narrow, and a smaller day's slightly too wide. Without a
    calibrator (`calibration` none) only label noise and the held-out check count: on
    independent rows with exact probabilities the factor is 1 or a little more (the held-out
    error exceeds its noise by chance about a third of the time, and then widens by that).

    What no held-out split sees: a calibrator fitted on one day inherits that day's quirks; days
    that differ from it in ways the features do not show (and concept drift) remain beyond the
    interval: that is what `estimate_gap` is for."""
    labels, scores = labelled_rows(labels, scores)
    if metric not in PERFORMANCE_METRICS:
        raise ValueError(f"unknown metric '{metric}' (known: {', '.join(PERFORMANCE_METRICS)})")
    rows = len(labels)
    if not rows or labels.min() == labels.max():
        raise ValueError("the held-out rows must hold both classes to measure the estimate's error")
    ids = _block_ids(blocks, rows)
    common = dict(threshold=threshold, metric=metric, simulations=simulations)
    standardized = []
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        for number, block in enumerate(np.unique(ids)):
            inside = ids == block
            block_labels = labels[inside]
            if block_labels.min() == block_labels.max():
                continue
            gap, spread = _estimate_error(
                block_labels, scores[inside], seed=seed + 1 + number, **common
            )
            if np.isfinite(gap) and spread > 0:
                standardized.append(gap / spread)
        # Fewer than three blocks cannot tell a spread: label noise is then taken as Bernoulli's.
        noise = max(1.0, float(np.std(standardized, ddof=1))) if len(standardized) >= 3 else 1.0

        def beyond_noise(gap: float, spread: float) -> float:
            """The squared error less label noise's, at least 0."""
            return max(0.0, gap**2 - (noise * spread) ** 2)

        held_out_error, held_out_sd = _estimate_error(labels, scores, seed=seed, **common)
        held_out = beyond_noise(held_out_error, held_out_sd)
        fit = misfit = 0.0
        if calibration != "none":
            if calibration_labels is None or calibration_scores is None:
                raise ValueError(
                    f"a {calibration} calibrator: pass calibration_labels and calibration_scores "
                    "(the rows it was fitted on)"
                )
            own_labels, own_scores = labelled_rows(calibration_labels, calibration_scores)
            fit = _calibration_fit_spread(
                calibration, own_labels, own_scores, scores, threshold, metric,
                seed=seed, resamples=resamples,
            )  # fmt: skip
            own_error, own_sd = _estimate_error(own_labels, own_scores, seed=seed, **common)
            misfit = float(np.sqrt(beyond_noise(own_error, own_sd)))
    systematic = float(np.sqrt(max(fit**2 + misfit**2, held_out)))
    scale = int(scale_rows) if scale_rows else rows
    day_sd = held_out_sd * np.sqrt(rows / scale)
    factor = float(np.sqrt(noise**2 + (systematic / day_sd) ** 2)) if day_sd > 0 else noise
    return EstimateDispersion(
        factor=factor,
        metric=metric,
        rows=rows,
        scale_rows=scale,
        label_noise=noise,
        blocks=len(standardized),
        calibration=calibration,
        calibration_fit=fit,
        calibration_misfit=misfit,
        held_out_error=held_out_error,
        held_out_sd=held_out_sd,
        systematic=systematic,
    )
