"""`mlplatform dataset`: draft a dataset folder from a sample (`init`), and run its contract and
data gates on a sample day by day, as the pipeline would, without a run (`check`).

    mlplatform dataset init SAMPLE.csv|parquet OUT_DIR [--id C] [--event-time C] [--target C]
                                                       [--positive-label V] [--timezone TZ]
    mlplatform dataset check OUT_DIR SAMPLE

`check` exits 0 when every blocking (ERROR) data gate passes on every day, 1 when one fails or the
sample cannot be read as the pipeline reads it, 2 when the folder itself is wrong (the message
names the file and key).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlplatform.config.dataset import CONTRACT_FILE, GATES_FILE, SETTINGS_FILE


class FolderError(ValueError):
    """The dataset folder cannot be used; the message names the file and key."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    commands = parser.add_subparsers(dest="dataset_command", metavar="SUBCOMMAND", required=True)
    init = commands.add_parser(
        "init",
        help="draft a dataset folder (contract, gates, settings) from a sample",
        description="Draft a dataset folder from a sample: column types, nullability, ranges "
        "and categories, guesses of the id, event time and target (marked CONFIRM), gate bands "
        "from the sample's label rate and volume, and the partitions' start from its first day.",
    )
    init.add_argument("sample", help="a CSV or Parquet file of the data")
    init.add_argument("out_dir", help="the folder to write (new or empty)")
    init.add_argument("--id", dest="id_column", help="the id column (instead of a guess)")
    init.add_argument("--event-time", help="the event-time column (instead of a guess)")
    init.add_argument("--target", help="the label column (instead of a guess)")
    init.add_argument("--positive-label", help="the target's positive value (instead of a guess)")
    init.add_argument(
        "--timezone", default="UTC", help="the time zone days are cut in (default UTC)"
    )
    init.add_argument("--name", help="the dataset's name (default: from OUT_DIR)")
    init.add_argument("--file-format", choices=("auto", "csv", "parquet"), default="auto")
    init.add_argument(
        "--force", action="store_true", help="write into OUT_DIR even if it holds files"
    )
    check = commands.add_parser(
        "check",
        help="run a dataset folder's contract and data gates on a sample, day by day",
        description="Validate a sample against a dataset folder as the pipeline would, day by "
        "day: rows in, validated, quarantined (by reason) and the data gates' outcomes. No run, "
        "no Dagster instance. Exit 0: every blocking gate passes; 1: one fails or the sample is "
        "refused; 2: the folder is wrong.",
    )
    check.add_argument("folder", help="the dataset folder")
    check.add_argument("sample", help="a CSV or Parquet file of the data")
    check.add_argument("--file-format", choices=("auto", "csv", "parquet"), default="auto")
    check.add_argument(
        "--verbose", action="store_true", help="every gate's outcome, not only those that fail"
    )


def run(args: argparse.Namespace) -> int:
    if args.dataset_command == "init":
        return run_init(args)
    return run_check(args)


# init ------------------------------------------------------------------------------------------


def _packaged_defaults():
    """The packaged gate and feature values a draft starts from (no user settings folder)."""
    from mlplatform.config.gates import QualityGates
    from mlplatform.config.loading import load_layered
    from mlplatform.config.settings import PlatformSettings
    from mlplatform.core.gate_drafting import PackagedGates

    gates = load_layered(GATES_FILE, QualityGates, environ={})
    platform = load_layered("platform.yaml", PlatformSettings, environ={})
    raw, validated = gates.raw_transactions, gates.validated_transactions
    return PackagedGates(
        max_lag_minutes=raw.fresh.max_lag_minutes,
        lookback_partitions=raw.volume_in_band.lookback_partitions,
        min_history=raw.volume_in_band.min_history,
        min_ratio=raw.volume_in_band.min_ratio,
        max_ratio=raw.volume_in_band.max_ratio,
        null_max_rate=validated.null_rate.max_rate,
        window_days=platform.features.window_days,
        test_fraction=platform.features.test_fraction,
        min_positives=gates.trained_model.roc_auc.min_positives,
    )


def read_sample_as_text(sample: str, file_format: str):
    """The sample as the pipeline reads it (CSV as text, Parquet as stored), before any contract
    exists: no column is required yet."""
    from mlplatform.core.contract import Contract
    from mlplatform.core.file_reading import read_file

    unknown = Contract.model_construct(
        name="draft", id="", event_time="", target="", columns={}, source=sample
    )
    return read_file(sample, unknown, file_format)


