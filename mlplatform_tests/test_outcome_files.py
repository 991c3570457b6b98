"""The bad-outcome-file corpus: outcome deliveries (CSV and Parquet) with unknown ids, duplicates,
conflicts, outcomes dated before their event, wrong types, no records, records on days that are no
partition, missing columns and broken CSV, each run through the real `outcomes` step (its IO
managers, the events it joins to stored by real ingestion and validation runs of event files).

Every case ends one of two ways:
- accounted for: every record of the files is joined or quarantined, with a reason, by the runs
  of the arrival days it belongs to (a record dated in no partition: by the day that carries it),
  or waits for a day that is not a partition yet; each quarantined record names its file and its
  record number there, and each run's metadata says records in = joined + quarantined;
- refused: the step fails without retry, with an error naming the file (and the line, when the
  fault is on one), and the day's stored outcomes stay byte for byte as they were.
"""

from __future__ import annotations

import csv
import datetime as dt
import shutil
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from mlplatform.config.active import CONTRACT, SETTINGS
from mlplatform.core.outcomes import REASON_COLUMN
from mlplatform.core.sources import SOURCE_FILE_COLUMN, SOURCE_RECORD_COLUMN
from mlplatform.definitions import ASSETS, MONITORING_ASSETS
from mlplatform_tests.conftest import Platform, make_platform
from mlplatform_tests.packaged import generated_day

EVENT_DAYS = (dt.date(2026, 3, 2), dt.date(2026, 3, 3))
ARRIVAL = dt.date(2026, 3, 5)
NEXT_ARRIVAL = ARRIVAL + dt.timedelta(days=1)
FIRST_PARTITION = SETTINGS.partitions.start_date
NO_EVENTS_DAY = dt.date(2026, 2, 10)  # a partition, with no events stored around it
AT = "2026-03-05T10:00:00Z"  # known on ARRIVAL
NEXT_AT = "2026-03-06T09:30:00Z"  # known on NEXT_ARRIVAL
HEADER = ["transaction_id", "is_fraud", "known_at"]
EVENT_STEPS = ["raw_transactions", "validated_transactions", "quarantined_transactions"]
OUTCOME_STEPS = ["outcomes", "quarantined_outcomes"]


@dataclass(frozen=True)
class Events:
    """The validated events the outcomes may name: ids of each event day, and their times."""

    first: list[str]  # ids of the first event day, in time order
    second: list[str]
    times: dict[str, pd.Timestamp]


# Writers: each lands its files in the folder and returns their paths ---------------------------

Writer = Callable[[Path, Events], list[Path]]


def csv_file(name: str, rows: Callable[[Events], list[tuple]], header=HEADER) -> Writer:
    """A CSV file of `rows` (tuples of raw field values, None for an empty field)."""

    def write(folder: Path, events: Events) -> list[Path]:
        path = folder / name
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            writer.writerows(["" if v is None else v for v in row] for row in rows(events))
        return [path]

    return write


def text_file(name: str, lines: Callable[[Events], list[str]]) -> Writer:
    """A file of exactly these lines (malformed CSV)."""

    def write(folder: Path, events: Events) -> list[Path]:
        path = folder / name
        path.write_text("".join(lines(events)), encoding="utf-8")
        return [path]

    return write


def raw_bytes(name: str, data: bytes) -> Writer:
    def write(folder: Path, events: Events) -> list[Path]:
        path = folder / name
        path.write_bytes(data)
        return [path]

    return write


def parquet_file(name: str, frame: Callable[[Events], pd.DataFrame]) -> Writer:
    def write(folder: Path, events: Events) -> list[Path]:
        path = folder / name
        frame(events).to_parquet(path)
        return [path]

    return write


def together(*writers: Writer) -> Writer:
    def write(folder: Path, events: Events) -> list[Path]:
        return [path for writer in writers for path in writer(folder, events)]

    return write


def typed(ids: list[str], outcomes: list, known_at: list) -> pd.DataFrame:
    """Outcome records as a Parquet file types them (known_at as UTC timestamps if given so)."""
    return pd.DataFrame({"transaction_id": ids, "is_fraud": outcomes, "known_at": known_at})


def timestamps(*values: str) -> pd.Series:
    return pd.Series(pd.to_datetime(list(values), utc=True))


def tomorrow() -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).strftime("%Y-%m-%dT12:00:00Z")


