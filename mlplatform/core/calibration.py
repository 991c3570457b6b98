"""Probabilities that mean what they say: the chosen model calibrated on held-out rows, and how far
the test split's scores stand from the rates they claim.

Class weights (and the soft vote's averaging) leave a model whose scores rank well but overstate
the positive rate. `calibrate` wraps the fitted model in scikit-learn's CalibratedClassifierCV
around the frozen model, fitted on the validation split: `sigmoid` (Platt: monotone, so the ranking
and ROC-AUC stay) or `isotonic` (a step function: it can tie scores).

`calibration_report` judges the test split's scores in quantile bins (equal rows, so each bin rests
on as many rows as the others): per bin the mean predicted probability, the observed positive rate
with its 95% Wilson interval (scipy), the rows and positives; over all rows the expected
calibration error (ECE: the rows-weighted mean gap between predicted and observed, per bin) and the
Brier score, each with a 95% interval from the same seeded Poisson bootstrap as the test metrics
(`uncertainty`), the bins held fixed. Brier's is the percentile interval, as for the test metrics.
ECE's is the basic (reversed) one, clipped at 0: noise in each bin's observed rate pushes ECE up
(a perfectly calibrated model still reads above 0) and a resample's ECE further up by about as much,
so the percentile interval of a well calibrated model lay wholly above its true ECE; the basic
interval, 2 x ECE minus the resamples' percentiles, takes that push off.

`calibration_gate` passes when every bin's mean predicted probability lies inside its observed
rate's interval. With 10 bins each judged at 95%, a perfectly calibrated model still has some bin
outside in about 40% of samples (simulated, 5,000-50,000 rows): the gate warns, never blocks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from mlplatform.core.gate_outcome import GateOutcome
from mlplatform.core.uncertainty import Interval, _resample_weights

METHODS = ("sigmoid", "isotonic", "none")


def calibrate(model: Any, method: str, x: Any, y: np.ndarray) -> Any:
    """The fitted `model` with its probabilities mapped by a `method` calibrator fitted on `x`,
    `y` (held-out rows); `none`: `model` itself. `FrozenEstimator` keeps the model's fit, so the
    calibrator alone learns from these rows (the cross-validation CalibratedClassifierCV runs over
    them only splits the predictions of the one frozen model: one calibrator on every row)."""
    if method not in METHODS:
        raise ValueError(f"unknown calibration method '{method}' (known: {', '.join(METHODS)})")
    if method == "none":
        return model
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.frozen import FrozenEstimator

    return CalibratedClassifierCV(FrozenEstimator(model), method=method).fit(x, y)


@dataclass(frozen=True)
class CalibrationBin:
    """One quantile bin of the scores: what it predicts against what happened."""

    lowest_score: float
    highest_score: float
    mean_predicted: float
    observed_rate: float
    # The observed rate's 95% interval (Wilson).
    low: float
    high: float
    rows: int
    positives: int

    @property
    def holds(self) -> bool:
        """The bin's expected rate (its mean predicted probability) lies inside the interval of
        its observed rate."""
        return self.low <= self.mean_predicted <= self.high

    def describe(self, number: int, of: int) -> str:
        return (
            f"bin {number} of {of} (scores {self.lowest_score:.4g}-{self.highest_score:.4g}): "
            f"predicted {self.mean_predicted:.4f}, observed {self.observed_rate:.4f} "
            f"[{self.low:.4f}, {self.high:.4f}] ({self.positives} positives in {self.rows} rows)"
        )


@dataclass(frozen=True)
class CalibrationReport:
    ece: Interval
    brier: Interval
    bins: tuple[CalibrationBin, ...]

    @property
    def bins_off(self) -> list[int]:
        """The bins (numbered from 1, lowest scores first) whose expected rate lies outside their
        observed rate's interval."""
        return [number for number, b in enumerate(self.bins, start=1) if not b.holds]

    def to_dict(self) -> dict[str, Any]:
        return {
            "ece": self.ece.to_dict(),
            "brier": self.brier.to_dict(),
            "bins": [asdict(b) for b in self.bins],
        }

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> CalibrationReport:
        return cls(
            Interval(**values["ece"]),
            Interval(**values["brier"]),
            tuple(CalibrationBin(**b) for b in values["bins"]),
        )

    def table(self) -> list[dict[str, Any]]:
        """One flat record per bin, for a table a person reads."""
        return [
            {
                "bin": number,
                "scores": f"{b.lowest_score:.4g}-{b.highest_score:.4g}",
                "mean_predicted": round(b.mean_predicted, 6),
                "observed_rate": round(b.observed_rate, 6),
                "observed_low": round(b.low, 6),
                "observed_high": round(b.high, 6),
                "rows": b.rows,
                "positives": b.positives,
                "holds": b.holds,
            }
            for number, b in enumerate(self.bins, start=1)
        ]


def quantile_bins(scores: np.ndarray, bins: int) -> np.ndarray:
    """Each score's bin (0 .. at most `bins` - 1), cut at the scores' quantiles: equal rows per
    bin, except that equal scores always share a bin (so tied scores, as isotonic calibration
    leaves, can make fewer, uneven bins). Bins are numbered without gaps."""
    if bins < 1:
        raise ValueError(f"bins must be at least 1, not {bins}")
    scores = np.asarray(scores, dtype=float)
    inner = np.unique(np.quantile(scores, np.linspace(0, 1, bins + 1)[1:-1]))
    # A cut at a score puts that score in the bin above it: each bin is [cut, next cut).
    index = np.searchsorted(inner, scores, side="right")
    _, dense = np.unique(index, return_inverse=True)
    return dense