def _absolute(sample: str) -> str:
    import re

    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]+://", sample):
        return sample
    return str(Path(sample).expanduser().resolve())


def run_init(args: argparse.Namespace) -> int:
    from mlplatform.core.contract import load_contract
    from mlplatform.core.draft_yaml import (
        contract_yaml,
        gates_yaml,
        reads_back,
        settings_data,
        settings_yaml,
    )
    from mlplatform.core.drafting import contract_name, draft_dataset
    from mlplatform.core.role_guessing import DraftError
    from mlplatform.core.source_files import SourceError, format_of
    from mlplatform.core.validate import DatasetError

    out = Path(args.out_dir)
    if out.exists() and not out.is_dir():
        return _fail(f"{out}: is a file, not a folder")
    if out.is_dir() and any(out.iterdir()) and not args.force:
        return _fail(
            f"{out}: the folder is not empty; choose a new folder or pass --force to overwrite "
            "the drafted files in it"
        )
    try:
        _check_time_zone(args.timezone)
        file_format = format_of(args.sample, args.file_format)
        frame = read_sample_as_text(args.sample, file_format)
        name = args.name or contract_name(out.resolve().name)
        draft = draft_dataset(
            frame,
            name,
            _packaged_defaults(),
            id_column=args.id_column,
            event_time=args.event_time,
            target=args.target,
            positive_label=args.positive_label,
            timezone=args.timezone,
            source=Path(args.sample).name,
        )
    except (DraftError, DatasetError, SourceError, ValueError) as error:
        return _fail(str(error))
    sample_path = _absolute(args.sample)
    texts = {
        CONTRACT_FILE: (contract_yaml(draft, args.sample), draft.contract),
        GATES_FILE: (gates_yaml(draft, args.sample), draft.gates),
        SETTINGS_FILE: (
            settings_yaml(draft, sample_path, args.file_format),
            settings_data(draft, sample_path, args.file_format),
        ),
    }
    for file_name, (text, meant) in texts.items():
        reads_back(text, meant, file_name)
    out.mkdir(parents=True, exist_ok=True)
    for file_name, (text, _) in texts.items():
        (out / file_name).write_text(text)
    try:
        # What was written must load as the platform loads it.
        load_contract(out / CONTRACT_FILE)
        load_folder(out)
    except (FolderError, ValueError) as error:
        return _fail(f"the drafted folder does not load (a defect of the draft): {error}")
    print(f"Wrote {out}/: {CONTRACT_FILE}, {GATES_FILE}, {SETTINGS_FILE}")
    print(
        f"  {draft.facts['rows']} rows, {draft.facts['days']} days from "
        f"{draft.facts['first_day']} to {draft.facts['last_day']}, label rate "
        f"{draft.facts['label_rate']:.4f}"
    )
    for role, guess in (("id", draft.id), ("event time", draft.event_time)):
        print(f"  {role}: {guess.column} ({guess.comment(role)})")
    print(f"  target: {draft.target.column} ({draft.target.comment('target')})")
    print(f"  positive label: {draft.positive_label!r} ({draft.positive_label_note})")
    for warning in draft.warnings:
        print(f"  warning: {warning}")
    print(
        f"Confirm the CONFIRM lines, review the ranges, then: mlplatform dataset check {out} "
        f"{args.sample}"
    )
    return 0


def _check_time_zone(name: str) -> None:
    import zoneinfo

    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"--timezone {name}: not a time zone of the IANA database") from None


def _fail(message: str, code: int = 1) -> int:
    print(f"mlplatform dataset: {message}", file=sys.stderr)
    return code


# check -----------------------------------------------------------------------------------------


@dataclass
class Folder:
    contract: Any
    gates: Any
    start_date: dt.date
    timezone: str
    # Set by check_sample: rows of the sample whose partition does not exist yet.
    pending_rows: int = 0


