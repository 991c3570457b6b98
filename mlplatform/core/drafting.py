"""A first dataset folder drafted from a sample: the contract (column types, nullability, ranges,
categories, and guesses of the id, event time and target), gate thresholds from the sample's own
label rate and volume, and the partition start from its first day. This module assembles the
draft from its parts: the columns' types (type_inference.py), their roles (role_guessing.py) and
the gates and settings (gate_drafting.py); draft_yaml.py writes it.

The drafted values describe the sample, not what the data may become: every guess and every range
is written with a comment that says where it came from, for a person to confirm or widen. No range
on the id (new ids lie outside the sample's) nor on datetimes (a contract has none).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from mlplatform.core.contract import parse_contract
from mlplatform.core.gate_drafting import PackagedGates, draft_gates
from mlplatform.core.role_guessing import (
    DraftError,
    Guess,
    guess_event_time,
    guess_id,
    guess_positive_label,
    guess_target,
    parse_label,
)
from mlplatform.core.type_inference import column_specs, typed_frame


@dataclass(frozen=True)
class ColumnDraft:
    spec: dict[str, Any]
    note: str = ""


@dataclass
class Draft:
    name: str
    columns: dict[str, ColumnDraft]
    id: Guess
    event_time: Guess
    target: Guess
    positive_label: Any
    positive_label_note: str
    timezone: str
    contract: dict[str, Any]
    gates: dict[str, Any]
    gate_notes: dict[str, str]
    settings: dict[str, Any]
    settings_notes: dict[str, str]
    facts: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def contract_name(text: str) -> str:
    """A contract name from a folder name: letters, digits, _ and -, starting with a letter."""
    name = re.sub(r"[^A-Za-z0-9_\-]+", "_", text).strip("_-")
    return name if re.match(r"^[A-Za-z]", name) else f"dataset_{name}".rstrip("_")


def _chosen(
    given: str | None,
    guess: Callable[[], Guess | None],
    frame: pd.DataFrame,
    role: str,
    missing: str,
) -> Guess:
    if given is not None:
        if given not in frame.columns:
            raise DraftError(f"--{role.replace('_', '-')} {given}: no such column in the sample")
        return Guess(given, True, "given")
    guessed = guess()
    if guessed is None:
        raise DraftError(missing)
    return guessed


def draft_dataset(
    frame: pd.DataFrame,
    name: str,
    packaged: PackagedGates,
    *,
    id_column: str | None = None,
    event_time: str | None = None,
    target: str | None = None,
    positive_label: str | None = None,
    timezone: str = "UTC",
    source: str = "sample",
) -> Draft:
    """A contract, gate overrides and settings for data like `frame` (read as the pipeline reads
    it: CSV as text, Parquet as stored)."""
    if frame.empty:
        raise DraftError(f"{source}: the sample has no rows")
    typed, types, inferred = typed_frame(frame)
    notes = {name: column.note for name, column in inferred.items()}
    columns = ", ".join(f"{n} ({types[n]})" for n in frame.columns)
    time_guess = _chosen(
        event_time,
        lambda: guess_event_time(typed, types),
        frame,
        "event_time",
        f"{source}: no column parses as dates and times, and the platform needs one: it cuts the "
        "data into daily partitions by each row's event time and trains on the older rows, tests "
        "on the newer. Add a column with the time each row happened (ISO 8601, such as "
        "2016-01-31T14:05:00), or name it with --event-time. Columns: " + columns,
    )
    if types[time_guess.column] != "datetime":
        raise DraftError(
            f"--event-time {time_guess.column}: its values do not all parse as dates and times "
            f"(ISO 8601); it was read as {types[time_guess.column]}"
        )
    id_guess = _chosen(
        id_column,
        lambda: guess_id(typed, types),
        frame,
        "id",
        f"{source}: no column is unique and never missing, and the platform needs an id (rows are "
        "told apart and deduplicated by it). Add one, or name it with --id (its duplicates will "
        "be quarantined). Columns: " + columns,
    )
    target_guess = _chosen(
        target,
        lambda: guess_target(typed, types, {id_guess.column, time_guess.column}),
        frame,
        "target",
        f"{source}: no column holds exactly two values to use as the label; name it with --target "
        "(and --positive-label). Columns: " + columns,
    )
    roles = {"id": id_guess, "event time": time_guess, "target": target_guess}
    taken: dict[str, str] = {}
    for role, guess in roles.items():
        if guess.column in taken:
            raise DraftError(
                f"column '{guess.column}' cannot be both the {taken[guess.column]} and the {role}"
            )
        taken[guess.column] = role

    target_values = typed[target_guess.column]
    target_type = types[target_guess.column]
    if target_type == "datetime":
        raise DraftError(f"--target {target_guess.column}: a datetime is not a label")
    distinct = target_values.dropna().unique()
    if positive_label is not None:
        label = parse_label(positive_label, target_type, target_values)
        label_note = "positive label: given on the command line"
    elif len(distinct) == 2:
        label, label_note = guess_positive_label(target_values)
    else:
        raise DraftError(
            f"target '{target_guess.column}' holds {len(distinct)} values, not two: name the "
            "positive one with --positive-label (the others count as negative)"
        )
    if target_type == "string":
        # A target is a handful of labels, whatever their count in a small sample.
        types[target_guess.column] = target_type = "category"
        typed[target_guess.column] = pd.Categorical(target_values)
        notes[target_guess.column] = ""

    specs = column_specs(typed, types, frame.isna().any())
    draft_warnings = [
        f"{name}: {column.note}" for name, column in inferred.items() if column.unreadable
    ]
    column_drafts: dict[str, ColumnDraft] = {}
    for column, spec in specs.items():
        remarks = [notes[column]] if notes[column] else []
        if column == id_guess.column:
            # No range and no categories: new ids lie outside the sample's.
            spec = {"type": "string" if spec["type"] == "category" else spec["type"]}
            spec.update(nullable=False, feature=False)
            remarks = ["the id: not a feature", *remarks]
            duplicates = int(typed[column].dropna().duplicated().sum())
            if duplicates:
                remarks.append(f"{duplicates} duplicate value(s) in the sample: quarantined")
                draft_warnings.append(f"id '{column}': {remarks[-1]}")
        if column in (id_guess.column, time_guess.column, target_guess.column):
            spec = {**spec, "nullable": False}
            empty = int(frame[column].isna().sum())
            if empty:
                remarks.append(f"{empty} row(s) without a value in the sample: quarantined")
                draft_warnings.append(f"{column}: {remarks[-1]}")
        elif spec["type"] == "string":
            spec["feature"] = False
        if "min" in spec and column != target_guess.column:
            remarks.insert(0, "range of the sample: widen it to what is possible")
        note = "; ".join(remarks)
        column_drafts[column] = ColumnDraft(spec, note)

    contract = {
        "name": name,
        "description": f"Drafted by `mlplatform dataset init` from {source}.",
        "id": id_guess.column,
        "event_time": time_guess.column,
        "target": target_guess.column,
        "positive_label": label,
        "columns": {column: drafted.spec for column, drafted in column_drafts.items()},
    }
    parse_contract(contract, source=f"draft of {source}")  # the draft must be a valid contract
    gates, gate_notes, facts, settings = draft_gates(typed, contract, timezone, packaged)
    if "short_last_day" in facts:
        draft_warnings.append(facts["short_last_day"])
    settings = {
        "partitions": {"start_date": facts["first_day"].isoformat(), "timezone": timezone},
        **settings,
    }
    return Draft(
        name=name,
        columns=column_drafts,
        id=id_guess,
        event_time=time_guess,
        target=target_guess,
        positive_label=label,
        positive_label_note=label_note,
        timezone=timezone,
        contract=contract,
        gates=gates,
        gate_notes=gate_notes,
        settings=settings,
        settings_notes=_time_zone_notes(frame[time_guess.column], timezone, draft_warnings),
        facts=facts,
        warnings=draft_warnings,
    )


def _time_zone_notes(times: pd.Series, timezone: str, warnings: list[str]) -> dict[str, str]:
    """A remark when the sample's times carry a UTC offset and days are cut in UTC: the day of
    an evening event would then be the next one. An offset does not name its zone (daylight
    saving changes it), so the zone is the user's to give."""
    if timezone != "UTC" or pd.api.types.is_datetime64_any_dtype(times):
        return {}
    # A remark, not a rule: up to 10,000 rows spread over the sample show the offsets in use.
    present = times.dropna()
    present = present.iloc[:: max(1, len(present) // 10_000)]
    offsets = present.astype(str).str.extract(r"([+-]\d\d:?\d\d)$")[0]
    offsets = offsets[offsets.notna() & ~offsets.isin(["+00:00", "-00:00", "+0000", "-0000"])]
    if offsets.empty:
        return {}
    shown = ", ".join(offsets.value_counts().index[:3])
    remark = (
        f"Event times of the sample carry a UTC offset ({shown}) and days are "
        "cut in UTC: set the data's own time zone (such as Europe/Paris, with --timezone or "
        "below) so a day ends at its local midnight"
    )
    warnings.append(remark)
    return {"partitions": remark}
