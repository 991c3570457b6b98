"""The gates of a feature window: finite values, drift of the day against the window's earlier
days (PSI) and target leakage (a feature that alone predicts the target), each a `GateOutcome`,
and together as the features check reports them (`gates`: the features section of
quality_gates.yaml, read by mlplatform.config, which core does not import)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd

from mlplatform.core.contract import Contract
from mlplatform.core.features import LABEL_COLUMN, SPLIT_COLUMN, WAITING
from mlplatform.core.gate_outcome import GateOutcome
from mlplatform.core.uncertainty import Interval, metric_interval


def finite_values(
    features: pd.DataFrame, categorical: list[str], numeric: list[str]
) -> GateOutcome:
    """No infinity in numeric features (the model takes NaN as missing, not inf) and no missing
    categories (missing values are encoded as their own category upstream)."""
    problems: dict[str, int] = {}
    for column in numeric:
        count = int(np.isinf(features[column].to_numpy(dtype="float64")).sum())
        if count:
            problems[column] = count
    for column in categorical:
        count = int(features[column].isna().sum())
        if count:
            problems[column] = count
    return GateOutcome(
        passed=not problems,
        observed=sum(problems.values()),
        threshold=0,
        summary=f"non-finite or missing values: {problems}" if problems else "all values usable",
        details={"offending_columns": problems},
    )


def population_stability_index(reference: np.ndarray, current: np.ndarray, bins: int = 10) -> float:
    """PSI of the present values over quantile bins of the reference.

    Missing values are left out: history-based features are missing more often while a feature
    window fills up, which is not drift (missing rates are watched by the null-rate gate).
    """
    reference = np.asarray(reference, dtype="float64")
    current = np.asarray(current, dtype="float64")
    reference = reference[~np.isnan(reference)]
    current = current[~np.isnan(current)]
    if not len(reference) or not len(current):
        return 0.0
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)))[1:-1]

    def shares(values: np.ndarray) -> np.ndarray:
        counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)
        return np.clip(counts / len(values), 1e-4, None)

    expected, actual = shares(reference), shares(current)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def drift(
    features: pd.DataFrame,
    day_rows: pd.Series,
    numeric: list[str],
    max_psi: float,
    bins: int,
) -> GateOutcome:
    """PSI of each numeric feature: the partition's day against the earlier days of the window
    (the data the model mostly learned from). The first day of a window has nothing to compare to.
    """
    reference = features[~day_rows]
    current = features[day_rows]
    if reference.empty or current.empty:
        return GateOutcome(
            True, None, max_psi, "no earlier days in the window to compare with: not judged yet"
        )
    psi = {c: round(population_stability_index(reference[c], current[c], bins), 4) for c in numeric}
    drifted = {c: v for c, v in psi.items() if v > max_psi}
    worst = max(psi.values(), default=0.0)
    return GateOutcome(
        passed=not drifted,
        observed=worst,
        threshold=max_psi,
        summary=(
            f"drifted features (PSI > {max_psi}): {drifted}"
            if drifted
            else f"highest PSI {worst:.3f} (limit {max_psi})"
        ),
        details={
            "psi_by_feature": psi,
            "drifted_features": drifted,
            "reference_rows": len(reference),
            "current_rows": len(current),
        },
    )


def _ranking(values: pd.Series, labels: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """One feature on `rows` as a ranking of the target. A numeric feature is its values (a
    missing one: the median). A categorical one is its categories' positive rates, cross-fit:
    the older half of `rows` scored by rates fit on the newer half and the newer by the older,
    so no row is scored by its own label (which would make a many-level column look predictive)
    and every row, every positive, is judged."""
    part = values.iloc[rows]
    if part.dtype != object:
        score = part.to_numpy(dtype="float64")
        missing = np.isnan(score)
        return np.where(missing, np.nanmedian(score) if (~missing).any() else 0, score)
    keys, outcome = part.to_numpy(), labels[rows]
    score = np.empty(len(rows))
    older, newer = _older_and_newer(np.arange(len(rows)))
    for judged, fit in ((older, newer), (newer, older)):
        rates = pd.Series(outcome[fit]).groupby(keys[fit]).mean()
        prior = float(outcome[fit].mean()) if len(fit) else 0.5
        score[judged] = pd.Series(keys[judged]).map(rates).fillna(prior).to_numpy(dtype=float)
    return score


def single_feature_auc(values: pd.Series, labels: np.ndarray, rows: np.ndarray) -> Interval | None:
    """How well one feature alone ranks the target on `rows` (0.5 = not at all, 1 = perfectly,
    either way round), with DeLong's 95% interval; None when the rows hold one class only."""
    outcome = labels[rows].astype(int)
    if len(outcome) == 0 or outcome.min() == outcome.max():
        return None
    auc = metric_interval(
        outcome, _ranking(values, labels, rows), 0.5, "roc_auc", seed=0, resamples=0
    )
    if auc.value >= 0.5:
        return auc
    return Interval(1 - auc.value, 1 - auc.high, 1 - auc.low, auc.positives, auc.rows, auc.method)