def load_folder(folder: Path) -> Folder:
    """A dataset folder as the platform loads it (`MLPLATFORM_DATASET` pointing at it): its
    contract, its gates (packaged < the folder's < $MLPLATFORM_SETTINGS_DIR) and its partitions
    (platform.yaml < the folder's settings.yaml < the user's). A file the folder should not hold
    or an unknown key is an error naming it."""
    import os

    from mlplatform.config.dataset import DATASET_ENV
    from mlplatform.config.gates import load_quality_gates
    from mlplatform.config.loading import SettingsError
    from mlplatform.config.settings import load_settings
    from mlplatform.core.contract import ContractError, load_contract

    try:
        settings = load_settings(environ={**os.environ, DATASET_ENV: str(folder.resolve())})
        contract = load_contract(settings.contract)
        gates = load_quality_gates(dataset=settings.dataset)
    except (ContractError, SettingsError) as error:
        raise FolderError(str(error)) from None
    return Folder(
        contract=contract,
        gates=gates,
        start_date=settings.partitions.start_date,
        timezone=settings.partitions.timezone,
    )


@dataclass
class DayReport:
    day: dt.date
    rows: int
    validated: int
    quarantined: int
    reasons: dict[str, int]
    gates: list[tuple[str, Any, Any]]  # (asset.gate, its settings, outcome)
    error: str | None = None

    @property
    def blocking_failures(self) -> list[str]:
        failed = [
            name
            for name, gate, outcome in self.gates
            if gate.blocking and not outcome.passed and not outcome.inconclusive
        ]
        return [*failed, *(["validation"] if self.error else [])]


def check_sample(folder: Folder, sample: str, file_format: str = "auto") -> list[DayReport]:
    """The sample cut by day as ingestion cuts it (rows dated in no partition ride with the day
    whose run quarantines them: the file's first day, else the first partition), each day
    through the raw gates, validation and the validated gates."""
    from zoneinfo import ZoneInfo

    import pandas as pd

    from mlplatform.core import data_gates
    from mlplatform.core.file_reading import read_file
    from mlplatform.core.sources import PartitionSpan, place_rows, rows_of_day
    from mlplatform.core.validate import OUTSIDE_PARTITIONS_COLUMN, DatasetError, validate

    contract, gates = folder.contract, folder.gates
    frame = read_file(sample, contract, file_format)
    today = dt.datetime.now(ZoneInfo(folder.timezone)).date()
    span = PartitionSpan(
        first=folder.start_date,
        last=today - dt.timedelta(days=1),
        today=today,
        timezone=folder.timezone,
    )
    # The file read once, then cut by day as `read_source_day` does for each partition.
    placement = place_rows(frame[contract.event_time], span)
    folder.pending_rows = int(placement.pending.sum())
    carrier = placement.carrier_day(span)
    days = sorted(placement.partition_days | ({carrier} if carrier else set()))
    outside = placement.outside
    carried = frame.loc[outside].assign(
        **{OUTSIDE_PARTITIONS_COLUMN: placement.outside_reason[outside].to_numpy()}
    )
    reports: list[DayReport] = []
    rows_by_day: dict[str, int] = {}
    lookback = gates.raw_transactions.volume_in_band.lookback_partitions
    for day in days:
        raw = frame.loc[(placement.day == day).to_numpy() & placement.in_partition]
        if day == carrier:
            raw = pd.concat([raw, carried])
        raw = raw.reset_index(drop=True)
        of_day = rows_of_day(raw)
        history = {
            key: rows_by_day[key]
            for key in ((day - dt.timedelta(days=i)).isoformat() for i in range(1, lookback + 1))
            if key in rows_by_day
        }
        rows_by_day[day.isoformat()] = len(of_day)
        end = pd.Timestamp(day + dt.timedelta(days=1), tz=folder.timezone)
        outcomes = [
            (f"raw_transactions.{name}", getattr(gates.raw_transactions, name), outcome)
            for name, outcome in data_gates.raw_transactions_gates(
                of_day, contract, gates.raw_transactions, end, history, len(raw) - len(of_day)
            ).items()
        ]
        try:
            outcome = validate(raw, contract, source=f"{sample}[{day}]")
        except DatasetError as error:
            reports.append(DayReport(day, len(raw), 0, 0, {}, outcomes, error=str(error)))
            continue
        outcomes += [
            (f"validated_transactions.{name}", getattr(gates.validated_transactions, name), result)
            for name, result in data_gates.validated_transactions_gates(
                outcome.validated,
                outcome.own_rejected,
                contract,
                gates.validated_transactions,
            ).items()
        ]
        reports.append(
            DayReport(
                day,
                len(raw),
                len(outcome.validated),
                len(outcome.quarantined),
                outcome.reason_counts,
                outcomes,
            )
        )
    return reports