def before_its_event(events: Events) -> tuple[str, str]:
    """An event of the second day that happened after 01:00, and a time of its own day before it
    (the day on which that outcome arrives)."""
    late = next(i for i in reversed(events.second) if events.times[i].hour >= 1)
    return late, events.times[late].strftime("%Y-%m-%dT00:30:00Z")


# What the test reads back from the files it wrote ------------------------------------------------


def written_records(path: Path) -> pd.DataFrame:
    """The file's records, each value as text (None where empty), with their record numbers."""
    if path.suffix == ".parquet":
        frame = pd.read_parquet(path).astype(object)
        frame = frame.map(lambda v: None if pd.isna(v) else str(v))
    else:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = [row for row in csv.reader(handle) if row]
        frame = pd.DataFrame(rows[1:], columns=rows[0] if rows else HEADER, dtype=object)
        frame = frame.where(frame != "", None)
    return frame.assign(record=range(1, len(frame) + 1))


# Cases -------------------------------------------------------------------------------------------


@dataclass
class Case:
    name: str
    write: Writer
    days: tuple[dt.date, ...] = (ARRIVAL,)  # the arrival days to run, in order
    joined: int = 0  # how many records join their event over all days
    reasons: tuple[str, ...] = ()  # words of quarantine reasons that must appear
    waiting: int = 0  # records on a day that is not a partition yet
    error: str = ""  # refused: what the failure says ({file})


