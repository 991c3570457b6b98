"""After deployment, what a model version should be doing on a scored day before its outcomes
arrive: confidence-based performance estimation (NannyML's CBPE) from its calibrated probabilities
alone, with the interval in which the realized metric should fall, widened by the model's
`dispersion` (measured at training by `estimate_dispersion`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mlplatform.core.realized_performance import (
    PERFORMANCE_METRICS,
    interval_numbers,
    probabilities,
    tail_percent,
)
from mlplatform.core.uncertainty import Interval, _Ranking


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
            flat.update(interval_numbers(f"estimated_{name}", interval))
        if self.reason:
            flat["estimated_reason"] = self.reason
        return flat


def simulated_metrics(
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
    scores = probabilities(scores)
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
    drawn = simulated_metrics(ranking, seed=seed, simulations=simulations)
    method = f"CBPE ({simulations} simulated label sets"
    method += ")" if dispersion == 1.0 else f", widened x{dispersion:.3g})"
    metrics = {}
    for name in PERFORMANCE_METRICS:
        values = drawn[name][np.isfinite(drawn[name])]
        low, high = (
            np.percentile(values, [tail_percent(confidence), 100 - tail_percent(confidence)])
            if len(values)
            else (point[name], point[name])
        )
        # Every metric here lies in [0, 1]; so does its widened interval.
        low = max(0.0, point[name] - dispersion * (point[name] - float(low)))
        high = min(1.0, point[name] + dispersion * (float(high) - point[name]))
        metrics[name] = Interval(point[name], low, high, round(expected), rows, method)
    return EstimatedPerformance(float(threshold), rows, expected, metrics, None, dispersion)