def ece_and_brier(labels: np.ndarray, scores: np.ndarray, bins: int) -> tuple[float, float]:
    """The expected calibration error over `bins` quantile bins, and the Brier score: the point
    values of `calibration_report`, without intervals."""
    labels = np.asarray(labels).astype(float)
    scores = np.asarray(scores, dtype=float)
    index = quantile_bins(scores, bins)
    gaps = np.bincount(index, scores - labels)
    return float(np.abs(gaps).sum() / len(labels)), float(np.mean((scores - labels) ** 2))


def _wilson(positives: np.ndarray, rows: np.ndarray, confidence: float) -> np.ndarray:
    from scipy import stats

    return np.array(
        [
            tuple(stats.binomtest(int(k), int(n)).proportion_ci(confidence, method="wilson"))
            for k, n in zip(positives, rows, strict=True)
        ]
    )


def calibration_report(
    labels: np.ndarray,
    scores: np.ndarray,
    *,
    bins: int,
    seed: int,
    resamples: int,
    confidence: float = 0.95,
) -> CalibrationReport:
    """The test split's calibration: per quantile bin, predicted against observed with the
    observed rate's interval; ECE and Brier score with bootstrap intervals."""
    labels = np.asarray(labels).astype(float)
    scores = np.asarray(scores, dtype=float)
    if not len(labels):
        raise ValueError("a calibration report needs rows")
    index = quantile_bins(scores, bins)
    count = int(index.max()) + 1

    def per_bin(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return (
            np.bincount(index, weights, minlength=count),
            np.bincount(index, weights * scores, minlength=count),
            np.bincount(index, weights * labels, minlength=count),
        )

    squared = (scores - labels) ** 2

    def weighed(weights: np.ndarray) -> tuple[float, float]:
        total = weights.sum()
        _, predicted, observed = per_bin(weights)
        return (
            float(np.abs(predicted - observed).sum() / total),
            float((weights * squared).sum() / total),
        )

    ones = np.ones(len(labels))
    rows, predicted, positives = per_bin(ones)
    ece, brier = weighed(ones)
    draws = np.array(
        [weighed(w) for w in _resample_weights(len(labels), resamples, seed) if w.sum()]
    )
    tail = (1 - confidence) / 2 * 100
    (ece_low, brier_low), (ece_high, brier_high) = np.percentile(draws, [tail, 100 - tail], axis=0)
    ece_low, ece_high = max(0.0, 2 * ece - ece_high), 2 * ece - ece_low
    total_positives, total_rows = int(labels.sum()), len(labels)
    intervals = _wilson(positives, rows, confidence)
    lowest = np.full(count, np.inf)
    highest = np.full(count, -np.inf)
    np.minimum.at(lowest, index, scores)
    np.maximum.at(highest, index, scores)
    return CalibrationReport(
        ece=Interval(
            ece,
            float(ece_low),
            float(ece_high),
            total_positives,
            total_rows,
            f"basic bootstrap ({resamples})",
        ),
        brier=Interval(
            brier,
            float(brier_low),
            float(brier_high),
            total_positives,
            total_rows,
            f"bootstrap ({resamples})",
        ),
        bins=tuple(
            CalibrationBin(
                lowest_score=float(lowest[b]),
                highest_score=float(highest[b]),
                mean_predicted=float(predicted[b] / rows[b]),
                observed_rate=float(positives[b] / rows[b]),
                low=float(intervals[b, 0]),
                high=float(intervals[b, 1]),
                rows=int(rows[b]),
                positives=round(positives[b]),
            )
            for b in range(count)
        ),
    )


def calibration_gate(report: CalibrationReport | None, min_positives: int) -> GateOutcome:
    """Passes when every bin's mean predicted probability lies inside its observed rate's 95%
    interval; otherwise names the bins that do not. Fewer than `min_positives` test positives (or
    no report: a model trained before calibration was measured): inconclusive."""
    if report is None:
        return GateOutcome(
            False, None, 0, "cannot judge: this model's calibration was not measured", {},
            inconclusive=True,
        )  # fmt: skip
    off = report.bins_off
    of = len(report.bins)
    details: dict[str, Any] = {
        "bins": report.table(),
        "bins_off": off,
        "ece_interval": [round(report.ece.low, 6), round(report.ece.high, 6)],
        "brier_interval": [round(report.brier.low, 6), round(report.brier.high, 6)],
        "positives": report.ece.positives,
        "rows": report.ece.rows,
    }
    scores = f"{report.ece.describe('ECE')}; Brier {report.brier.value:.4f}"
    if report.ece.positives < min_positives:
        return GateOutcome(
            False, len(off), 0,
            f"cannot judge: {scores}; at least {min_positives} positives are needed to judge "
            f"{of} bins",
            details, inconclusive=True,
        )  # fmt: skip
    if not off:
        summary = (
            f"each of {of} bins' mean predicted probability lies in its observed rate's 95% "
            f"interval; {scores}"
        )
    else:
        summary = (
            f"{len(off)} of {of} bins predict a rate outside their observed rate's 95% interval: "
            + "; ".join(report.bins[number - 1].describe(number, of) for number in off)
            + f". {scores}"
        )
    return GateOutcome(not off, len(off), 0, summary, details)