ACCOUNTED = [
    Case("clean-csv", csv_file("o.csv", lambda e: [
        (e.first[0], "1", AT), (e.first[1], "0", AT), (e.second[0], "0", AT)]), joined=3),
    Case("clean-parquet", parquet_file("o.parquet", lambda e: typed(
        e.first[:2] + e.second[:1], [1, 0, 0], timestamps(AT, AT, AT))), joined=3),
    Case("extra-columns-and-timezone-offsets", csv_file("o.csv", lambda e: [
        (e.first[0], "1", "2026-03-05T23:30:00-05:00", "chargeback"),  # 2026-03-06 in UTC
        (e.first[1], "0", "2026-03-06T01:00:00+05:00", "")],  # 2026-03-05 in UTC
        header=[*HEADER, "note"]), days=(ARRIVAL, NEXT_ARRIVAL), joined=2),
    Case("unknown-ids", csv_file("o.csv", lambda e: [
        (e.first[0], "1", AT), ("tx-does-not-exist", "1", AT), ("tx-20260101-0000001", "0", AT),
        (e.first[1].upper(), "0", AT)]), joined=1,
         reasons=("transaction_id 'tx-does-not-exist' is not among the events of 2026-03-02 to "
                  "2026-03-03 (UTC)",)),
    Case("exact-duplicates-in-a-csv", csv_file("o.csv", lambda e: [
        (e.first[0], "1", AT), (e.first[1], "0", AT), (e.first[0], "1", AT),
        (e.first[0], "1", AT)]), joined=2,
         reasons=("has outcome '1' again (first in record 1 of {o.csv})",)),
    Case("duplicates-across-files-of-a-day", together(
        csv_file("a.csv", lambda e: [(e.first[0], "1", AT)]),
        parquet_file("b.parquet", lambda e: typed([e.first[0]], [1], timestamps(AT)))), joined=1,
         reasons=("again (first in record 1 of {a.csv})",)),
    Case("exact-duplicates-across-arrival-days", together(
        csv_file("day1.csv", lambda e: [(e.first[0], "1", AT), (e.second[0], "0", AT)]),
        parquet_file("day2.parquet", lambda e: typed(
            [e.first[0], e.second[0], e.second[1]], [1, 0, 1],
            timestamps(NEXT_AT, NEXT_AT, NEXT_AT)))),
         days=(ARRIVAL, NEXT_ARRIVAL), joined=3,
         reasons=("has outcome 1 (int), known on an earlier day already",)),
    Case("conflicting-outcomes-in-a-file", csv_file("o.csv", lambda e: [
        (e.first[0], "1", AT), (e.first[0], "0", AT), (e.first[0], "1", AT),
        (e.first[1], "1", AT)]),
         joined=1,
         reasons=("conflicting outcomes for transaction_id '{first0}' in this file ('1' and '0'):"
                  " all its records are quarantined",)),
    Case("conflict-with-an-earlier-day", csv_file("o.csv", lambda e: [
        (e.first[0], "1", AT), (e.first[1], "0", AT), (e.first[0], "0", NEXT_AT),
        (e.first[1], "1", NEXT_AT)]), days=(ARRIVAL, NEXT_ARRIVAL), joined=2,
         reasons=("conflicting outcome for transaction_id '{first0}': '0' here, but a positive one"
                  " (positive: 1) was known on an earlier day, and it stands",
                  "'1' here, but a negative one")),
    Case("outcome-before-its-event", csv_file("o.csv", lambda e: [
        (before_its_event(e)[0], "1", before_its_event(e)[1]),
        (e.first[0], "0", before_its_event(e)[1])]), days=(EVENT_DAYS[1],), joined=1,
         reasons=("is before the event of transaction_id",)),
    Case("wrong-types-in-a-csv", csv_file("o.csv", lambda e: [
        (e.first[0], "yes", AT), (e.first[1], "0.5", AT), (e.first[2], "true", AT),
        (e.first[3], None, AT), (None, "1", AT), (e.first[4], "1", "not a date"),
        (e.first[5], "0", "2026-02-30T10:00:00Z"), (e.first[6], "1", None),
        (e.first[7], "1", AT)]), joined=1,
         reasons=("is_fraud: 'yes' is not an allowed outcome (allowed: 0, 1)",
                  "is_fraud: '0.5' is not an allowed outcome", "is_fraud: 'true' is not",
                  "is_fraud: missing for transaction_id", "transaction_id: missing",
                  "known_at: outside every partition: not a valid datetime (got 'not a date')",
                  "not a valid datetime (got '2026-02-30T10:00:00Z')",
                  "known_at: outside every partition: missing value (got nothing)")),
    Case("float-outcomes-in-parquet", parquet_file("o.parquet", lambda e: typed(
        e.first[:4], [1.0, 0.0, 0.5, None], timestamps(AT, AT, AT, AT))), joined=2,
         reasons=("is_fraud: 0.5 (float) is not an allowed outcome (allowed: 0, 1)",
                  "is_fraud: missing for transaction_id")),
    Case("boolean-outcomes-in-parquet", parquet_file("o.parquet", lambda e: typed(
        e.first[:2], [True, False], timestamps(AT, AT))),
         reasons=("is_fraud: True (bool) is not an allowed outcome",
                  "is_fraud: False (bool) is not an allowed outcome")),
    Case("text-times-in-parquet", parquet_file("o.parquet", lambda e: typed(
        e.first[:2], [1, 0], [AT, "yesterday"])), joined=1,
         reasons=("known_at: outside every partition: not a valid datetime (got 'yesterday')",)),
    # Parquet stores integers with a gap as floats: beside a CSV file (text), 1.0 still joins.
    Case("parquet-float-outcomes-beside-a-csv", together(
        parquet_file("floats.parquet", lambda e: typed(
            e.first[:3], [1.0, 0.0, None], timestamps(AT, AT, AT))),
        csv_file("text.csv", lambda e: [(e.second[0], "1", AT), (e.second[1], "0", AT)])),
         joined=4, reasons=("is_fraud: missing for",)),
    Case("header-only-csv", csv_file("o.csv", lambda e: [])),
    Case("parquet-without-records", parquet_file("o.parquet", lambda e: typed(
        [], [], pd.Series([], dtype="datetime64[ns, UTC]")).astype({"is_fraud": "int64"}))),
    Case("every-record-before-the-first-partition", csv_file("o.csv", lambda e: [
        (e.first[0], "1", "2025-06-01T00:00:00Z"), (e.first[1], "0", "1970-01-01T00:00:00Z")]),
         days=(FIRST_PARTITION,),
         reasons=("known_at: outside every partition: before the first partition (2026-01-01) "
                  "(got '2025-06-01T00:00:00Z')",)),
    Case("every-record-in-the-future", parquet_file("o.parquet", lambda e: typed(
        e.first[:2], [1, 0], timestamps("2099-06-01T00:00:00Z", "2099-06-02T00:00:00Z"))),
         days=(FIRST_PARTITION,),
         reasons=("known_at: outside every partition: in the future (after ",
                  "(got '2099-06-01 00:00:00+00:00')")),
    Case("a-day-without-events", csv_file("o.csv", lambda e: [
        (e.first[0], "1", "2026-02-10T08:00:00Z"), (e.first[1], "0", "2026-02-10T09:00:00Z")]),
         days=(NO_EVENTS_DAY,), reasons=("is not among the events (none were given)",)),
    Case("known-tomorrow-waits", csv_file("o.csv", lambda e: [
        (e.first[0], "1", AT), (e.first[1], "0", tomorrow())]), joined=1, waiting=1),
]  # fmt: skip

