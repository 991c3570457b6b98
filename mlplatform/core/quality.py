"""Quality measurements behind the asset checks: each returns what was observed, against what
threshold, whether it passes, and the details a person needs to see why."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mlplatform.core.contract import Contract
from mlplatform.core.features import LABEL_COLUMN, SPLIT_COLUMN, positive_label_flags


@dataclass
class GateOutcome:
    passed: bool
    observed: Any
    threshold: Any
    summary: str
    details: dict[str, Any] = field(default_factory=dict)


# raw_transactions ---------------------------------------------------------------------------------


def schema_matches_contract(raw: pd.DataFrame, contract: Contract) -> GateOutcome:
    missing = [c for c in contract.columns if c not in raw.columns]
    extra = [c for c in raw.columns if c not in contract.columns]
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
    nullable = [name for name, spec in contract.columns.items() if spec.nullable]
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
    for name, spec in contract.columns.items():
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


def single_feature_auc(values: pd.Series, labels: np.ndarray) -> float:
    """How well one feature alone ranks the target (0.5 = not at all, 1 = perfectly)."""
    from sklearn.metrics import roc_auc_score

    if values.dtype == object:
        rates = pd.Series(labels, index=values.index).groupby(values).transform("mean")
        score = rates.to_numpy(dtype="float64")
    else:
        score = values.to_numpy(dtype="float64")
        score = np.where(
            np.isnan(score), np.nanmedian(score) if np.isfinite(score).any() else 0, score
        )
    if len(np.unique(labels)) < 2:
        return 0.5
    auc = float(roc_auc_score(labels, score))
    return max(auc, 1 - auc)


def no_target_leakage(
    features: pd.DataFrame,
    columns: list[str],
    max_auc: float,
    day_rows: pd.Series,
    sample_rows: int | None = None,
) -> GateOutcome:
    """The ROC-AUC of each feature on its own, on the training split and on the partition's day
    (a leak that starts today shows there first); a feature reaching `max_auc` fails.

    Each of the two is judged on at most `sample_rows` rows, drawn with a fixed seed: a leak puts
    a feature's AUC near 1, which half a million rows measure to about a thousandth, while every
    row of a 10M-row window would cost a sort per feature and a copy of the split."""
    rng = np.random.default_rng(0)
    labels = features[LABEL_COLUMN].to_numpy()
    samples = {
        "train": np.flatnonzero((features[SPLIT_COLUMN] == "train").to_numpy()),
        "day": np.flatnonzero(day_rows.to_numpy()),
    }
    if sample_rows is not None:
        samples = {
            name: np.sort(rng.choice(rows, sample_rows, replace=False))
            if len(rows) > sample_rows
            else rows
            for name, rows in samples.items()
        }
    aucs: dict[str, float] = {}
    for column in columns:
        values = features[column]
        aucs[column] = round(
            max(
                single_feature_auc(values.iloc[rows], labels[rows])
                for rows in samples.values()
                if len(rows)
            ),
            4,
        )
    leaking = {c: a for c, a in aucs.items() if a >= max_auc}
    best = max(aucs.values(), default=0.5)
    return GateOutcome(
        passed=not leaking,
        observed=best,
        threshold=max_auc,
        summary=(
            f"features that alone predict the target: {leaking}"
            if leaking
            else f"strongest single feature ROC-AUC {best:.3f} (limit {max_auc})"
        ),
        details={
            "single_feature_auc": aucs,
            "leaking_features": leaking,
            "rows_judged": {name: len(rows) for name, rows in samples.items()},
        },
    )


# models -------------------------------------------------------------------------------------------


def metric_floor(metric: str, value: float, floor: float) -> GateOutcome:
    return GateOutcome(
        value >= floor, round(value, 6), floor, f"{metric} {value:.4f} (floor {floor})"
    )


def not_worse_than(
    metric: str, challenger: float, champion: float | None, tolerance: float
) -> GateOutcome:
    if champion is None:
        return GateOutcome(True, round(challenger, 6), None, "no champion to compare with")
    return GateOutcome(
        passed=challenger >= champion - tolerance,
        observed=round(challenger, 6),
        threshold=round(champion - tolerance, 6),
        summary=(
            f"{metric} {challenger:.4f} vs champion {champion:.4f} "
            f"(may be at most {tolerance} worse)"
        ),
        details={"champion_value": round(champion, 6)},
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
) -> dict[str, GateOutcome]:
    rows = len(raw)
    latest = None
    if contract.event_time in raw.columns and rows:
        latest = pd.to_datetime(raw[contract.event_time], utc=True, errors="coerce").max()
    band = gates.volume_in_band
    return {
        "schema_matches_contract": schema_matches_contract(raw, contract),
        "not_empty": not_empty(rows, gates.not_empty.min_rows),
        "fresh": freshness(latest, period_end, gates.fresh.max_lag_minutes),
        "volume_in_band": volume_in_band(
            rows, row_count_history, band.min_history, band.min_ratio, band.max_ratio
        ),
    }


def validated_transactions_gates(
    validated: pd.DataFrame, quarantined_rows: int, contract: Contract, gates: Any
) -> dict[str, GateOutcome]:
    total = len(validated) + quarantined_rows
    rate = quarantined_rows / total if total else 0.0
    band = gates.label_rate
    return {
        "quarantine_rate": max_rate("quarantine rate", rate, gates.quarantine_rate.max_rate),
        "null_rate": null_rates(validated, contract, gates.null_rate.max_rate),
        "value_ranges": value_ranges(validated, contract),
        "unique_ids": unique_ids(validated, contract.id),
        "label_rate": label_rate(validated, contract, band.min_rate, band.max_rate),
    }


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
        ),
    }


def trained_model_gates(
    test_metrics: dict[str, float], champion_value: float | None, gates: Any
) -> dict[str, GateOutcome]:
    """The metric floors on the test split, then the comparison with the champion's value of the
    rule's metric on the same split (None when there is no champion)."""
    outcomes = {
        name: metric_floor(name, test_metrics[name], getattr(gates, name).min)
        for name in ("accuracy", "roc_auc", "pr_auc", "recall")
    }
    rule = gates.not_worse_than_champion
    outcomes["not_worse_than_champion"] = not_worse_than(
        rule.metric, test_metrics[rule.metric], champion_value, rule.tolerance
    )
    return outcomes
