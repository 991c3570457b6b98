"""After deployment: how a model version did on a scored day once its outcomes are known
(realized), what it should be doing before they are (estimated from its calibrated probabilities),
and the judgments on both, each a `GateOutcome` or a `LiveVerdict`.

- `realized_performance`: ROC-AUC, PR-AUC, precision and recall at the decision threshold (the
  intervals of `uncertainty.metric_intervals`), calibration (expected against observed positives,
  the Brier score) and coverage (the share of scored rows with an outcome yet).
- `estimated_performance`: confidence-based performance estimation (NannyML's CBPE) from the
  probabilities alone, with the interval in which the realized metric should fall, widened by the
  model's `dispersion`: `estimate_dispersion` measures that factor at training, on held-out rows
  (clustered outcomes, the calibrator's fitting error and misfit), to be stored with the model.
- Judgments: below a floor with confidence is `model_gates.metric_floor` (it fits exactly);
  `down_from_backtest`, `estimate_gap`, `score_drift` here.
- Live comparisons on the same rows (`uncertainty.paired_difference`): `live_comparison`
  (challenger against champion: promote?) and `predecessor_comparison` (champion against the
  version it replaced: roll back?).

Every function takes plain arrays of rows, whatever day they were scored on: when one day holds too
few positives, pool the labelled rows of several scored days (concatenate their labels and scores)
and pass them together; `scored_rows` is then the days' scored rows summed.

No Dagster here; scipy is imported only when an interval is computed.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from mlplatform.core.feature_gates import population_stability_index
from mlplatform.core.gate_outcome import GateOutcome
from mlplatform.core.uncertainty import (
    THRESHOLD_METRICS,
    Interval,
    _Ranking,
    _z,
    metric_intervals,
    paired_difference,
)

# The metrics reported per scored day and model version, realized and estimated.
PERFORMANCE_METRICS = ("roc_auc", "pr_auc", "precision", "recall")
# The actions a live comparison can lead to.
ACTIONS = ("promote", "keep", "rollback", "inconclusive")


def _tail(confidence: float) -> float:
    return (1 - confidence) / 2 * 100


def _interval_numbers(name: str, interval: Interval) -> dict[str, float]:
    return {name: interval.value, f"{name}_low": interval.low, f"{name}_high": interval.high}


def _labelled_rows(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(labels)
    scores = np.asarray(scores, dtype=float)
    if labels.shape != scores.shape or labels.ndim != 1:
        raise ValueError(
            f"labels {labels.shape} and scores {scores.shape} must be two arrays of one length"
        )
    if len(labels) and not np.isin(labels, (0, 1)).all():
        raise ValueError("labels must be 0 or 1 (rows without an outcome are left out)")
    return labels.astype(int), _probabilities(scores)


def _probabilities(scores: np.ndarray) -> np.ndarray:
    scores = np.asarray(scores, dtype=float)
    if scores.ndim != 1:
        raise ValueError(f"scores must be one array of rows, not of shape {scores.shape}")
    if len(scores) and not ((scores >= 0) & (scores <= 1)).all():
        raise ValueError("scores must be probabilities in [0, 1] (and not NaN)")
    return scores


# Realized performance -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Calibration:
    """Do the probabilities mean what they say on the labelled rows?

    `expected_positives`: the sum of the probabilities, with the interval in which the observed
    count falls 95% of the time if the model is calibrated (the Poisson-binomial's normal
    approximation). `observed_positives`: the count, with the exact binomial (Clopper-Pearson)
    interval of the expected count that produced it. Calibrated, roughly: the observed count lies
    inside the expected one's interval. `brier`: the mean squared error of the probabilities, with
    a Poisson-bootstrap interval."""

    expected_positives: Interval
    observed_positives: Interval
    brier: Interval

    def to_metadata(self) -> dict[str, float]:
        return {
            **_interval_numbers("expected_positives", self.expected_positives),
            **_interval_numbers("observed_positives", self.observed_positives),
            **_interval_numbers("brier", self.brier),
        }


@dataclass(frozen=True)
class RealizedPerformance:
    """One scored day (or pooled days) and one model version, on the rows whose outcome is known.

    `metrics` (PERFORMANCE_METRICS, each an `Interval`) is None when the labelled rows cannot rank:
    none yet, or a single class; `calibration` is None only when no row is labelled; `reason` says
    what is missing and why. `coverage` (labelled / scored rows, Wilson interval; its `positives`
    are the labelled positives and its `rows` the scored rows) is None only when nothing was
    scored."""

    threshold: float
    scored_rows: int
    labelled_rows: int
    positives: int
    coverage: Interval | None
    metrics: dict[str, Interval] | None
    calibration: Calibration | None
    reason: str | None = None

    @property
    def inconclusive(self) -> bool:
        return self.metrics is None

    def to_metadata(self) -> dict[str, float | int | str]:
        """Flat values with stable names, for Dagster metadata and Prometheus: `threshold`,
        `scored_rows`, `labelled_rows`, `positives`, `coverage[_low|_high]`, each metric as
        `<metric>`, `<metric>_low`, `<metric>_high` (roc_auc, pr_auc, precision, recall), then
        `expected_positives`, `observed_positives` and `brier` likewise. What could not be computed
        is absent, and `reason` (text) says why."""
        flat: dict[str, float | int | str] = {
            "threshold": self.threshold,
            "scored_rows": self.scored_rows,
            "labelled_rows": self.labelled_rows,
            "positives": self.positives,
        }
        if self.coverage is not None:
            flat.update(_interval_numbers("coverage", self.coverage))
        for name, interval in (self.metrics or {}).items():
            flat.update(_interval_numbers(name, interval))
        if self.calibration is not None:
            flat.update(self.calibration.to_metadata())
        if self.reason:
            flat["reason"] = self.reason
        return flat


def _wilson(successes: int, trials: int, z: float) -> tuple[float, float]:
    share = successes / trials
    spread = z * z / trials
    centre = (share + spread / 2) / (1 + spread)
    half = z * np.sqrt(share * (1 - share) / trials + spread / (4 * trials)) / (1 + spread)
    # At 0 or all successes the bounds are exactly 0 or 1 (the formula leaves rounding there).
    low = 0.0 if successes == 0 else max(0.0, float(centre - half))
    high = 1.0 if successes == trials else min(1.0, float(centre + half))
    return low, high


def _clopper_pearson(successes: int, trials: int, confidence: float) -> tuple[float, float]:
    from scipy import stats

    alpha = 1 - confidence
    low = stats.beta.ppf(alpha / 2, successes, trials - successes + 1) if successes else 0.0
    high = (
        stats.beta.ppf(1 - alpha / 2, successes + 1, trials - successes)
        if successes < trials
        else 1.0
    )
    return float(low), float(high)


def _bootstrap_mean(
    values: np.ndarray, *, seed: int, resamples: int, confidence: float
) -> tuple[float, float]:
    """Percentile interval of the mean of `values` over a seeded Poisson bootstrap, resamples
    drawn a block at a time (one matrix product per block)."""
    rng = np.random.default_rng(seed)
    block = max(1, 2_000_000 // len(values))
    means = []
    for start in range(0, resamples, block):
        weights = rng.poisson(1.0, (min(block, resamples - start), len(values))).astype(float)
        with np.errstate(divide="ignore", invalid="ignore"):
            means.append(weights @ values / weights.sum(axis=1))
    drawn = np.concatenate(means) if means else np.array([])
    drawn = drawn[np.isfinite(drawn)]
    if not len(drawn):
        mean = float(values.mean())
        return mean, mean
    low, high = np.percentile(drawn, [_tail(confidence), 100 - _tail(confidence)])
    return float(low), float(high)


def _calibration(
    labels: np.ndarray, scores: np.ndarray, *, seed: int, resamples: int, confidence: float
) -> Calibration:
    rows, observed = len(labels), int(labels.sum())
    z = _z(confidence)
    expected = float(scores.sum())
    spread = z * float(np.sqrt(np.sum(scores * (1 - scores))))
    low, high = _clopper_pearson(observed, rows, confidence)
    errors = (scores - labels) ** 2
    brier_low, brier_high = _bootstrap_mean(
        errors, seed=seed, resamples=resamples, confidence=confidence
    )
    return Calibration(
        expected_positives=Interval(
            expected,
            max(0.0, expected - spread),
            min(float(rows), expected + spread),
            observed,
            rows,
            "Poisson-binomial, normal approximation",
        ),
        observed_positives=Interval(
            float(observed), low * rows, high * rows, observed, rows, "Clopper-Pearson"
        ),
        brier=Interval(
            float(errors.mean()), brier_low, brier_high, observed, rows, f"bootstrap ({resamples})"
        ),
    )


def realized_performance(
    labels: np.ndarray,
    scores: np.ndarray,
    threshold: float,
    *,
    scored_rows: int,
    seed: int,
    resamples: int,
    confidence: float = 0.95,
) -> RealizedPerformance:
    """How the model did on the rows whose outcome is known (`labels` 0/1, `scores` the model's
    probabilities on those same rows) among `scored_rows` scored: each metric with its 95%
    interval (ROC-AUC by DeLong, the rest by a seeded Poisson bootstrap of `resamples`).

    Degrades rather than fails: no labelled row gives coverage alone; labelled rows of a single
    class give coverage and calibration but no ranking or threshold metric (`reason` says so).
    With a handful of positives the intervals are honest and wide: judge them with the gates'
    `min_positives`, or pool several days' labelled rows (see the module's docstring)."""
    labels, scores = _labelled_rows(labels, scores)
    rows, positives = len(labels), int(labels.sum())
    if scored_rows < rows:
        raise ValueError(f"{rows} labelled rows but only {scored_rows} scored rows")
    coverage = None
    if scored_rows:
        coverage = Interval(
            rows / scored_rows,
            *_wilson(rows, scored_rows, _z(confidence)),
            positives,
            scored_rows,
            "Wilson",
        )
    common = dict(
        threshold=float(threshold),
        scored_rows=int(scored_rows),
        labelled_rows=rows,
        positives=positives,
        coverage=coverage,
    )
    if not rows:
        reason = (
            f"none of the {scored_rows} scored rows has a known outcome yet"
            if scored_rows
            else "no rows were scored"
        )
        return RealizedPerformance(**common, metrics=None, calibration=None, reason=reason)
    calibration = _calibration(
        labels, scores, seed=seed, resamples=resamples, confidence=confidence
    )
    if positives in (0, rows):
        reason = (
            f"the {rows} labelled rows hold only one class ({positives} positives): ranking and "
            "threshold metrics need both"
        )
        return RealizedPerformance(**common, metrics=None, calibration=calibration, reason=reason)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        # One positive (or negative) leaves DeLong's variance undefined: its interval is then
        # [0, 1], which is what one positive says.
        warnings.simplefilter("ignore", RuntimeWarning)
        intervals = metric_intervals(
            labels, scores, threshold, seed=seed, resamples=resamples, confidence=confidence
        )
    metrics = {name: intervals[name] for name in PERFORMANCE_METRICS}
    return RealizedPerformance(**common, metrics=metrics, calibration=calibration)


# Estimated performance ----------------------------------------------------------------------------


@dataclass(frozen=True)
class EstimatedPerformance:
    """What the metrics should be if the probabilities are calibrated, each an `Interval` whose
    value is CBPE's estimate and whose bounds hold the realized metric 95% of the time (its
    `positives` are the expected positives, rounded). None, with `reason`, when there is nothing
    to rank (no row, or no expected positive or negative)."""

    threshold: float
    rows: int
    expected_positives: float
    metrics: dict[str, Interval] | None
    reason: str | None = None
    # The factor the simulated intervals were widened by (`estimate_dispersion`); 1: not widened.
    dispersion: float = 1.0

    def to_metadata(self) -> dict[str, float | int | str]:
        """`estimated_rows`, `estimated_positives`, `estimated_dispersion`,
        `estimated_<metric>[_low|_high]` for roc_auc, pr_auc, precision, recall;
        `estimated_reason` (text) when they are absent."""
        flat: dict[str, float | int | str] = {
            "estimated_rows": self.rows,
            "estimated_positives": self.expected_positives,
            "estimated_dispersion": self.dispersion,
        }
        for name, interval in (self.metrics or {}).items():
            flat.update(_interval_numbers(f"estimated_{name}", interval))
        if self.reason:
            flat["estimated_reason"] = self.reason
        return flat


def _simulated_metrics(
    ranking: _Ranking, *, seed: int, simulations: int, block_cells: int = 4_000_000
) -> dict[str, np.ndarray]:
    """Every metric of PERFORMANCE_METRICS on `simulations` label sets drawn row by row from
    Bernoulli(probability), all on the one sort of `ranking` (whose `labels` are the
    probabilities, in descending order). ROC-AUC is the rank sum of the drawn positives (midranks
    for ties): one matrix product per block of simulations."""
    probability, ends, flagged = ranking.labels, ranking.group_ends, ranking.flagged
    rows = len(probability)
    starts = np.r_[0, ends[:-1] + 1]
    # Ascending midrank of each row: a tie group at descending positions s..e holds ranks
    # rows - e .. rows - s.
    midrank = np.repeat(rows - (starts + ends) / 2, ends - starts + 1)
    rng = np.random.default_rng(seed)
    drawn: dict[str, list[np.ndarray]] = {name: [] for name in PERFORMANCE_METRICS}
    block = max(1, block_cells // rows)
    for start in range(0, simulations, block):
        outcome = rng.random((min(block, simulations - start), rows)) < probability
        positives = outcome.sum(axis=1).astype(float)
        negatives = rows - positives
        rank_sum = outcome.astype(float) @ midrank
        true_pos = np.cumsum(outcome, axis=1, dtype=np.int32)[:, ends].astype(float)
        flagged_tp = outcome[:, :flagged].sum(axis=1).astype(float)
        with np.errstate(divide="ignore", invalid="ignore"):
            drawn["roc_auc"].append(
                (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)
            )
            gained = np.diff(true_pos, axis=1, prepend=0.0)
            drawn["pr_auc"].append((gained * (true_pos / (ends + 1))).sum(axis=1) / positives)
            drawn["precision"].append(flagged_tp / flagged if flagged else np.zeros(len(outcome)))
            drawn["recall"].append(flagged_tp / positives)
    return {name: np.concatenate(values) for name, values in drawn.items()}


def estimated_performance(
    scores: np.ndarray,
    threshold: float,
    *,
    seed: int,
    simulations: int,
    confidence: float = 0.95,
    dispersion: float = 1.0,
) -> EstimatedPerformance:
    """Performance before the outcomes arrive, from the model's calibrated probabilities alone
    (confidence-based performance estimation, as NannyML's CBPE).

    The estimate: a row scored p is expected to be p of a positive and 1 - p of a negative, so the
    expected confusion matrix at each threshold is the cumulated probabilities of the rows above
    it. ROC-AUC is the area under that expected TPR/FPR curve (CBPE's estimator), PR-AUC the
    average precision of the expected precision/recall curve, precision and recall at the decision
    threshold sum(p of flagged rows) / flagged rows and / sum(p).

    The interval: where the realized metric on these rows should fall. Labels are drawn
    `simulations` times (seeded) from Bernoulli(p), every metric is computed on each draw against
    the one sort of the scores, and the interval is the draws' central 95%. At 50,000 rows and 200
    simulations this takes a fraction of a second.

    That interval holds only the label noise of independent rows under a calibrator that is
    exactly right. `dispersion` (at least 1; `estimate_dispersion` measures it for a model at
    training, on its held-out rows) widens each side of every metric's interval around the
    estimate by that factor, for what the simulation leaves out: labels clustered beyond
    Bernoulli (fraud bursts on one card), the calibrator's fitting error and its misfit. Each
    interval's `method` says by how much.

    What it cannot see: anything that changes the link between inputs and outcome while the
    probabilities stay where they were. It assumes calibration still holds, so concept drift
    (fraud that now looks like what used to be legitimate, a new attack the model scores low)
    leaves the estimate unmoved; only realized performance shows it, once outcomes arrive
    (`estimate_gap` then fails). A shift in the inputs moves the estimate only through the
    scores. Compare with realized figures on the same rows: a realized figure on a biased subset
    of them (outcomes of one class arriving first) is not what this estimates."""
    if not (np.isfinite(dispersion) and dispersion > 0):
        raise ValueError(f"dispersion must be a positive factor (1: not widened), not {dispersion}")
    dispersion = float(dispersion)
    scores = _probabilities(scores)
    rows, expected = len(scores), float(scores.sum())
    if not rows or expected in (0.0, float(rows)):
        reason = (
            "no rows to estimate on"
            if not rows
            else f"every probability of the {rows} rows is {expected / rows:g}: nothing to rank"
        )
        return EstimatedPerformance(float(threshold), rows, expected, None, reason, dispersion)
    # The probabilities stand where labels would: cumulated, they are the expected counts.
    ranking = _Ranking.of(scores, scores, threshold)
    with np.errstate(divide="ignore", invalid="ignore"):
        point = ranking.metrics(np.ones(rows))
    drawn = _simulated_metrics(ranking, seed=seed, simulations=simulations)
    method = f"CBPE ({simulations} simulated label sets"
    method += ")" if dispersion == 1.0 else f", widened x{dispersion:.3g})"
    metrics = {}
    for name in PERFORMANCE_METRICS:
        values = drawn[name][np.isfinite(drawn[name])]
        low, high = (
            np.percentile(values, [_tail(confidence), 100 - _tail(confidence)])
            if len(values)
            else (point[name], point[name])
        )
        # Every metric here lies in [0, 1]; so does its widened interval.
        low = max(0.0, point[name] - dispersion * (point[name] - float(low)))
        high = min(1.0, point[name] + dispersion * (float(high) - point[name]))
        metrics[name] = Interval(point[name], low, high, round(expected), rows, method)
    return EstimatedPerformance(float(threshold), rows, expected, metrics, None, dispersion)


# How much wider than label noise the estimate's interval must be ---------------------------------


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
    drawn = _simulated_metrics(ranking, seed=seed, simulations=simulations)[metric]
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
    labels, scores = _labelled_rows(labels, scores)
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
            own_labels, own_scores = _labelled_rows(calibration_labels, calibration_scores)
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


# Judgments ----------------------------------------------------------------------------------------


def _rounded(interval: Interval) -> list[float]:
    return [round(interval.low, 6), round(interval.high, 6)]


def _cannot_judge(threshold: object, summary: str, details: dict | None = None) -> GateOutcome:
    return GateOutcome(False, None, threshold, summary, details or {}, inconclusive=True)


def down_from_backtest(
    metric: str,
    realized: Interval | None,
    backtest: Interval,
    margin: float,
    min_positives: int,
    confidence: float = 0.95,
) -> GateOutcome:
    """Fails when the realized metric is below the model's own backtest (its test split at
    training) by more than `margin` with confidence: the upper end of the interval of
    realized - backtest lies below -margin.

    The two rest on different rows, so the difference is unpaired: its standard error combines the
    two estimates' errors, each read from its interval on the side facing the other (the realized
    interval's upper half, the backtest's lower half; asymmetric bootstrap intervals stay honest).
    Inconclusive without a realized figure or with fewer than `min_positives` positives in either.
    """
    if realized is None:
        return _cannot_judge(-margin, f"cannot judge: no realized {metric} yet")
    details = {"realized": realized.to_dict(), "backtest": backtest.to_dict(), "margin": margin}
    fewest = min(realized.positives, backtest.positives)
    if fewest < min_positives:
        return _cannot_judge(
            -margin,
            f"cannot judge: realized {realized.describe(metric)} against backtest "
            f"{backtest.value:.4f}; at least {min_positives} positives are needed in each",
            details,
        )
    z = _z(confidence)
    spread = np.hypot((realized.high - realized.value) / z, (backtest.value - backtest.low) / z)
    difference = realized.value - backtest.value
    low, high = difference - z * spread, difference + z * spread
    details["difference_interval"] = [round(low, 6), round(high, 6)]
    down = high < -margin
    return GateOutcome(
        not down,
        round(difference, 6),
        -margin,
        f"realized - backtest {metric} {difference:+.4f} [{low:+.4f}, {high:+.4f}] "
        f"(realized {realized.value:.4f} on {realized.positives} positives, backtest "
        f"{backtest.value:.4f} on {backtest.positives}): "
        + ("confidently" if down else "not confidently")
        + f" down by more than {margin}",
        details,
    )


def estimate_gap(
    metric: str,
    realized: Interval | None,
    estimated: Interval | None,
    tolerance: float,
    min_positives: int,
) -> GateOutcome:
    """Fails when the realized metric lies outside the estimate's interval widened by `tolerance`
    on each side: the estimate missed (concept drift, or calibration lost), in either direction.

    The estimate's interval already is where the realized metric falls 95% of the time if the
    probabilities are calibrated (it holds the realized figure's sampling noise), so the realized
    point is judged against it, not the realized interval (that would count the same noise
    twice). An estimate made on more rows than the realized figure rests on (all of a day's scored
    rows, outcomes still arriving) has its interval widened by sqrt(estimated rows / realized
    rows), as that noise grows on fewer rows. Inconclusive with fewer than `min_positives`
    realized positives or without either figure."""
    if realized is None or estimated is None:
        missing = "realized" if realized is None else "estimated"
        return _cannot_judge(tolerance, f"cannot judge: no {missing} {metric}")
    details = {"realized": realized.to_dict(), "estimated": estimated.to_dict()}
    if realized.positives < min_positives:
        return _cannot_judge(
            tolerance,
            f"cannot judge: realized {realized.describe(metric)}; at least {min_positives} "
            "positives are needed",
            details,
        )
    widen = float(np.sqrt(estimated.rows / realized.rows)) if realized.rows else 1.0
    low = estimated.value - (estimated.value - estimated.low) * widen - tolerance
    high = estimated.value + (estimated.high - estimated.value) * widen + tolerance
    details.update(range=[round(low, 6), round(high, 6)], tolerance=tolerance, widened=widen)
    side = "below" if realized.value < low else "above" if realized.value > high else "within"
    return GateOutcome(
        side == "within",
        round(realized.value, 6),
        [round(low, 6), round(high, 6)],
        f"realized {metric} {realized.value:.4f} lies {side} the estimate's range "
        f"[{low:.4f}, {high:.4f}] (estimate {estimated.value:.4f}, tolerance {tolerance})"
        + ("" if side == "within" else ": the estimate missed (concept drift or lost calibration)"),
        details,
    )


def score_drift(
    reference_scores: np.ndarray, current_scores: np.ndarray, max_psi: float, bins: int = 10
) -> GateOutcome:
    """PSI of the day's scores against reference scores (the backtest's, or earlier days'):
    fails above `max_psi`. Nothing to compare with: passes, not judged."""
    reference = np.asarray(reference_scores, dtype=float)
    current = np.asarray(current_scores, dtype=float)
    if not len(reference) or not len(current):
        return GateOutcome(True, None, max_psi, "no scores to compare: not judged yet")
    psi = population_stability_index(reference, current, bins)
    return GateOutcome(
        psi <= max_psi,
        round(psi, 4),
        max_psi,
        f"score PSI {psi:.3f} (limit {max_psi})",
        {
            "reference_rows": len(reference),
            "current_rows": len(current),
            "reference_mean_score": round(float(reference.mean()), 6),
            "current_mean_score": round(float(current.mean()), 6),
        },
    )


# Live comparisons on the same rows ----------------------------------------------------------------


@dataclass(frozen=True)
class LiveVerdict:
    """A decision from live outcomes. `action`: promote, keep, rollback or inconclusive;
    `finding`: what the interval showed (challenger_better, challenger_worse, champion_worse,
    champion_better, not_distinguishable, too_few_positives); `reason`: one sentence; `evidence`:
    text values (MLflow tags take text) with the interval's numbers: comparison, metric,
    difference, difference_low, difference_high, margin, positives, rows, method, finding,
    action."""

    action: str
    finding: str
    reason: str
    difference: Interval | None
    evidence: dict[str, str]


def _verdict(
    action: str,
    finding: str,
    reason: str,
    comparison: str,
    metric: str,
    margin: float,
    difference: Interval | None,
    positives: int,
    rows: int,
) -> LiveVerdict:
    evidence = {
        "comparison": comparison,
        "metric": metric,
        "margin": f"{margin:g}",
        "positives": str(positives),
        "rows": str(rows),
        "finding": finding,
        "action": action,
    }
    if difference is not None:
        evidence.update(
            difference=f"{difference.value:.6f}",
            difference_low=f"{difference.low:.6f}",
            difference_high=f"{difference.high:.6f}",
            method=difference.method,
        )
    return LiveVerdict(action, finding, reason, difference, evidence)


def _paired(
    labels: np.ndarray,
    newer: np.ndarray,
    older: np.ndarray,
    metric: str,
    thresholds: tuple[float | None, float | None],
    margin: float,
    min_positives: int,
    seed: int,
    resamples: int,
    confidence: float,
) -> tuple[Interval | None, str | None, int, int]:
    """newer - older on the same labelled rows, or why it cannot be judged."""
    if margin < 0:
        raise ValueError(f"margin must be 0 or more, not {margin}")
    labels, newer = _labelled_rows(labels, newer)
    older = _probabilities(older)
    if older.shape != newer.shape:
        raise ValueError("both models must score the same rows")
    if metric in THRESHOLD_METRICS and None in thresholds:
        raise ValueError(f"{metric} needs both models' decision thresholds")
    rows, positives = len(labels), int(labels.sum())
    if positives < min_positives or rows - positives < 1:
        return (
            None,
            f"{positives} positives in {rows} labelled rows: at least {min_positives} positives "
            "(and one negative) are needed to judge",
            positives,
            rows,
        )
    newer_threshold, older_threshold = (0.5 if t is None else t for t in thresholds)
    difference = paired_difference(
        labels,
        newer,
        older,
        metric,
        threshold_challenger=newer_threshold,
        threshold_champion=older_threshold,
        seed=seed,
        resamples=resamples,
        confidence=confidence,
    )
    return difference, None, positives, rows


def _shown(name: str, metric: str, difference: Interval) -> str:
    return (
        f"{name} {metric} {difference.value:+.4f} [{difference.low:+.4f}, {difference.high:+.4f}]"
        f" on {difference.positives} live positives"
    )


def live_comparison(
    labels: np.ndarray,
    champion_scores: np.ndarray,
    challenger_scores: np.ndarray,
    metric: str,
    *,
    margin: float,
    min_positives: int,
    seed: int,
    resamples: int,
    champion_threshold: float | None = None,
    challenger_threshold: float | None = None,
    confidence: float = 0.95,
) -> LiveVerdict:
    """The shadow challenger against the champion on the same live labelled rows (paired: DeLong
    for ROC-AUC, a paired bootstrap otherwise; thresholds needed for threshold metrics).

    promote: the interval of challenger - champion lies entirely above +`margin` (better by more
    than `margin` with 95% confidence, a one-sided 2.5% test). Registration asks only that the
    lower end lie above -margin (non-inferiority); promotion on live evidence asks for
    superiority, stricter by twice the margin. keep: not distinguishable, or the challenger worse.
    inconclusive: fewer than `min_positives` positives.

    Judged again every day on a growing pool, the chance that noise alone promotes at some point
    grows with the number of looks: use a margin above 0, or ask for the verdict on several
    consecutive days."""
    comparison = "challenger - champion"
    difference, why, positives, rows = _paired(
        labels, challenger_scores, champion_scores, metric,
        (challenger_threshold, champion_threshold), margin, min_positives, seed, resamples,
        confidence,
    )  # fmt: skip
    common = dict(
        comparison=comparison, metric=metric, margin=margin, positives=positives, rows=rows
    )
    if difference is None:
        return _verdict(
            "inconclusive", "too_few_positives", f"Cannot compare on live outcomes: {why}.",
            difference=None, **common,
        )  # fmt: skip
    shown = _shown(comparison, metric, difference)
    if difference.low > margin:
        action, finding = "promote", "challenger_better"
        reason = f"The challenger is better on live outcomes by more than {margin}: {shown}."
    elif difference.high < -margin:
        action, finding = "keep", "challenger_worse"
        reason = f"The challenger is worse on live outcomes by more than {margin}: {shown}."
    else:
        action, finding = "keep", "not_distinguishable"
        reason = f"Live outcomes do not show the challenger better by more than {margin}: {shown}."
    return _verdict(action, finding, reason, difference=difference, **common)


def predecessor_comparison(
    labels: np.ndarray,
    champion_scores: np.ndarray,
    predecessor_scores: np.ndarray,
    metric: str,
    *,
    margin: float,
    min_positives: int,
    seed: int,
    resamples: int,
    champion_threshold: float | None = None,
    predecessor_threshold: float | None = None,
    confidence: float = 0.95,
) -> LiveVerdict:
    """The champion against the version it replaced, both scoring the same live rows (paired, as
    `live_comparison`).

    rollback: the interval of champion - predecessor lies entirely below -`margin` (the champion
    is worse by more than `margin` with 95% confidence); whether that moves the alias or only
    alerts is the caller's setting. keep: otherwise. inconclusive: too few positives."""
    comparison = "champion - predecessor"
    difference, why, positives, rows = _paired(
        labels, champion_scores, predecessor_scores, metric,
        (champion_threshold, predecessor_threshold), margin, min_positives, seed, resamples,
        confidence,
    )  # fmt: skip
    common = dict(
        comparison=comparison, metric=metric, margin=margin, positives=positives, rows=rows
    )
    if difference is None:
        return _verdict(
            "inconclusive", "too_few_positives", f"Cannot compare on live outcomes: {why}.",
            difference=None, **common,
        )  # fmt: skip
    shown = _shown(comparison, metric, difference)
    if difference.high < -margin:
        return _verdict(
            "rollback", "champion_worse",
            f"The champion is worse than its predecessor on live outcomes by more than {margin}:"
            f" {shown}.",
            difference=difference, **common,
        )  # fmt: skip
    return _verdict(
        "keep", "not_distinguishable" if difference.low <= margin else "champion_better",
        f"Live outcomes do not show the champion worse than its predecessor by more than "
        f"{margin}: {shown}.",
        difference=difference, **common,
    )  # fmt: skip