REFUSED = [
    Case("zero-byte-csv", raw_bytes("o.csv", b""), error="{file}: empty file (no header line)"),
    Case("zero-byte-parquet", raw_bytes("o.parquet", b""),
         error="{file}: cannot read as parquet (ArrowInvalid"),
    Case("csv-missing-known-at", csv_file("o.csv", lambda e: [(e.first[0], "1")],
                                          header=HEADER[:2]),
         error="{file}: columns required by contract {contract} (outcomes) are missing: "
               "['known_at']"),
    Case("parquet-missing-outcome", parquet_file("o.parquet", lambda e: typed(
        e.first[:1], [1], timestamps(AT)).drop(columns=["is_fraud"])),
         error="{file}: columns required by contract {contract} (outcomes) are missing: "
               "['is_fraud']"),
    Case("unterminated-quote", text_file("o.csv", lambda e: [
        "transaction_id,is_fraud,known_at\n", f"{e.first[0]},1,{AT}\n",
        f'"{e.first[1]},0,{AT}\n', f"{e.first[2]},1,{AT}\n"]),
         error="{file}: line 3: a quote opened in field 1 (transaction_id) at line 3 is never "
               "closed"),
    Case("quote-closed-records-later", text_file("o.csv", lambda e: [
        "transaction_id,is_fraud,known_at\n", f"{e.first[0]},1,{AT}\n",
        f'"{e.first[1]},0,{AT}\n', f"{e.first[2]},1,{AT}\n", f'{e.first[3]}",1,{AT}\n',
        f"{e.first[4]},1,{AT}\n"]),
         error="{file}: lines 3-5: a quote opened at line 3 is closed at line 5"),
    Case("record-missing-a-field", together(
        csv_file("good.csv", lambda e: [(e.second[0], "1", AT)]),
        text_file("short.csv", lambda e: [
            "transaction_id,is_fraud,known_at\n", f"{e.first[0]},1,{AT}\n", f"{e.first[1]},0\n"])),
         error="{file}: line 3: 2 fields where the header has 3 (a field is missing)"),
]  # fmt: skip


# The platform and the runs -----------------------------------------------------------------------


def run(platform: Platform, day: dt.date, selection: list[str]):
    return dg.materialize(
        [*ASSETS, *MONITORING_ASSETS],
        selection=selection,
        partition_key=day.isoformat(),
        resources=platform.resources,
        raise_on_error=False,
    )


@pytest.fixture(scope="module")
def platform(tmp_path_factory) -> Platform:
    root = tmp_path_factory.mktemp("outcome-files")
    (root / "events").mkdir()
    (root / "outcomes").mkdir()
    platform = make_platform(
        root,
        MLPLATFORM_SOURCE_KIND="files",
        MLPLATFORM_SOURCE_PATH=str(root / "events"),
        MLPLATFORM_OUTCOMES_PATH=str(root / "outcomes"),
    )
    days = [generated_day(day, rows_per_day=40) for day in EVENT_DAYS]
    pd.concat(days, ignore_index=True).to_csv(root / "events" / "events.csv", index=False)
    for day in EVENT_DAYS:
        result = run(platform, day, EVENT_STEPS)
        assert result.success, failure_text(result)
    return platform


@pytest.fixture(scope="module")
def events(platform) -> Events:
    days = [
        pd.read_parquet(stored(platform, "validated_transactions", day)).sort_values("event_time")
        for day in EVENT_DAYS
    ]
    both = pd.concat(days)
    return Events(
        first=list(days[0]["transaction_id"]),
        second=list(days[1]["transaction_id"]),
        times=dict(zip(both["transaction_id"], both["event_time"], strict=True)),
    )


def stored(platform: Platform, asset: str, day: dt.date) -> Path:
    return platform.data_dir / asset / f"{day.isoformat()}.parquet"


def land(platform: Platform, events: Events, write: Writer) -> list[Path]:
    """The outcome folder holds only these files, and no outcomes are stored yet."""
    folder = Path(platform.resources["data_source"].outcomes_path)
    shutil.rmtree(folder)
    folder.mkdir()
    for asset in OUTCOME_STEPS:
        shutil.rmtree(platform.data_dir / asset, ignore_errors=True)
    return write(folder, events)


def failure_text(result) -> str:
    failures = result.get_step_failure_events()
    assert failures, "expected the step to fail"
    data = failures[0].step_failure_data
    return (data.user_failure_data.description if data.user_failure_data else "") or (
        data.error.message
    )