def _older_and_newer(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    half = len(rows) // 2
    return rows[:half], rows[half:]


def no_target_leakage(
    features: pd.DataFrame,
    columns: list[str],
    max_auc: float,
    day_rows: pd.Series,
    sample_rows: int | None = None,
    *,
    min_positives: int,
) -> GateOutcome:
    """The ROC-AUC of each feature on its own, with its 95% interval, on the training split and
    on the partition's day (a leak that starts today shows there first). A feature fails only
    when the lower end of its interval reaches `max_auc`: a point estimate on a few positives
    (a fresh backfill's first day) can land near 1 by chance. A sample with fewer than
    `min_positives` positives is not judged; when neither has that many, the gate cannot judge
    (inconclusive: a warning).

    Each of the two is judged on at most `sample_rows` rows, drawn with a fixed seed: a leak puts
    a feature's AUC near 1, which half a million rows measure to about a thousandth, while every
    row of a 10M-row window would cost a sort per feature and a copy of the split."""
    rng = np.random.default_rng(0)
    labels = features[LABEL_COLUMN].to_numpy()
    samples = {
        "train": np.flatnonzero((features[SPLIT_COLUMN] == "train").to_numpy()),
        # The day's rows whose labels are known (with a label delay, none yet).
        "day": np.flatnonzero((day_rows & (features[SPLIT_COLUMN] != WAITING)).to_numpy()),
    }
    if sample_rows is not None:
        samples = {
            name: np.sort(rng.choice(rows, sample_rows, replace=False))
            if len(rows) > sample_rows
            else rows
            for name, rows in samples.items()
        }
    positives = {name: int(labels[rows].sum()) for name, rows in samples.items()}
    judged_samples = {n: r for n, r in samples.items() if positives[n] >= min_positives}
    best: dict[str, tuple[str, Interval]] = {}  # per feature: its highest lower end
    for column in columns:
        for name, rows in judged_samples.items():
            auc = single_feature_auc(features[column], labels, rows)
            if auc is not None and (column not in best or auc.low > best[column][1].low):
                best[column] = (name, auc)
    aucs = {c: round(auc.value, 4) for c, (_, auc) in best.items()}
    leaking = {c: round(auc.value, 4) for c, (_, auc) in best.items() if auc.low >= max_auc}
    strongest = max(best.items(), key=lambda item: item[1][1].value, default=None)
    details = {
        "single_feature_auc": aucs,
        "leaking_features": leaking,
        "auc_by_feature": [
            {
                "feature": c,
                "judged_on": name,
                "auc": round(auc.value, 4),
                "low": round(auc.low, 4),
                "high": round(auc.high, 4),
                "positives": auc.positives,
            }
            for c, (name, auc) in sorted(best.items(), key=lambda item: -item[1][1].low)
        ],
        "rows_judged": {name: len(rows) for name, rows in samples.items()},
        "positives_judged": positives,
    }
    if not judged_samples:
        return GateOutcome(
            False,
            None,
            max_auc,
            f"cannot judge: {positives['train']} positives in the training split and "
            f"{positives['day']} on the day; at least {min_positives} are needed",
            details,
            inconclusive=True,
        )
    if strongest is None:
        summary = "no feature could be judged (one class only)"
    else:
        column, (name, auc) = strongest
        summary = (
            f"features that alone predict the target (95% interval at or above {max_auc}): "
            f"{leaking}"
            if leaking
            else f"strongest single feature {column}: {auc.describe('ROC-AUC')} on the {name} "
            f"rows, not confidently at or above the limit {max_auc}"
        )
    return GateOutcome(
        passed=not leaking,
        observed=max(aucs.values(), default=0.5),
        threshold=max_auc,
        summary=summary,
        details=details,
    )


def features_gates(
    features: pd.DataFrame, contract: Contract, gates: Any, day: dt.date
) -> dict[str, GateOutcome]:
    from mlplatform.core.days import on_day
    from mlplatform.core.features import model_columns

    categorical, numeric = model_columns(features, contract)
    day_rows = on_day(features[contract.event_time], day)
    return {
        "finite_values": finite_values(features, categorical, numeric),
        "drift": drift(features, day_rows, numeric, gates.drift.max_psi, gates.drift.bins),
        "no_target_leakage": no_target_leakage(
            features,
            [*categorical, *numeric],
            gates.no_target_leakage.max_single_feature_auc,
            day_rows,
            gates.no_target_leakage.sample_rows,
            min_positives=gates.no_target_leakage.min_positives,
        ),
    }
