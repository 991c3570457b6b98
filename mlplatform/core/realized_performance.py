"""After deployment, how a model version did on a scored day once its outcomes are known:
ROC-AUC, PR-AUC, precision and recall at the decision threshold (the intervals of
`uncertainty.metric_intervals`), calibration (expected against observed positives, the Brier
score) and coverage (the share of scored rows with an outcome yet). Also the checks of rows and
probabilities the other performance modules share.

Every function takes plain arrays of rows, whatever day they were scored on: when one day holds too
few positives, pool the labelled rows of several scored days (concatenate their labels and scores)
and pass them together; `scored_rows` is then the days' scored rows summed.

No Dagster here; scipy is imported only when an interval is computed.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from mlplatform.core.uncertainty import Interval, _z, metric_intervals

# The metrics reported per scored day and model version, realized and estimated.
PERFORMANCE_METRICS = ("roc_auc", "pr_auc", "precision", "recall")


def tail_percent(confidence: float) -> float:
    return (1 - confidence) / 2 * 100


def interval_numbers(name: str, interval: Interval) -> dict[str, float]:
    return {name: interval.value, f"{name}_low": interval.low, f"{name}_high": interval.high}


def labelled_rows(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(labels)
    scores = np.asarray(scores, dtype=float)
    if labels.shape != scores.shape or labels.ndim != 1:
        raise ValueError(
            f"labels {labels.shape} and scores {scores.shape} must be two arrays of one length"
        )
    if len(labels) and not np.isin(labels, (0, 1)).all():
        raise ValueError("labels must be 0 or 1 (rows without an outcome are left out)")
    return labels.astype(int), probabilities(scores)


def probabilities(scores: np.ndarray) -> np.ndarray:
    scores = np.asarray(scores, dtype=float)
    if scores.ndim != 1:
        raise ValueError(f"scores must be one array of rows, not of shape {scores.shape}")
    if len(scores) and not ((scores >= 0) & (scores <= 1)).all():
        raise ValueError("scores must be probabilities in [0, 1] (and not NaN)")
    return scores


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
            **interval_numbers("expected_positives", self.expected_positives),
            **interval_numbers("observed_positives", self.observed_positives),
            **interval_numbers("brier", self.brier),
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
            flat.update(interval_numbers("coverage", self.coverage))
        for name, interval in (self.metrics or {}).items():
            flat.update(interval_numbers(name, interval))
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
    low, high = np.percentile(drawn, [tail_percent(confidence), 100 - tail_percent(confidence)])
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
    labels, scores = labelled_rows(labels, scores)
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
