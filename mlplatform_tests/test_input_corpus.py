"""The bad-input corpus: defective and tricky deliveries, each run through the real ingestion and
validation steps (raw_transactions, validated_transactions) of one platform reading a landing
folder with the card contract.

Every case ends one of two ways:
- refused: the step fails with an error naming the file and its line (or column), is not retried,
  and the partitions stored before stay byte for byte as they were;
- accounted for: every row of the file is in validated or quarantined data (with a reason) of the
  days it belongs to (a row dated in no partition: of the day that carries it to quarantine), or
  waits for a partition that does not exist yet, and the text of its id columns is stored exactly
  as it was written.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import shutil
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from mlplatform.config.active import CONTRACT, SETTINGS
from mlplatform.core.validate import REASON_COLUMN
from mlplatform.definitions import ASSETS
from mlplatform_tests.conftest import Platform, make_platform
from mlplatform_tests.packaged import generated_day

DAY = dt.date(2026, 3, 2)
NEXT_DAY = DAY + dt.timedelta(days=1)
FIRST_PARTITION = SETTINGS.partitions.start_date
TEXT_COLUMNS = ["transaction_id", "customer_id", "device_id"]
STORED = ["raw_transactions", "validated_transactions", "quarantined_transactions"]
ROWS = 40
LONG_ID = 12345678901234567  # 17 digits: a float64 cannot hold every such id


def base() -> pd.DataFrame:
    """A small clean-ish day (the generator's own defects included: they are accounted too)."""
    return generated_day(DAY, rows_per_day=ROWS).reset_index(drop=True)


def as_text(rows: pd.DataFrame) -> pd.DataFrame:
    return rows.astype(object).astype(str).where(rows.notna(), None)


def csv_lines(rows: pd.DataFrame | None = None) -> list[str]:
    return (base() if rows is None else rows).to_csv(index=False).splitlines(keepends=True)


def csv_lines_bytes() -> bytes:
    return "".join(csv_lines()).encode()


def fields(line: str) -> list[str]:
    return next(csv.reader([line]))


def joined(values: list[str]) -> str:
    return ",".join(values) + "\n"


def set_field(line: str, column: str, value: str) -> str:
    """The line with one field replaced by `value`, written raw (quotes and all)."""
    header = csv_lines()[0].strip().split(",")
    values = line.rstrip("\n").split(",")
    values[header.index(column)] = value
    return ",".join(values) + "\n"


# Writers: each lands one file in the folder and returns its path ---------------------------------


def write_csv(rows: pd.DataFrame, **to_csv) -> Callable[[Path], Path]:
    def write(folder: Path) -> Path:
        path = folder / "tx.csv"
        rows.to_csv(path, index=False, **to_csv)
        return path

    return write


def write_text(lines: list[str], name: str = "tx.csv", encoding: str = "utf-8"):
    def write(folder: Path) -> Path:
        path = folder / name
        path.write_bytes("".join(lines).encode(encoding))
        return path

    return write


def write_bytes(data: bytes, name: str):
    def write(folder: Path) -> Path:
        path = folder / name
        path.write_bytes(data)
        return path

    return write


def write_parquet(rows: pd.DataFrame):
    def write(folder: Path) -> Path:
        path = folder / "tx.parquet"
        rows.to_parquet(path)
        return path

    return write


def write_gzip(rows: pd.DataFrame):
    def write(folder: Path) -> Path:
        path = folder / "tx.csv.gz"
        path.write_bytes(gzip.compress(rows.to_csv(index=False).encode()))
        return path

    return write


# The rows as written, read back by the test itself ------------------------------------------------


def written_rows(path: Path) -> pd.DataFrame:
    """The file's rows with every value as the text written (None where empty)."""
    if path.suffix == ".parquet":
        return as_text(pd.read_parquet(path))
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8-sig", newline="") as handle:
        records = [r for r in csv.reader(handle) if r]
    frame = pd.DataFrame(records[1:], columns=records[0], dtype=object)
    return frame.where(frame != "", None)


# Cases -------------------------------------------------------------------------------------------


@dataclass
class Case:
    name: str
    write: Callable[[Path], Path]
    error: str | None = None  # what the failure says after the file name ({file}, {folder})
    days: tuple[dt.date, ...] = (DAY,)
    waiting: int = 0  # rows on a day that is not a partition yet
    reasons: tuple[str, ...] = ()  # quarantine reasons that must appear


def with_values(column: str, values: dict[int, object], rows: pd.DataFrame | None = None):
    rows = (base() if rows is None else rows).astype({column: object})
    for position, value in values.items():
        rows.loc[position, column] = value
    return rows


def categorical(rows: pd.DataFrame) -> pd.DataFrame:
    return rows.astype({c: "category" for c in ("country", "channel", "merchant_category")})


def two_days() -> pd.DataFrame:
    return pd.concat([base(), generated_day(NEXT_DAY, rows_per_day=ROWS)], ignore_index=True)


def tomorrow() -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).strftime("%Y-%m-%dT12:00:00Z")