def metadata(result, asset: str) -> dict:
    (event,) = [e for e in result.get_asset_materialization_events() if e.asset_key.path == [asset]]
    return {key: value.value for key, value in event.materialization.metadata.items()}


def expected(text: str, files: list[Path], events: Events) -> str:
    """A reason's words with {first0} (the first event's id) and {a.csv} (that file's path)."""
    for name, value in [("first0", events.first[0]), *((path.name, path) for path in files)]:
        text = text.replace("{" + name + "}", str(value))
    return text


@pytest.mark.parametrize("case", ACCOUNTED, ids=lambda case: case.name)
def test_every_outcome_record_is_joined_or_quarantined(platform, events, case):
    files = land(platform, events, case.write)
    written = {str(path): written_records(path) for path in files}
    joined, quarantined = [], []
    for day in case.days:
        result = run(platform, day, OUTCOME_STEPS)
        assert result.success, failure_text(result)
        joined.append(pd.read_parquet(stored(platform, "outcomes", day)))
        quarantined.append(pd.read_parquet(stored(platform, "quarantined_outcomes", day)))
        # Each run counts what it read: records in = joined + quarantined, reasons all counted.
        facts, held = metadata(result, "outcomes"), metadata(result, "quarantined_outcomes")
        assert facts["records_in"] == facts["joined"] + facts["quarantined"]
        assert (facts["joined"], facts["quarantined"]) == (len(joined[-1]), len(quarantined[-1]))
        assert sum(held["reasons"].values()) == len(quarantined[-1])
    joined = pd.concat(joined, ignore_index=True)
    quarantined = pd.concat(quarantined, ignore_index=True)
    records = pd.concat(written.values(), ignore_index=True)

    # Nothing lost, nothing twice: over all days, the files' records are joined or quarantined
    # (or wait for their day), and the ids stored are those of the files.
    assert len(joined) + len(quarantined) + case.waiting == len(records)
    assert len(joined) == case.joined
    found = Counter(joined["transaction_id"]) + Counter(quarantined["transaction_id"])
    assert not found - Counter(records["transaction_id"]), "stored ids that are in no file"
    if not case.waiting:
        assert found == Counter(records["transaction_id"])
    # A joined record is a known event's, once.
    assert set(joined["transaction_id"]) <= set(events.times)
    assert not joined["transaction_id"].duplicated().any()
    # Every quarantined record says why, and names its file and its record number there.
    assert quarantined[REASON_COLUMN].notna().all() and (quarantined[REASON_COLUMN] != "").all()
    for _, row in quarantined.iterrows():
        source = written[row[SOURCE_FILE_COLUMN]]
        record = source.iloc[int(row[SOURCE_RECORD_COLUMN]) - 1]
        assert record["transaction_id"] == row["transaction_id"], row.to_dict()
    assert not quarantined.duplicated([SOURCE_FILE_COLUMN, SOURCE_RECORD_COLUMN]).any()
    for reason in case.reasons:
        text = expected(reason, files, events)
        assert quarantined[REASON_COLUMN].str.contains(text, regex=False).any(), (
            f"no quarantined record says {text!r}: {sorted(set(quarantined[REASON_COLUMN]))}"
        )


@pytest.mark.parametrize("case", REFUSED, ids=lambda case: case.name)
def test_an_unreadable_outcome_file_fails_the_day_naming_it_and_stores_nothing(
    platform, events, case
):
    # A good delivery first: the refused one must leave the day's outcomes as they are.
    land(platform, events, csv_file("o.csv", lambda e: [(e.first[0], "1", AT)]))
    assert run(platform, ARRIVAL, OUTCOME_STEPS).success
    before = {asset: stored(platform, asset, ARRIVAL).read_bytes() for asset in OUTCOME_STEPS}
    folder = Path(platform.resources["data_source"].outcomes_path)
    shutil.rmtree(folder)
    folder.mkdir()
    files = case.write(folder, events)

    result = run(platform, ARRIVAL, OUTCOME_STEPS)

    assert not result.success
    bad = files[-1]
    assert case.error.format(file=bad, contract=CONTRACT.source) in failure_text(result)
    assert f"outcomes[{ARRIVAL}] from outcome files at {folder}: " in failure_text(result)
    retried = [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    assert not retried, "content errors fail fast"
    assert not result.get_asset_materialization_events()
    after = {asset: stored(platform, asset, ARRIVAL).read_bytes() for asset in OUTCOME_STEPS}
    assert after == before
