"""Quality measurements behind the asset checks: each returns what was observed, against what
threshold, whether it passes, and the details a person needs to see why."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mlplatform.core.contract import Contract
from mlplatform.core.features import LABEL_COLUMN, SPLIT_COLUMN, WAITING, positive_label_flags
from mlplatform.core.uncertainty import Interval, metric_interval

if TYPE_CHECKING:
    from mlplatform.core.calibration import CalibrationReport


@dataclass
class GateOutcome:
    passed: bool
    observed: Any
    threshold: Any
    summary: str
    details: dict[str, Any] = field(default_factory=dict)
    # Too little evidence to judge (a test split with a handful of positives): reported as a
    # warning, never as a block, whatever the gate's severity.
    inconclusive: bool = False


# raw_transactions ---------------------------------------------------------------------------------


def schema_matches_contract(raw: pd.DataFrame, contract: Contract) -> GateOutcome:
    missing = [c for c in contract.event_columns if c not in raw.columns]
    extra = [c for c in raw.columns if c not in contract.event_columns]
    return GateOutcome(
        passed=not missing,
        observed=len(missing),
        threshold=0,
        summary=(
            f"columns missing from the data: {missing}"
            if missing
            else "every contract column is present"
        ),
        details={"missing_columns": missing, "extra_columns": extra},
    )


def not_empty(rows: int, min_rows: int) -> GateOutcome:
    return GateOutcome(
        passed=rows >= min_rows,
        observed=rows,
        threshold=min_rows,
        summary=f"{rows} rows (at least {min_rows} required)",
    )


def freshness(
    latest_event: pd.Timestamp | None, partition_end: pd.Timestamp, max_lag_minutes: float
) -> GateOutcome:
    if latest_event is None or pd.isna(latest_event):
        return GateOutcome(False, None, max_lag_minutes, "no event time at all")
    lag = (partition_end - latest_event).total_seconds() / 60
    return GateOutcome(
        passed=lag <= max_lag_minutes,
        observed=round(lag, 1),
        threshold=max_lag_minutes,
        summary=f"newest event {lag:.0f} min before the end of the day (limit {max_lag_minutes:g})",
        details={"latest_event_time": str(latest_event)},
    )


def volume_in_band(
    rows: int, history: dict[str, int], min_history: int, min_ratio: float, max_ratio: float
) -> GateOutcome:
    """Rows against the median of earlier partitions; passes while history is too short to judge."""
    if len(history) < min_history:
        return GateOutcome(
            True,
            None,
            [min_ratio, max_ratio],
            f"{len(history)} earlier partitions (fewer than {min_history}): not judged yet",
            {"history": history},
        )
    median = statistics.median(history.values())
    ratio = rows / median if median else float("inf")
    return GateOutcome(
        passed=min_ratio <= ratio <= max_ratio,
        observed=round(ratio, 4),
        threshold=[min_ratio, max_ratio],
        summary=(
            f"{rows} rows is {ratio:.2f}x the median {median:g} of {len(history)} earlier "
            f"partitions (allowed {min_ratio}-{max_ratio}x)"
        ),
        details={"median_rows": median, "history": history},
    )


# validated_transactions ---------------------------------------------------------------------------


def max_rate(name: str, value: float, limit: float) -> GateOutcome:
    return GateOutcome(
        value <= limit, round(value, 6), limit, f"{name} {value:.4f} (limit {limit})"
    )


def null_rates(validated: pd.DataFrame, contract: Contract, limit: float) -> GateOutcome:
    nullable = [name for name, spec in contract.event_columns.items() if spec.nullable]
    rates = {c: float(validated[c].isna().mean()) for c in nullable} if len(validated) else {}
    offending = {c: round(r, 6) for c, r in rates.items() if r > limit}
    worst = max(rates.values(), default=0.0)
    return GateOutcome(
        passed=not offending,
        observed=round(worst, 6),
        threshold=limit,
        summary=(
            f"null rate above {limit} in {sorted(offending)}"
            if offending
            else f"highest null rate {worst:.4f} (limit {limit})"
        ),
        details={
            "null_rate_by_column": {c: round(r, 6) for c, r in rates.items()},
            "offending_columns": offending,
        },
    )


def value_ranges(validated: pd.DataFrame, contract: Contract) -> GateOutcome:
    """Every value inside its contract range and category list (a guard on validation itself)."""
    violations: dict[str, int] = {}
    samples: dict[str, list] = {}
    for name, spec in contract.event_columns.items():
        values = validated[name]
        bad = pd.Series(False, index=values.index)
        if spec.min is not None:
            bad |= values < spec.min
        if spec.max is not None:
            bad |= values > spec.max
        if spec.categories is not None:
            allowed = (
                [str(c) for c in spec.categories]
                if spec.type in ("string", "category")
                else spec.categories
            )
            bad |= values.notna() & ~values.isin(allowed)
        if bad.any():
            violations[name] = int(bad.sum())
            samples[name] = values[bad].head(5).astype(str).tolist()
    return GateOutcome(
        passed=not violations,
        observed=sum(violations.values()),
        threshold=0,
        summary=f"values outside the contract: {violations}"
        if violations
        else "all values in range",
        details={"violations_by_column": violations, "sample_values": samples},
    )


def unique_ids(validated: pd.DataFrame, id_column: str) -> GateOutcome:
    duplicated = validated[id_column][validated[id_column].duplicated(keep=False)]
    return GateOutcome(
        passed=duplicated.empty,
        observed=int(duplicated.nunique()),
        threshold=0,
        summary=f"{duplicated.nunique()} ids appear more than once"
        if len(duplicated)
        else "ids unique",
        details={
            "sample_duplicate_ids": duplicated.drop_duplicates().head(10).astype(str).tolist()
        },
    )


def label_rate(validated: pd.DataFrame, contract: Contract, low: float, high: float) -> GateOutcome:
    if contract.labels_from_outcomes:
        # The events carry no label to judge: the labels arrive later, as outcomes.
        return GateOutcome(
            passed=True,
            observed=None,
            threshold=[low, high],
            summary="not judged: labels come from outcomes",
        )
    rate = float(positive_label_flags(validated[contract.target], contract.positive_label).mean())
    return GateOutcome(
        passed=low <= rate <= high,
        observed=round(rate, 6),
        threshold=[low, high],
        summary=f"label rate {rate:.4f} (allowed {low}-{high})",
    )


# features -----------------------------------------------------------------------------------------


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


# models -------------------------------------------------------------------------------------------


def metric_floor(metric: str, interval: Interval, floor: float, min_positives: int) -> GateOutcome:
    """Fails only when the whole 95% interval lies below `floor`; too few positives to judge:
    inconclusive."""
    details = {"interval": [round(interval.low, 6), round(interval.high, 6)],
               "positives": interval.positives, "rows": interval.rows}  # fmt: skip
    if interval.positives < min_positives:
        return GateOutcome(
            False,
            round(interval.value, 6),
            floor,
            f"cannot judge: {interval.describe(metric)}; at least {min_positives} positives "
            f"are needed against the floor {floor}",
            details,
            inconclusive=True,
        )
    below = interval.high < floor
    return GateOutcome(
        not below,
        round(interval.value, 6),
        floor,
        f"{interval.describe(metric)}: "
        + ("confidently below" if below else "not confidently below")
        + f" the floor {floor}",
        details,
    )


def non_inferior(
    metric: str, difference: Interval | None, margin: float, min_positives: int
) -> GateOutcome:
    """The challenger minus the champion on the same rows: passes when the interval's lower end
    lies above -margin (worse by less than `margin` with 95% confidence). No champion: passes."""
    if difference is None:
        return GateOutcome(True, None, -margin, "no champion to compare with")
    details = {"difference_interval": [round(difference.low, 6), round(difference.high, 6)],
               "positives": difference.positives, "margin": margin}  # fmt: skip
    shown = (
        f"challenger - champion {metric} {difference.value:+.4f} "
        f"[{difference.low:+.4f}, {difference.high:+.4f}] on {difference.positives} positives"
    )
    if difference.positives < min_positives:
        return GateOutcome(
            False,
            round(difference.value, 6),
            -margin,
            f"cannot judge: {shown}; at least {min_positives} positives are needed",
            details,
            inconclusive=True,
        )
    passed = difference.low > -margin
    return GateOutcome(
        passed,
        round(difference.value, 6),
        -margin,
        f"{shown}: "
        + ("not worse" if passed else "may be worse")
        + f" than the champion by {margin} or more",
        details,
    )


def reproduces(
    expected: dict[str, float], reproduced: dict[str, float], tolerance: float
) -> GateOutcome:
    differences = {k: abs(expected[k] - reproduced.get(k, float("nan"))) for k in expected}
    off = {k: d for k, d in differences.items() if not d <= tolerance}
    worst = max(differences.values(), default=0.0)
    return GateOutcome(
        passed=not off,
        observed=worst,
        threshold=tolerance,
        summary=(
            f"reloaded model differs on {sorted(off)}"
            if off
            else f"reloaded model reproduces every test metric (max difference {worst:.2g})"
        ),
        details={"expected": expected, "reproduced": reproduced},
    )


def signature_matches(signature_columns: list[str], feature_columns: list[str]) -> GateOutcome:
    missing = [c for c in feature_columns if c not in signature_columns]
    unexpected = [c for c in signature_columns if c not in feature_columns]
    return GateOutcome(
        passed=not missing and not unexpected,
        observed=len(missing) + len(unexpected),
        threshold=0,
        summary=(
            f"signature lacks {missing} and has extra {unexpected}"
            if missing or unexpected
            else "signature inputs are exactly the model's feature columns"
        ),
        details={"signature_columns": signature_columns, "feature_columns": feature_columns},
    )


# A stage's gates together, in the order its asset check reports them. `gates` is the stage's
# section of quality_gates.yaml (read by mlplatform.config, which core does not import).


def raw_transactions_gates(
    raw: pd.DataFrame,
    contract: Contract,
    gates: Any,
    period_end: pd.Timestamp,
    row_count_history: dict[str, int],
    carried_rows: int = 0,
) -> dict[str, GateOutcome]:
    """The raw gates on the day's own rows (`raw` without the `carried_rows` rows of its files
    that fall in no partition, which the partition carries to quarantine)."""
    rows = len(raw)
    latest = None
    if contract.event_time in raw.columns and rows:
        # ISO 8601 as ingestion reads it: without a format pandas takes the first value's layout
        # for every row, and CSV text of mixed precision (`00:00:00`, `00:04:31.576`) became NaT.
        latest = pd.to_datetime(
            raw[contract.event_time], utc=True, errors="coerce", format="ISO8601"
        ).max()
    band = gates.volume_in_band
    outcomes = {
        "schema_matches_contract": schema_matches_contract(raw, contract),
        "not_empty": not_empty(rows, gates.not_empty.min_rows),
        "fresh": freshness(latest, period_end, gates.fresh.max_lag_minutes),
        "volume_in_band": volume_in_band(
            rows, row_count_history, band.min_history, band.min_ratio, band.max_ratio
        ),
    }
    if not rows and carried_rows:
        # The partition holds only rows carried to quarantine (the first partition, for files
        # with no row in any partition). The day is empty and the gate says so, but as a
        # warning: blocking would keep those rows out of quarantine. An empty day still trains
        # nothing: a failed gate keeps its day out of every training window.
        outcomes["not_empty"] = replace(
            outcomes["not_empty"],
            inconclusive=True,
            summary=f"{outcomes['not_empty'].summary}; the partition only carries "
            f"{carried_rows} row(s) dated in no partition, validated to quarantine",
        )
    return outcomes


def validated_transactions_gates(
    validated: pd.DataFrame, quarantined_rows: int, contract: Contract, gates: Any
) -> dict[str, GateOutcome]:
    """The validated gates on the day's own rows: `quarantined_rows` counts the day's own rejects,
    not the rows carried to its quarantine because they fall in no partition."""
    total = len(validated) + quarantined_rows
    rate = quarantined_rows / total if total else 0.0
    band = gates.label_rate
    outcomes = {
        "quarantine_rate": max_rate("quarantine rate", rate, gates.quarantine_rate.max_rate),
        "null_rate": null_rates(validated, contract, gates.null_rate.max_rate),
        "value_ranges": value_ranges(validated, contract),
        "unique_ids": unique_ids(validated, contract.id),
        "label_rate": label_rate(validated, contract, band.min_rate, band.max_rate),
    }
    if not total:
        # No row of the day at all (validation accepts that only when the partition carries rows
        # to quarantine): a label rate of nothing is no finding, and blocking here would fail
        # the run that quarantined them. The day trains nothing anyway: its raw not_empty gate
        # failed, which keeps it out of every training window.
        outcomes["label_rate"] = replace(
            outcomes["label_rate"],
            inconclusive=True,
            summary="no row of the day to judge (only rows dated in no partition, quarantined)",
        )
    return outcomes


def features_gates(
    features: pd.DataFrame, contract: Contract, gates: Any, day: str
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


FLOOR_METRICS = ("accuracy", "roc_auc", "pr_auc", "recall")


def trained_model_gates(
    test_intervals: dict[str, Interval],
    champion_difference: Interval | None,
    gates: Any,
    calibration: CalibrationReport | None,
) -> dict[str, GateOutcome]:
    """The metric floors on the test split's intervals, then non-inferiority against the champion
    on the same rows (`champion_difference` None: there is no champion to compare with), then the
    test split's calibration bins (None: not measured)."""
    from mlplatform.core.calibration import calibration_gate

    outcomes = {
        name: metric_floor(
            name, test_intervals[name], getattr(gates, name).min, getattr(gates, name).min_positives
        )
        for name in FLOOR_METRICS
    }
    rule = gates.not_worse_than_champion
    outcomes["not_worse_than_champion"] = non_inferior(
        rule.metric, champion_difference, rule.margin, rule.min_positives
    )
    outcomes["calibrated"] = calibration_gate(calibration, gates.calibrated.min_positives)
    return outcomes