def quote_across_records() -> list[str]:
    lines = csv_lines()
    opened = set_field(lines[5], "customer_id", '"' + fields(lines[5])[2])
    closed = set_field(lines[8], "customer_id", fields(lines[8])[2] + '"')
    return [*lines[:5], opened, *lines[6:8], closed, *lines[9:]]


def corrupt_parquet() -> bytes:
    buffer = io.BytesIO()
    base().to_parquet(buffer)
    data = bytearray(buffer.getvalue())
    data[8:48] = b"\xff" * 40  # the first page header: the footer still opens the file
    return bytes(data)


def replaced_line(position: int, change: Callable[[str], str]) -> list[str]:
    lines = csv_lines()
    return [*lines[:position], change(lines[position]), *lines[position + 1 :]]


ACCOUNTED = [
    Case("clean-csv", write_csv(base())),
    Case("clean-parquet", write_parquet(base())),
    Case("clean-csv-gz", write_gzip(base())),
    Case("leading-zero-ids", write_csv(
        base().assign(transaction_id=[f"000{i:05d}" for i in range(ROWS)],
                      customer_id=[f"007{i % 3}" for i in range(ROWS)]))),
    Case("17-digit-ids-one-empty", write_csv(
        with_values("transaction_id", {3: None},
                    base().assign(transaction_id=[str(LONG_ID + i) for i in range(ROWS)]))),
         reasons=("transaction_id: missing value",)),
    Case("unicode-text", write_csv(
        base().assign(customer_id=[f"Zoë-東京-🙂-{i % 4}" for i in range(ROWS)]))),
    Case("quoted-commas-and-line-breaks", write_csv(
        with_values("device_id", {2: "dev, one\nline two", 5: 'say "hi",\r\nthen go'}))),
    Case("crlf-line-ends", write_csv(base(), lineterminator="\r\n")),
    Case("cr-only-line-ends", write_csv(base(), lineterminator="\r")),  # old Mac exports
    Case("utf8-bom", write_csv(base(), encoding="utf-8-sig")),
    Case("blank-lines", write_text([*csv_lines()[:6], "\n", *csv_lines()[6:], "\n"])),
    Case("extra-columns", write_csv(
        base().assign(note=["NA", "null", "007", None] * (ROWS // 4), id2=["0001"] * ROWS))),
    Case("columns-reordered", write_csv(base()[list(reversed(base().columns))])),
    Case("wrong-types-in-typed-columns", write_csv(
        with_values("card_present", {6: "maybe"},
                    with_values("is_fraud", {7: "yes"},
                                with_values("amount", {1: "abc", 2: "1,5", 3: "12 EUR"})))),
         reasons=("amount: not a valid float (got 'abc')", "amount: not a valid float (got '1,5')",
                  "card_present: not a valid boolean (got 'maybe')",
                  "is_fraud: not a valid integer (got 'yes')")),
    Case("numbers-written-differently", write_csv(
        with_values("amount", {1: "1e2", 2: "010.50", 3: "+7"}))),
    Case("booleans-as-words", write_csv(
        with_values("card_present", {1: "yes", 2: "NO", 3: "1", 4: "f"}))),
    Case("unreadable-and-missing-event-times", write_csv(
        with_values("event_time", {1: "yesterday", 2: "2026-02-30T10:00:00Z", 3: None})),
         reasons=("event_time: outside every partition: not a valid datetime (got 'yesterday')",
                  "event_time: outside every partition: missing value")),
    Case("dates-before-the-first-partition", write_csv(
        with_values("event_time", {1: "1970-01-01T00:00:00Z", 2: "2025-12-31T23:59:59Z"})),
         reasons=("event_time: outside every partition: before the first partition",)),
    Case("dates-far-in-the-future", write_csv(
        with_values("event_time", {1: "2099-01-01T00:00:00Z"})),
         reasons=("event_time: outside every partition: in the future",)),
    # No row in any partition: the first partition's run quarantines them all.
    Case("every-row-before-the-first-partition", write_csv(
        base().assign(event_time=["1970-01-01T00:00:00Z", "2025-12-31T23:59:59Z"] * (ROWS // 2))),
         days=(FIRST_PARTITION,),
         reasons=("event_time: outside every partition: before the first partition",)),
    Case("every-row-far-in-the-future", write_parquet(
        base().assign(event_time=pd.Timestamp("2099-01-01", tz="UTC"))), days=(FIRST_PARTITION,),
         reasons=("event_time: outside every partition: in the future",)),
    Case("no-readable-event-time", write_csv(
        base().assign(event_time=["yesterday", None] * (ROWS // 2))), days=(FIRST_PARTITION,),
         reasons=("event_time: outside every partition: not a valid datetime (got 'yesterday')",
                  "event_time: outside every partition: missing value")),
    Case("dates-tomorrow-wait", write_csv(
        with_values("event_time", {1: tomorrow(), 2: tomorrow()})), waiting=2),
    Case("timezone-offsets", write_csv(
        with_values("event_time", {1: "2026-03-02T23:30:00-05:00",  # the next day in UTC
                                   2: "2026-03-03T01:00:00+05:00"})),  # this day in UTC
         days=(DAY, NEXT_DAY)),
    Case("two-days-in-one-file", write_csv(two_days()), days=(DAY, NEXT_DAY)),
    Case("negative-amounts", write_csv(with_values("amount", {1: -5.0, 2: 0.0})),
         reasons=("amount: outside [0.01, 50000.0] (got -5.0)",)),
    Case("duplicate-ids", write_csv(pd.concat([base(), base().iloc[[3, 4]]], ignore_index=True)),
         reasons=("transaction_id: duplicate id",)),
    Case("missing-values-in-required-columns", write_csv(
        with_values("customer_id", {1: None}, with_values("channel", {2: None}))),
         reasons=("customer_id: missing value", "channel: missing value")),
    Case("values-with-spaces", write_csv(
        with_values("country", {1: " US"}, with_values("customer_id", {2: " c1 "}))),
         reasons=("country: not an allowed category (got ' US')",)),
    Case("parquet-null-in-required-categorical", write_parquet(
        categorical(with_values("country", {1: None}))), reasons=("country: missing value",)),
    Case("parquet-null-in-nullable-categorical", write_parquet(
        categorical(with_values("merchant_category", {1: None, 2: None})))),
    Case("parquet-unknown-category", write_parquet(categorical(with_values("channel", {3: "fax"}))),
         reasons=("channel: not an allowed category (got 'fax')",)),
    Case("parquet-integer-ids", write_parquet(
        base().assign(transaction_id=range(1000, 1000 + ROWS)))),
    Case("parquet-naive-timestamps", write_parquet(
        base().assign(event_time=base()["event_time"].dt.tz_localize(None)))),
]  # fmt: skip

REFUSED = [
    Case("quote-opened-and-closed-records-later", write_text(quote_across_records()),
         error="{file}: lines 6-9: a quote opened at line 6 is closed at line 9"),
    Case("record-missing-its-last-field", write_text(
        replaced_line(5, lambda line: line.rstrip("\n").rsplit(",", 1)[0] + "\n")),
         error="{file}: line 6: 10 fields where the header has 11 (a field is missing)"),
    Case("record-with-too-many-fields", write_text(
        replaced_line(5, lambda line: line.rstrip("\n") + ",surplus\n")),
         error="{file}: line 6: 12 fields where the header has 11 (too many fields)"),
    Case("nul-byte", write_text(replaced_line(5, lambda line: line.replace("c", "c\x00", 1))),
         error="{file}: line 6: a NUL byte at byte"),
    Case("quote-never-closed", write_text(
        replaced_line(5, lambda line: set_field(line, "device_id", '"' + fields(line)[3]))),
         error="{file}: line 6: a quote opened in field 4 (device_id) at line 6 is never closed"),
    Case("field-over-the-limit", write_text(replaced_line(5, lambda line: set_field(
        line, "device_id", "d" * (SETTINGS.data_source.csv_max_field_chars + 1)))),
         error=f"{{file}}: line 6: field 4 (device_id) is "
               f"{SETTINGS.data_source.csv_max_field_chars + 1:,} characters, over the limit of "
               f"{SETTINGS.data_source.csv_max_field_chars:,} (data_source.csv_max_field_chars)"),
    Case("text-after-a-closing-quote", write_text(
        replaced_line(5, lambda line: set_field(line, "device_id", '"d"x'))),
         error="{file}: line 6: malformed CSV record (',' expected after '\"')"),
    Case("not-utf8", write_text(
        replaced_line(5, lambda line: set_field(line, "customer_id", "café")), encoding="latin-1"),
         error="{file}: line 6: not UTF-8 text"),
    Case("duplicated-header-column", write_text(
        replaced_line(0, lambda line: line.replace("device_id", "customer_id"))),
         error="{file}: line 1: header names column(s) ['customer_id'] more than once"),
    Case("header-with-an-unnamed-column", write_text(
        replaced_line(0, lambda line: line.rstrip("\n") + ",\n")),
         error="{file}: line 1: header column(s) [12] have no name"),
    Case("empty-file", write_bytes(b"", "tx.csv"), error="{file}: empty file (no header line)"),
    Case("header-only", write_text(csv_lines()[:1]),
         error="{folder}: no rows for 2026-03-02 in 1 file(s) (header only"),
    Case("every-row-on-another-day", write_csv(generated_day(NEXT_DAY, rows_per_day=ROWS)),
         error="{folder}: no rows for 2026-03-02"),
    Case("missing-contract-column", write_csv(base().drop(columns=["is_fraud"])),
         error="{file}: columns required by contract {contract} are missing: ['is_fraud']"),
    Case("gzip-that-is-not-gzip", write_bytes(b"transaction_id\n1\n", "tx.csv.gz"),
         error="{file}: cannot read as csv (BadGzipFile"),
    Case("gzip-cut-short", write_bytes(gzip.compress(csv_lines_bytes())[:300], "tx.csv.gz"),
         error="{file}: cannot read as csv (EOFError"),
    Case("not-parquet", write_bytes(b"PAR1 truncated upload", "tx.parquet"),
         error="{file}: cannot read as parquet"),
    Case("corrupt-parquet-page", write_bytes(corrupt_parquet(), "tx.parquet"),
         error="{file}: cannot read as parquet (OSError"),
]  # fmt: skip


# The platform and the runs -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def platform(tmp_path_factory) -> Platform:
    root = tmp_path_factory.mktemp("corpus")
    landing = root / "landing"
    landing.mkdir()
    platform = make_platform(
        root, MLPLATFORM_SOURCE_KIND="files", MLPLATFORM_SOURCE_PATH=str(landing)
    )
    # A good delivery first: a refused one must leave these partitions as they are.
    write_csv(base())(landing)
    assert run(platform, DAY).success
    return platform


def land(platform: Platform, case: Case) -> Path:
    landing = Path(platform.resources["data_source"].path)
    shutil.rmtree(landing)
    landing.mkdir()
    return case.write(landing)


def run(platform: Platform, day: dt.date, selection: list[str] = STORED):
    return dg.materialize(
        ASSETS,
        selection=selection,
        partition_key=day.isoformat(),
        resources=platform.resources,
        raise_on_error=False,
    )


def stored(platform: Platform, asset: str, day: dt.date) -> Path:
    return platform.data_dir / asset / f"{day.isoformat()}.parquet"


def failure_text(result) -> str:
    failures = result.get_step_failure_events()
    assert failures, "expected the step to fail"
    data = failures[0].step_failure_data
    return (data.user_failure_data.description if data.user_failure_data else "") or (
        data.error.message
    )


def key(frame: pd.DataFrame) -> Counter:
    return Counter(map(tuple, as_text(frame[TEXT_COLUMNS]).itertuples(index=False)))


@pytest.mark.parametrize("case", ACCOUNTED, ids=lambda case: case.name)
def test_every_row_is_validated_or_quarantined_as_written(platform, case):
    path = land(platform, case)
    written = written_rows(path)
    validated, quarantined = [], []
    for day in case.days:
        result = run(platform, day)
        assert result.success, failure_text(result)
        validated.append(pd.read_parquet(stored(platform, "validated_transactions", day)))
        quarantined.append(pd.read_parquet(stored(platform, "quarantined_transactions", day)))
    validated = pd.concat(validated, ignore_index=True)
    quarantined = pd.concat(quarantined, ignore_index=True)

    # Nothing lost: every row is somewhere, or waits for its day to become a partition.
    assert len(validated) + len(quarantined) + case.waiting == len(written)
    # Nothing changed: the id columns hold exactly the text of rows of the file.
    found = key(validated) + key(quarantined)
    assert not found - key(written), f"stored rows that are not in the file: {found - key(written)}"
    # Every quarantined row says why.
    assert quarantined[REASON_COLUMN].notna().all() and (quarantined[REASON_COLUMN] != "").all()
    for reason in case.reasons:
        assert quarantined[REASON_COLUMN].str.contains(reason, regex=False).any(), (
            f"no quarantined row says {reason!r}: {sorted(set(quarantined[REASON_COLUMN]))}"
        )


@pytest.mark.parametrize("case", REFUSED, ids=lambda case: case.name)
def test_unusable_input_is_refused_naming_the_place_and_stores_nothing(platform, case):
    before = {asset: stored(platform, asset, DAY).read_bytes() for asset in STORED}
    path = land(platform, case)
    result = run(platform, DAY)
    assert not result.success
    expected = case.error.format(file=path, folder=path.parent, contract=CONTRACT.source)
    assert expected in failure_text(result)
    retried = [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    assert not retried, "content errors fail fast"
    assert {asset: stored(platform, asset, DAY).read_bytes() for asset in STORED} == before
