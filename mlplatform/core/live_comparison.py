"""After deployment, the live comparison of two model versions on the same labelled rows (paired:
`uncertainty.paired_difference`), in either direction: the shadow challenger against the champion
(promote?) or the champion against the version it replaced (roll back?), each a `LiveVerdict`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mlplatform.core.realized_performance import labelled_rows, probabilities
from mlplatform.core.uncertainty import THRESHOLD_METRICS, Interval, paired_difference

# The actions a live comparison can lead to.
ACTIONS = ("promote", "keep", "rollback", "inconclusive")


@dataclass(frozen=True)
class Direction:
    """Which way a comparison looks: the difference is `newer` - `older` on the same rows, and
    `acts_when` the newer is confidently `better` (promote it) or `worse` (roll it back) by more
    than the margin, the verdict is `action`; otherwise keep. `than_older` names the older one
    in the reasons ("" where the reason needs no name)."""

    newer: str
    older: str
    acts_when: str
    action: str
    than_older: str


DIRECTIONS = {
    # The shadow challenger against the champion.
    "promote": Direction("challenger", "champion", "better", "promote", ""),
    # The champion against the version it replaced.
    "rollback": Direction("champion", "predecessor", "worse", "rollback", " than its predecessor"),
}


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
    labels, newer = labelled_rows(labels, newer)
    older = probabilities(older)
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
    newer_scores: np.ndarray,
    older_scores: np.ndarray,
    metric: str,
    *,
    direction: str,
    margin: float,
    min_positives: int,
    seed: int,
    resamples: int,
    newer_threshold: float | None = None,
    older_threshold: float | None = None,
    confidence: float = 0.95,
) -> LiveVerdict:
    """Two versions scoring the same live labelled rows, compared on the interval of newer -
    older (paired: DeLong for ROC-AUC, a paired bootstrap otherwise; thresholds needed for
    threshold metrics).

    `direction` "promote": the shadow challenger (newer) against the champion (older). promote:
    the interval lies entirely above +`margin` (better by more than `margin` with 95% confidence,
    a one-sided 2.5% test). Registration asks only that the lower end lie above -margin
    (non-inferiority); promotion on live evidence asks for superiority, stricter by twice the
    margin. Judged again every day on a growing pool, the chance that noise alone promotes at
    some point grows with the number of looks: use a margin above 0, or ask for the verdict on
    several consecutive days.

    `direction` "rollback": the champion (newer) against the version it replaced (older).
    rollback: the interval lies entirely below -`margin` (the champion is worse by more than
    `margin` with 95% confidence); whether that moves the alias or only alerts is the caller's
    setting.

    Otherwise keep (the finding says whether the newer one was confidently better, worse or
    neither); inconclusive: fewer than `min_positives` positives."""
    way = DIRECTIONS[direction]
    comparison = f"{way.newer} - {way.older}"
    difference, why, positives, rows = _paired(
        labels, newer_scores, older_scores, metric, (newer_threshold, older_threshold), margin,
        min_positives, seed, resamples, confidence,
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
    found = "better" if difference.low > margin else "worse" if difference.high < -margin else None
    if found is None:
        action, finding = "keep", "not_distinguishable"
        reason = (
            f"Live outcomes do not show the {way.newer} {way.acts_when}{way.than_older} by more "
            f"than {margin}: {shown}."
        )
    else:
        action = way.action if found == way.acts_when else "keep"
        finding = f"{way.newer}_{found}"
        reason = (
            f"The {way.newer} is {found}{way.than_older} on live outcomes by more than {margin}: "
            f"{shown}."
        )
    return _verdict(action, finding, reason, difference=difference, **common)
