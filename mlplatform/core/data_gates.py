"""The data gates of a day: on the raw rows as they arrive (schema, not empty, fresh, volume in
band) and on the validated rows (quarantine rate, nulls, ranges, unique ids, label rate), each a
`GateOutcome`; and each stage's gates together as its asset check reports them, where `gates` is
the stage's section of quality_gates.yaml (read by mlplatform.config, which core does not
import)."""

from __future__ import annotations

import statistics
from dataclasses import replace
from typing import Any

import pandas as pd

from mlplatform.core.contract import Contract
from mlplatform.core.features import positive_label_flags
from mlplatform.core.gate_outcome import GateOutcome

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
