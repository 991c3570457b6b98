"""Contract-driven validation: coerce each column to its declared type, check every row, and split
the data into validated rows and quarantined rows that carry the reason they were rejected.

Coercion is done here (column by column, so one bad cell names its row); the row rules are a pandera
schema compiled from the contract, whose lazy validation lists every failing cell.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mlplatform.core.contract import ColumnSpec, Contract

REASON_COLUMN = "quarantine_reason"
ROW_COLUMN = "source_row"
# Set by ingestion on a row whose event time falls in no partition (the reason); such rows are
# quarantined with it whatever their other values.
OUTSIDE_PARTITIONS_COLUMN = "outside_every_partition"
OUTSIDE_PARTITIONS_REASON = "outside every partition"
TRUE_STRINGS = {"true", "t", "yes", "y", "1"}
FALSE_STRINGS = {"false", "f", "no", "n", "0"}


class DatasetError(ValueError):
    """The dataset as a whole cannot be validated (a missing column, an empty partition...)."""


@dataclass
class ValidationOutcome:
    validated: pd.DataFrame
    quarantined: pd.DataFrame
    # "column: rule" -> number of rows that failed it (a row may fail several rules).
    reason_counts: dict[str, int] = field(default_factory=dict)
    ignored_columns: list[str] = field(default_factory=list)
    # Quarantined rows that ingestion carried here because they fall in no partition.
    carried_rows: int = 0

    @property
    def own_rejected(self) -> int:
        """Quarantined rows of the day itself (rows carried from no partition are not the day's:
        they would make a good day's rate look bad)."""
        return len(self.quarantined) - self.carried_rows

    @property
    def quarantine_rate(self) -> float:
        """The share of the day's own rows rejected."""
        total = len(self.validated) + self.own_rejected
        return self.own_rejected / total if total else 0.0


def _plain(value: object) -> object:
    """A numpy scalar as the Python value it holds: reasons read `-5.0`, not `np.float64(-5.0)`."""
    return value.item() if isinstance(value, np.generic) else value


def _coerce_column(values: pd.Series, spec: ColumnSpec) -> pd.Series:
    """The column in its declared type; cells that cannot be converted become missing."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        # A Parquet dictionary column arrives as a Categorical, which refuses any value outside
        # its categories (a null filled in, a value turned to text): work on the plain values.
        values = values.astype(object)
    if spec.type == "float":
        return pd.to_numeric(values, errors="coerce").astype("float64")
    if spec.type == "integer":
        numeric = pd.to_numeric(values, errors="coerce")
        integral = numeric.where(np.isclose(numeric, np.round(numeric)) | numeric.isna())
        return integral.astype("Int64")
    if spec.type == "boolean":
        if pd.api.types.is_bool_dtype(values):
            return values.astype("boolean")
        text = values.astype("string").str.strip().str.lower()
        return text.map(
            lambda v: True if v in TRUE_STRINGS else False if v in FALSE_STRINGS else pd.NA,
            na_action="ignore",
        ).astype("boolean")
    if spec.type == "datetime":
        if isinstance(values.dtype, pd.DatetimeTZDtype):
            return values.dt.tz_convert("UTC")
        return pd.to_datetime(values, errors="coerce", utc=True, format="ISO8601")
    # string and category: text, keeping missing values missing. Text already held as `str` is
    # kept as is: converting would make a new string object per row (gigabytes at 10M rows).
    if values.dtype == object and pd.api.types.infer_dtype(values, skipna=True) in (
        "string",
        "empty",
    ):
        return values
    return values.where(values.isna(), values.astype(str)).astype(object)


def _schema(contract: Contract):
    import pandera.pandas as pa

    columns = {}
    for name, spec in contract.event_columns.items():
        checks = []
        if spec.min is not None or spec.max is not None:
            low = -np.inf if spec.min is None else spec.min
            high = np.inf if spec.max is None else spec.max
            checks.append(pa.Check.in_range(low, high))
        if spec.categories is not None:
            allowed = (
                [str(c) for c in spec.categories]
                if spec.type in ("string", "category")
                else spec.categories
            )
            checks.append(pa.Check.isin(allowed))
        is_id = name == contract.id
        columns[name] = pa.Column(
            checks=checks,
            nullable=spec.nullable
            and not is_id
            and name not in (contract.event_time, contract.target),
            unique=is_id,
            report_duplicates="exclude_first" if is_id else "all",
        )
    return pa.DataFrameSchema(columns, strict=False)


def _describe_check(check: str, spec: ColumnSpec) -> str:
    if check == "not_nullable":
        return "missing value"
    if check == "field_uniqueness":
        return "duplicate id"
    if check.startswith("in_range"):
        return f"outside [{spec.min}, {spec.max}]"
    if check.startswith("isin"):
        return "not an allowed category"
    return f"{check} failed"


def validate(raw: pd.DataFrame, contract: Contract, source: str = "data") -> ValidationOutcome:
    """Split `raw` into rows that satisfy the contract and quarantined rows with their reasons.
    Rows that ingestion marked as outside every partition are quarantined with that reason."""
    missing = [name for name in contract.event_columns if name not in raw.columns]
    if missing:
        raise DatasetError(
            f"{source}: columns required by contract {contract.source} are missing: {missing}"
        )
    # Rows are named by position; a frame already indexed 0..n-1 is used as it is, not copied.
    frame = raw if raw.index.equals(pd.RangeIndex(len(raw))) else raw.reset_index(drop=True)
    if OUTSIDE_PARTITIONS_COLUMN not in frame.columns:
        return _validate_rows(frame, contract, source)
    carried = frame[OUTSIDE_PARTITIONS_COLUMN].notna().to_numpy()
    outcome = _validate_rows(
        frame.loc[~carried].drop(columns=OUTSIDE_PARTITIONS_COLUMN).reset_index(drop=True),
        contract,
        source,
        # The first partition may hold only rows carried to quarantine: no row of its own.
        allow_empty=bool(carried.any()),
    )
    outcome.carried_rows = int(carried.sum())
    # Back to positions in `raw`, then the carried rows after the day's own.
    positions = np.flatnonzero(~carried)
    outcome.quarantined[ROW_COLUMN] = positions[outcome.quarantined[ROW_COLUMN].to_numpy()]
    outside = frame.loc[carried, list(contract.event_columns)].copy()
    times = frame.loc[carried, contract.event_time]
    outside_reasons = frame.loc[carried, OUTSIDE_PARTITIONS_COLUMN]
    outside.insert(0, ROW_COLUMN, np.flatnonzero(carried))
    outside[REASON_COLUMN] = [
        f"{contract.event_time}: {OUTSIDE_PARTITIONS_REASON}: {reason} (got {_plain(time)!r})"
        for reason, time in zip(outside_reasons, times.astype(object), strict=True)
    ]
    for reason, count in outside_reasons.value_counts().items():
        key = f"{contract.event_time}: {OUTSIDE_PARTITIONS_REASON}: {reason}"
        outcome.reason_counts[key] = outcome.reason_counts.get(key, 0) + int(count)
    outcome.reason_counts = dict(sorted(outcome.reason_counts.items(), key=lambda item: -item[1]))
    outcome.quarantined = pd.concat([outcome.quarantined, _as_text(outside)], ignore_index=True)
    return outcome


def carried_in_quarantine(quarantined: pd.DataFrame, contract: Contract) -> pd.Series:
    """Which quarantined rows were carried to the partition because they fall in no partition
    (the rest are the day's own rejected rows)."""
    return (
        quarantined[REASON_COLUMN]
        .astype(str)
        .str.startswith(f"{contract.event_time}: {OUTSIDE_PARTITIONS_REASON}: ")
    )


def _as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Rejected rows as they arrived: text columns as text (a column may mix "abc" and 5.0),
    typed columns as they are."""
    for name in frame.columns:
        if frame[name].dtype == object or isinstance(frame[name].dtype, pd.CategoricalDtype):
            frame[name] = frame[name].astype(object).map(str, na_action="ignore")
    return frame


def _validate_rows(
    frame: pd.DataFrame, contract: Contract, source: str, allow_empty: bool = False
) -> ValidationOutcome:
    import pandera.pandas as pa

    if frame.empty and not allow_empty:
        raise DatasetError(f"{source}: no rows to validate (empty partition)")
    reasons: dict[int, list[str]] = {}
    counts: dict[str, int] = {}

    def reject(rows: np.ndarray, column: str, rule: str, values: pd.Series | None) -> None:
        key = f"{column}: {rule}"
        counts[key] = counts.get(key, 0) + len(rows)
        for position, row in enumerate(rows):
            shown = "" if values is None else f" (got {_plain(values.iloc[position])!r})"
            reasons.setdefault(int(row), []).append(f"{key}{shown}")

    coerced = {}
    for name, spec in contract.event_columns.items():
        try:
            column = _coerce_column(frame[name], spec)
        except Exception as error:
            # Whatever went wrong, the message says where: the step, the column, its type.
            raise DatasetError(
                f"{source}: column '{name}' ({spec.type}, stored as {frame[name].dtype}) cannot "
                f"be converted: {type(error).__name__}: {error}"
            ) from error
        unconvertible = np.flatnonzero(frame[name].notna().to_numpy() & column.isna().to_numpy())
        if len(unconvertible):
            reject(unconvertible, name, f"not a valid {spec.type}", frame[name].iloc[unconvertible])
        coerced[name] = column
    typed = pd.DataFrame(coerced)
    # The frame holds its own copy: the columns it was built from would only double the peak.
    del coerced

    try:
        # In place: nothing is coerced, and a copy of the typed frame would only cost memory.
        _schema(contract).validate(typed, lazy=True, inplace=True)
    except pa.errors.SchemaErrors as errors:
        cases = errors.failure_cases
        dataset_level = cases[cases["index"].isna()]
        if not dataset_level.empty:
            first = dataset_level.iloc[0]
            raise DatasetError(
                f"{source}: column '{first['column']}' fails {first['check']}: "
                f"{first['failure_case']}"
            ) from None
        for (column, check), group in cases.groupby(["column", "check"], sort=False):
            rows = group["index"].astype(int).to_numpy()
            if check == "not_nullable":
                # A cell already rejected as unconvertible is not also reported as missing.
                rows = np.array(
                    [
                        r
                        for r in rows
                        if not any(
                            m.startswith(f"{column}: not a valid") for m in reasons.get(int(r), [])
                        )
                    ],
                    dtype=int,
                )
                if not len(rows):
                    continue
            description = _describe_check(check, contract.columns[column])
            reject(
                rows,
                column,
                description,
                None if check == "not_nullable" else group["failure_case"],
            )
    except Exception as error:
        # Not a rule failing but the check itself: say where, with the types it met.
        types = {name: str(dtype) for name, dtype in typed.dtypes.items()}
        raise DatasetError(
            f"{source}: the contract's rules could not be checked ({type(error).__name__}: "
            f"{error}); column types: {types}"
        ) from error

    bad_rows = np.array(sorted(reasons), dtype=int)
    good = np.ones(len(frame), dtype=bool)
    good[bad_rows] = False
    validated = typed.loc[good].reset_index(drop=True)
    for name, spec in contract.event_columns.items():
        if spec.type == "category":
            validated[name] = pd.Categorical(
                validated[name], categories=[str(c) for c in spec.categories or []]
            )
        elif spec.type == "boolean" and not validated[name].isna().any():
            validated[name] = validated[name].astype(bool)
        elif spec.type == "integer" and not validated[name].isna().any():
            validated[name] = validated[name].astype("int64")

    quarantined = _as_text(frame.loc[~good, list(contract.event_columns)].copy())
    quarantined.insert(0, ROW_COLUMN, bad_rows)
    quarantined[REASON_COLUMN] = ["; ".join(reasons[r]) for r in bad_rows]
    return ValidationOutcome(
        validated=validated,
        quarantined=quarantined.reset_index(drop=True),
        reason_counts=dict(sorted(counts.items(), key=lambda item: -item[1])),
        ignored_columns=[c for c in frame.columns if c not in contract.event_columns],
    )