def unreported_rows(folder: Folder, reports: list[DayReport]) -> list[str]:
    """What the per-day lines do not show: days between the first and the last without rows
    (ingestion refuses an empty day: that day's run fails) and rows whose day is today or
    tomorrow (their partitions do not exist yet)."""
    notes = []
    if reports:
        present = {report.day for report in reports}
        first, last = min(present), max(present)
        empty = [
            first + dt.timedelta(days=i)
            for i in range((last - first).days + 1)
            if first + dt.timedelta(days=i) not in present
        ]
        if empty:
            shown = ", ".join(day.isoformat() for day in empty[:10])
            notes.append(
                f"{len(empty)} day(s) between {first} and {last} have no rows ({shown}"
                f"{', ...' if len(empty) > 10 else ''}): ingestion refuses an empty day"
            )
    if folder.pending_rows:
        notes.append(
            f"{folder.pending_rows} row(s) dated today or tomorrow ({folder.timezone}): their "
            "partitions do not exist yet, so they are not checked"
        )
    return notes


def run_check(args: argparse.Namespace) -> int:
    from mlplatform.core.source_files import SourceError
    from mlplatform.core.validate import DatasetError

    folder_path = Path(args.folder)
    try:
        folder = load_folder(folder_path)
    except FolderError as error:
        return _fail(str(error), 2)
    print(
        f"{folder_path}: contract {folder.contract.name} (id {folder.contract.id}, event time "
        f"{folder.contract.event_time}, target {folder.contract.target} = "
        f"{folder.contract.positive_label!r}); partitions from {folder.start_date} "
        f"({folder.timezone})"
    )
    try:
        reports = check_sample(folder, args.sample, args.file_format)
    except SourceError as error:
        return _fail(str(error), 2)
    except DatasetError as error:
        return _fail(f"the pipeline would refuse this sample: {error}")
    if not reports:
        return _fail(
            f"{args.sample}: no row falls in a partition (from {folder.start_date}, days in "
            f"{folder.timezone}, up to yesterday): check partitions.start_date and the event "
            "times"
        )
    print_reports(reports, every_gate=args.verbose)
    for note in unreported_rows(folder, reports):
        print(f"  note: {note}")
    failed_days = [report for report in reports if report.blocking_failures]
    return 1 if failed_days else 0


def print_reports(reports: list[DayReport], every_gate: bool = False) -> None:
    print(f"{'day':<12}{'rows':>8}{'validated':>11}{'quarantined':>13}  blocking gates")
    totals: dict[str, int] = {}
    failures: dict[str, int] = {}
    for report in reports:
        failed = report.blocking_failures
        print(
            f"{report.day.isoformat():<12}{report.rows:>8}{report.validated:>11}"
            f"{report.quarantined:>13}  {'FAILED: ' + ', '.join(failed) if failed else 'pass'}"
        )
        if report.error:
            print(f"    validation cannot run: {report.error}")
        for reason, count in report.reasons.items():
            print(f"    quarantined {count}: {reason}")
            totals[reason] = totals.get(reason, 0) + count
        for name, gate, outcome in report.gates:
            if outcome.passed and not every_gate:
                continue
            kind = (
                "passed"
                if outcome.passed
                else "inconclusive"
                if outcome.inconclusive
                else "FAILED (ERROR, blocking)"
                if gate.blocking
                else "warning (WARN)"
            )
            print(f"    {kind} {name}: {outcome.summary}")
        for name in failed:
            failures[name] = failures.get(name, 0) + 1
    rows = sum(r.rows for r in reports)
    validated = sum(r.validated for r in reports)
    quarantined = sum(r.quarantined for r in reports)
    print(
        f"summary: {len(reports)} days, {rows} rows: {validated} validated, {quarantined} "
        "quarantined"
    )
    for reason, count in sorted(totals.items(), key=lambda item: -item[1]):
        print(f"  quarantined {count}: {reason}")
    if failures:
        failed_days = sum(1 for r in reports if r.blocking_failures)
        shown = ", ".join(
            f"{name} ({count} day{'' if count == 1 else 's'})" for name, count in failures.items()
        )
        print(f"  blocking gates failed on {failed_days} of {len(reports)} days: {shown}")
    else:
        print("  every blocking data gate passes on every day")
