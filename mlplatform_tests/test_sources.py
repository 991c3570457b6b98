import datetime as dt
import gzip

import pandas as pd
import pytest

from mlplatform.core.file_reading import read_file
from mlplatform.core.source_files import SourceError, list_source_files
from mlplatform.core.sources import PartitionSpan, read_source_day
from mlplatform.core.validate import OUTSIDE_PARTITIONS_COLUMN, DatasetError
from mlplatform_tests.packaged import generated_day

DAY = dt.date(2026, 3, 2)
# Partitions from 2026-01-01 to 2026-03-09, "now" on 2026-03-10.
SPAN = PartitionSpan(dt.date(2026, 1, 1), dt.date(2026, 3, 9), dt.date(2026, 3, 10))


@pytest.fixture
def two_days() -> pd.DataFrame:
    return pd.concat([generated_day(DAY), generated_day(DAY + dt.timedelta(1))])


def expected_day(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame["event_time"].dt.date == DAY]


def read(path, card_contract, day=DAY, **arguments):
    return read_source_day(str(path), card_contract, day, SPAN, **arguments)


def test_csv_file_is_cut_to_the_day(tmp_path, two_days, card_contract):
    path = tmp_path / "tx.csv"
    two_days.to_csv(path, index=False)
    progress: list[str] = []
    day = read(path, card_contract, log=progress.append)
    assert len(day) == len(expected_day(two_days))
    assert set(day["transaction_id"]) == set(expected_day(two_days)["transaction_id"])
    # A long read says where it is: per file, rows read and rows of the day.
    assert progress == [
        f"{path}: {len(two_days)} rows read, {len(day)} on {DAY}, 0 in no partition"
    ]


def test_csv_text_is_kept_as_written(tmp_path, card_contract):
    """No type guessing: leading zeros stay, a 17-digit id column with an empty cell stays text
    (pandas would make it float and the ids collide), numbers keep their spelling."""
    path = tmp_path / "tx.csv"
    rows = generated_day(DAY, rows_per_day=5).astype(str)
    rows["transaction_id"] = ["00012", "12345678901234567", "", "12345678901234568", "0"]
    rows["customer_id"] = ["007", "0007", "7", "7.0", "1e3"]
    rows["amount"] = ["10.50", "010", "1e2", "abc", " 3"]
    rows["note"] = ["NA", "null", "None", "nan", "-"]
    rows.to_csv(path, index=False)
    day = read(path, card_contract)
    assert day["transaction_id"].tolist() == ["00012", "12345678901234567", None,
                                              "12345678901234568", "0"]  # fmt: skip
    for column in ("customer_id", "amount", "note"):
        assert day[column].tolist() == rows[column].tolist()


def test_parquet_folder_and_glob(tmp_path, two_days, card_contract):
    folder = tmp_path / "landing"
    folder.mkdir()
    for i, (_, part) in enumerate(two_days.groupby(two_days["event_time"].dt.date)):
        part.to_parquet(folder / f"part-{i}.parquet")
    (folder / "README.txt").write_text("not data")
    assert len(list_source_files(str(folder))) == 2
    by_folder = read(folder, card_contract)
    by_glob = read(folder / "*.parquet", card_contract)
    assert len(by_folder) == len(by_glob) == len(expected_day(two_days))


def test_fsspec_url(two_days, card_contract):
    import fsspec

    with fsspec.open("memory://landing/tx.parquet", "wb") as handle:
        two_days.to_parquet(handle)
    day = read("memory://landing/*.parquet", card_contract)
    assert len(day) == len(expected_day(two_days))


def test_missing_path_is_a_retryable_source_error_not_an_os_error(tmp_path, card_contract):
    with pytest.raises(SourceError, match="no such file or folder") as raised:
        read(tmp_path / "nothing.csv", card_contract)
    assert not isinstance(raised.value, OSError)


def test_unreadable_file_is_named(tmp_path, card_contract):
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"this is not parquet")
    with pytest.raises(DatasetError, match=r"broken\.parquet: cannot read as parquet"):
        read(path, card_contract)


def test_a_file_that_is_not_gzip_is_content_not_io(tmp_path, card_contract):
    path = tmp_path / "tx.csv.gz"
    path.write_text("transaction_id,event_time\n1,2026-03-02\n")
    with pytest.raises(DatasetError, match=r"tx\.csv\.gz: cannot read as csv \(BadGzipFile"):
        read(path, card_contract)


def test_a_gzip_file_cut_short_is_content(tmp_path, card_contract):
    path = tmp_path / "tx.csv.gz"
    path.write_bytes(
        gzip.compress(generated_day(DAY, rows_per_day=50).to_csv(index=False).encode())[:400]
    )
    with pytest.raises(DatasetError, match=r"tx\.csv\.gz: cannot read as csv"):
        read(path, card_contract)


def test_unknown_file_format_names_the_setting(tmp_path, card_contract):
    path = tmp_path / "tx.txt"
    path.write_text("x")
    with pytest.raises(DatasetError, match="set data_source.file_format"):
        read(path, card_contract)


def test_a_file_where_a_folder_is_expected_is_a_settings_problem(tmp_path, card_contract):
    (tmp_path / "landing").write_text("a file, not a folder")
    with pytest.raises(DatasetError, match=r"landing is a file, not a folder"):
        read(tmp_path / "landing" / "tx.csv", card_contract)


def test_missing_contract_column_names_the_file(tmp_path, two_days, card_contract):
    path = tmp_path / "tx.csv"
    two_days.drop(columns=["event_time", "amount"]).to_csv(path, index=False)
    with pytest.raises(
        DatasetError, match=r"tx\.csv: columns .* missing: \['event_time', 'amount'"
    ):
        read(path, card_contract)


def test_a_day_without_rows_is_refused(tmp_path, card_contract):
    path = tmp_path / "tx.csv"
    generated_day(DAY, rows_per_day=20).head(0).to_csv(path, index=False)
    with pytest.raises(DatasetError, match=r"no rows for 2026-03-02 in 1 file\(s\) \(header only"):
        read(path, card_contract)


HEADER = "transaction_id,event_time,note\n"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('a,2026-03-02T01:00,x\nb,2026-03-02T02:00\nc,2026-03-02T03:00,z\n',
         r"line 3: 2 fields where the header has 3 \(a field is missing\)"),
        ('a,2026-03-02T01:00,x,extra\n', r"line 2: 4 fields where the header has 3 \(too many"),
        ('a,2026-03-02T01:00,"x\nb,2026-03-02T02:00,y\nc,2026-03-02T03:00,z"\n',
         r"lines 2-4: a quote opened at line 2 is closed at line 4"),
        ('a,2026-03-02T01:00,x\nb,2026-03-02T02:00,"y\n',
         r"line 3: a quote opened in field 3 \(note\) at line 3 is never closed"),
        ('a,2026-03-02T01:00,"x"y\n', r"line 2: malformed CSV record \(',' expected"),
        ('a,2026-03-02T01:00,x\x00y\n', r"line 2: a NUL byte at byte 21"),
        ('a,2026-03-02T01:00,caf\xe9\n', r"line 2: not UTF-8 text \(b.\\xe9.\) at byte 23"),
    ],
    ids=["short", "long", "quote-across-records", "quote-never-closed", "text-after-quote", "nul",
         "latin-1"],
)  # fmt: skip
def test_a_malformed_record_is_refused_naming_file_and_line(tmp_path, card_contract, body, message):
    path = tmp_path / "tx.csv"
    path.write_bytes((HEADER + body).encode("latin-1"))
    with pytest.raises(DatasetError, match=rf"tx\.csv: {message}"):
        read_file(str(path), card_contract.model_copy(update={"columns": {}}))


@pytest.mark.parametrize(
    ("header", "message"),
    [("id,id,event_time\n", r"line 1: header names column\(s\) \['id'\] more than once"),
     ("id,,event_time\n", r"line 1: header column\(s\) \[2\] have no name"),
     ("", r"empty file \(no header line\)")],
    ids=["duplicated", "unnamed", "empty-file"],
)  # fmt: skip
def test_a_bad_header_is_refused(tmp_path, card_contract, header, message):
    path = tmp_path / "tx.csv"
    path.write_text(header)
    with pytest.raises(DatasetError, match=rf"tx\.csv: {message}"):
        read_file(str(path), card_contract.model_copy(update={"columns": {}}))


def test_cr_only_line_ends_are_read_with_every_row(tmp_path, two_days, card_contract):
    """Old Mac exports end lines with a lone CR: every row is read, over several read blocks, and
    every row read is validated or quarantined."""
    from mlplatform.core.validate import validate

    path = tmp_path / "tx.csv"
    two_days.to_csv(path, index=False, lineterminator="\r")
    assert b"\n" not in path.read_bytes()
    day = read(path, card_contract)
    assert len(day) == len(expected_day(two_days))
    assert set(day["transaction_id"]) == set(expected_day(two_days)["transaction_id"].astype(str))
    # Rows in = validated + quarantined, over the file's two days.
    outcomes = [
        validate(read(path, card_contract, day=d), card_contract)
        for d in (DAY, DAY + dt.timedelta(1))
    ]
    assert sum(len(o.validated) + len(o.quarantined) for o in outcomes) == len(two_days)
    assert all(len(o.validated) for o in outcomes)
    # Lines are counted at a lone CR too: a defect is named at its own line.
    lines = ["transaction_id,event_time,note", "a,2026-03-02T01:00,x", "b,2026-03-02T02:00"]
    path.write_bytes("\r".join(lines).encode() + b"\r")
    with pytest.raises(DatasetError, match=r"line 3: 2 fields where the header has 3"):
        read_file(str(path), card_contract.model_copy(update={"columns": {}}))


def test_lines_are_cut_right_where_a_read_block_ends_between_cr_and_lf(
    tmp_path, monkeypatch, card_contract
):
    """A CR LF split by a block boundary is one line end, not two (no blank line, no shift)."""
    import mlplatform.core.file_reading as file_reading

    monkeypatch.setattr(file_reading, "CHUNK_BYTES", 7)
    path = tmp_path / "tx.csv"
    lines = ["transaction_id,event_time,note", *(f"{i},2026-03-02T01:00,x{i}" for i in range(9))]
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode())
    frame = read_file(str(path), card_contract.model_copy(update={"columns": {}}))
    assert frame["note"].tolist() == [f"x{i}" for i in range(9)]
    path.write_bytes(("\r".join(lines) + "\r").encode())
    frame = read_file(str(path), card_contract.model_copy(update={"columns": {}}))
    assert frame["note"].tolist() == [f"x{i}" for i in range(9)]


LARGE = 200 * 1024  # over the csv module's own 128 KiB


@pytest.mark.parametrize("quoted", [False, True], ids=["bare", "quoted"])
def test_a_field_over_128_kib_is_read_up_to_the_limit(tmp_path, card_contract, quoted):
    path = tmp_path / "tx.csv"
    big = "y" * LARGE
    field = f'"{big[:1000]}\n{big[1001:]}"' if quoted else big
    path.write_text(HEADER + f"a,2026-03-02T01:00,x\nb,2026-03-02T02:00,{field}\n")
    contract = card_contract.model_copy(update={"columns": {}})
    frame = read_file(str(path), contract, max_field_chars=LARGE)
    assert [len(note) for note in frame["note"]] == [1, LARGE]
    # The pipeline's setting reaches the reader (data_source.csv_max_field_chars).
    from mlplatform.config.active import SETTINGS
    from mlplatform.resources.data_source import DataSource

    assert DataSource().csv_max_field_chars == SETTINGS.data_source.csv_max_field_chars >= LARGE
    day = DataSource(kind="files", path=str(path)).read_day(DAY, contract, SPAN)
    assert len(day) == 2


@pytest.mark.parametrize(
    ("field", "message"),
    [("y" * (LARGE + 1),
      rf"line 3: field 3 \(note\) is {LARGE + 1:,} characters, over the limit of {LARGE:,} "
      r"\(data_source.csv_max_field_chars\)$"),
     ('"' + "y\n" * (LARGE // 2) + 'y"',
      rf"lines 3-{LARGE // 2 + 3}: field 3 \(note\) is {LARGE + 1:,} characters, over the limit"),
     ('"' + "y" * (LARGE * 2) + "\nc,2026-03-02T03:00,z\n",
      r"line 3: a quote opened in field 3 \(note\) at line 3 is never closed \(the file ends "
      rf"inside it, {LARGE * 2 + 23:,} characters later\)")],
    ids=["over-the-limit", "over-the-limit-across-lines", "quote-never-closed-past-the-limit"],
)  # fmt: skip
def test_a_field_over_the_limit_is_refused_naming_its_size_and_line(
    tmp_path, card_contract, field, message
):
    """Not the csv module's "field larger than field limit", which it also says of a quote never
    closed: a field too large names its size and line, a quote never closed says so."""
    path = tmp_path / "tx.csv"
    path.write_text(HEADER + f"a,2026-03-02T01:00,x\nb,2026-03-02T02:00,{field}\n")
    contract = card_contract.model_copy(update={"columns": {}})
    with pytest.raises(DatasetError, match=rf"tx\.csv: {message}") as refused:
        read_file(str(path), contract, max_field_chars=LARGE)
    assert "field limit" not in str(refused.value)
    # gzip: read again from its start all the same
    packed = tmp_path / "tx.csv.gz"
    packed.write_bytes(gzip.compress(path.read_bytes()))
    with pytest.raises(DatasetError, match=rf"tx\.csv\.gz: {message}"):
        read_file(str(packed), contract, max_field_chars=LARGE)


def test_quoted_line_breaks_crlf_and_bom_are_read_as_written(tmp_path, card_contract):
    path = tmp_path / "tx.csv"
    text = (
        '\ufefftransaction_id,event_time,note\r\n'
        'a,2026-03-02T01:00,"two\r\nlines, one comma"\r\n'
        'b,2026-03-02T02:00,"say ""hi"", then\nb,2026-03-02T02:00,x"\r\n'
        'c,2026-03-02T03:00,""\r\n'
    )  # fmt: skip
    path.write_bytes(text.encode("utf-8"))
    frame = read_file(str(path), card_contract.model_copy(update={"columns": {}}))
    assert list(frame.columns) == ["transaction_id", "event_time", "note"]
    assert frame["note"].tolist() == [
        "two\r\nlines, one comma",
        'say "hi", then\nb,2026-03-02T02:00,x',
        None,  # an empty field is missing, quoted or not
    ]


def test_rows_in_no_partition_ride_with_the_files_first_day_only(tmp_path, card_contract):
    rows = generated_day(DAY, rows_per_day=40).astype({"event_time": object})
    rows.loc[rows.index[0], "event_time"] = "1970-01-01T00:00:00Z"  # before the first partition
    rows.loc[rows.index[1], "event_time"] = "2031-05-01T00:00:00Z"  # far in the future
    rows.loc[rows.index[2], "event_time"] = "yesterday"  # not a time
    rows.loc[rows.index[3], "event_time"] = None  # no time
    rows.loc[rows.index[4], "event_time"] = "2026-03-11T08:00:00Z"  # tomorrow: waits, not carried
    rows.loc[rows.index[5], "event_time"] = "2026-03-04T08:00:00Z"  # a later day of the file
    path = tmp_path / "tx.csv"
    rows.to_csv(path, index=False)

    first = read(path, card_contract)
    carried = first[first[OUTSIDE_PARTITIONS_COLUMN].notna()]
    assert carried[OUTSIDE_PARTITIONS_COLUMN].tolist() == [
        "before the first partition (2026-01-01)",
        "in the future (after 2026-03-11)",
        "not a valid datetime",
        "missing value",
    ]
    assert carried["transaction_id"].tolist() == rows["transaction_id"].iloc[:4].tolist()
    assert len(first) - len(carried) == len(rows) - 6
    later = read(path, card_contract, day=dt.date(2026, 3, 4))
    assert later["transaction_id"].tolist() == [rows["transaction_id"].iloc[5]]
    assert OUTSIDE_PARTITIONS_COLUMN not in later.columns


def test_a_parquet_index_is_data_when_named_and_row_labels_otherwise(tmp_path, card_contract):
    rows = generated_day(DAY, rows_per_day=30)
    named = tmp_path / "named.parquet"
    rows.set_index("transaction_id").to_parquet(named)
    assert read_file(str(named), card_contract)["transaction_id"].tolist() == (
        rows["transaction_id"].tolist()
    )
    repeated = tmp_path / "repeated.parquet"
    pd.concat([rows, rows.assign(transaction_id=rows["transaction_id"] + "-b")]).to_parquet(
        repeated
    )
    frame = read_file(str(repeated), card_contract)
    assert isinstance(frame.index, pd.RangeIndex) and len(frame) == 2 * len(rows)


# Where rows in no partition go -------------------------------------------------------------------


def placed(*times: object, span: PartitionSpan = SPAN):
    from mlplatform.core.sources import place_rows

    return place_rows(pd.Series(times, dtype=object), span)


@pytest.mark.parametrize(
    ("times", "carrier"),
    [
        # The file's first day that is a partition, whatever its other rows.
        (("1970-01-01", "2026-03-04T08:00Z", "2026-03-02T08:00Z", "2099-01-01"), DAY),
        # No row in any partition: the first partition, whichever way the rows miss.
        (("1970-01-01", "2025-12-31T23:59:59Z"), SPAN.first),
        (("2099-01-01", "2031-05-01T00:00Z"), SPAN.first),
        (("yesterday", None), SPAN.first),
        (("1970-01-01", "2099-01-01", "not a time"), SPAN.first),
        # A day still to become a partition may become the file's first: the rows wait for it.
        (("1970-01-01", "2026-03-10T08:00Z"), None),
        # Nothing to carry.
        (("2026-03-02T08:00Z", "2026-03-10T08:00Z"), None),
    ],
    ids=["mixed", "all-before", "all-future", "no-event-time", "all-outside-mixed-reasons",
         "outside-and-pending", "nothing-outside"],
)  # fmt: skip
def test_the_carrier_day_of_rows_in_no_partition(times, carrier):
    assert placed(*times).carrier_day(SPAN) == carrier


def test_rows_in_no_partition_wait_while_the_first_partition_does_not_exist():
    today = dt.date(2026, 1, 1)  # the start date: its partition exists from tomorrow
    span = PartitionSpan(today, today - dt.timedelta(days=1), today)
    assert placed("1970-01-01", span=span).carrier_day(span) is None


def test_the_carrier_day_does_not_move_with_the_clock():
    """Running the days again later never quarantines the same rows on a second day."""
    rows = ("1970-01-01", "2099-01-01")
    later = PartitionSpan(SPAN.first, dt.date(2026, 6, 30), dt.date(2026, 7, 1))
    assert placed(*rows).carrier_day(SPAN) == placed(*rows, span=later).carrier_day(later)


@pytest.mark.parametrize(
    ("times", "reason"),
    [
        (["1970-01-01T00:00:00Z", "2025-12-31T23:59:59Z"],
         "before the first partition (2026-01-01)"),
        (["2099-01-01T00:00:00Z", "2031-05-01T00:00:00Z"], "in the future (after 2026-03-11)"),
        (["yesterday", None], None),
    ],
    ids=["before-the-start", "far-future", "no-readable-event-time"],
)  # fmt: skip
def test_a_file_with_no_row_in_any_partition_is_carried_by_the_first_partition_only(
    tmp_path, card_contract, times, reason
):
    rows = generated_day(DAY, rows_per_day=40).astype({"event_time": object})
    rows["event_time"] = [times[i % len(times)] for i in range(len(rows))]
    path = tmp_path / "tx.csv"
    rows.to_csv(path, index=False)
    progress: list[str] = []

    first = read(path, card_contract, day=SPAN.first, log=progress.append)
    assert first["transaction_id"].tolist() == rows["transaction_id"].tolist()
    assert first[OUTSIDE_PARTITIONS_COLUMN].notna().all()
    if reason is not None:
        assert set(first[OUTSIDE_PARTITIONS_COLUMN]) == {reason}
    assert progress == [
        f"{path}: {len(rows)} rows read, 0 on {SPAN.first}, {len(rows)} in no partition "
        f"(quarantined with {SPAN.first})"
    ]
    # Exactly once: every other partition finds no row of its own and none to carry.
    day = SPAN.first + dt.timedelta(days=1)
    while day <= SPAN.last:
        with pytest.raises(DatasetError, match=f"no rows for {day} in 1 file"):
            read(path, card_contract, day=day)
        day += dt.timedelta(days=1)


def test_the_first_partition_carries_a_file_with_no_row_in_any_partition_beside_its_own_rows(
    tmp_path, card_contract
):
    own = generated_day(SPAN.first, rows_per_day=30)
    own.to_parquet(tmp_path / "own.parquet")
    outside = generated_day(DAY, rows_per_day=20).assign(
        event_time=pd.Timestamp("1970-01-01", tz="UTC")
    )
    outside.to_parquet(tmp_path / "old.parquet")
    first = read(tmp_path, card_contract, day=SPAN.first)
    carried = first[OUTSIDE_PARTITIONS_COLUMN].notna()
    assert first.loc[carried, "transaction_id"].tolist() == outside["transaction_id"].tolist()
    assert sorted(first.loc[~carried, "transaction_id"]) == sorted(own["transaction_id"])


def test_files_that_type_a_column_differently_are_combined_as_text(tmp_path, card_contract):
    """A CSV (text) and a Parquet file (timestamps, floats) with rows of one day: the columns
    they type differently hold each value's text, which validation converts, and the frame can
    be stored (a column mixing Timestamps and strings cannot)."""
    import io

    from mlplatform.core.validate import validate

    as_csv = generated_day(DAY, rows_per_day=30)
    as_parquet = generated_day(DAY, rows_per_day=30, seed=7)
    as_parquet["transaction_id"] = as_parquet["transaction_id"] + "-b"
    as_csv.to_csv(tmp_path / "a.csv", index=False)
    as_parquet.to_parquet(tmp_path / "b.parquet")
    day = read(tmp_path, card_contract)
    assert len(day) == len(as_csv) + len(as_parquet)
    for column in ("event_time", "amount", "is_fraud"):
        assert day[column].map(type).eq(str).all(), column
    day.to_parquet(io.BytesIO())
    outcome = validate(day, card_contract)
    csv_alone = validate(read(tmp_path / "a.csv", card_contract), card_contract)
    parquet_alone = validate(read(tmp_path / "b.parquet", card_contract), card_contract)
    assert len(outcome.validated) == len(csv_alone.validated) + len(parquet_alone.validated)


def test_rows_carried_to_quarantine_are_not_the_days_own_rejects(tmp_path, card_contract):
    """Validation of the first partition: carried rows are quarantined with their reason, and
    the day's quarantine rate (what its gate judges) counts its own rows only; a partition
    carrying nothing else still validates (to no rows)."""
    from mlplatform.core.validate import carried_in_quarantine, validate

    own = generated_day(SPAN.first, rows_per_day=200)
    own.to_parquet(tmp_path / "own.parquet")
    old = generated_day(DAY, rows_per_day=100).assign(
        transaction_id=lambda f: f["transaction_id"] + "-old",
        event_time=pd.Timestamp("1970-01-01", tz="UTC"),
    )
    old.to_parquet(tmp_path / "old.parquet")
    own_alone = validate(read_file(str(tmp_path / "own.parquet"), card_contract), card_contract)
    outcome = validate(read(tmp_path, card_contract, day=SPAN.first), card_contract)
    assert outcome.carried_rows == len(old)
    assert len(outcome.quarantined) == len(own_alone.quarantined) + len(old)
    assert outcome.quarantine_rate == own_alone.quarantine_rate
    carried = carried_in_quarantine(outcome.quarantined, card_contract)
    assert sorted(outcome.quarantined.loc[carried, "transaction_id"]) == sorted(
        old["transaction_id"]
    )

    (tmp_path / "own.parquet").unlink()
    alone = validate(read(tmp_path, card_contract, day=SPAN.first), card_contract)
    assert len(alone.validated) == 0 and list(alone.validated.columns) == list(
        own_alone.validated.columns
    )
    assert alone.carried_rows == len(alone.quarantined) == len(old)
    assert alone.quarantine_rate == 0.0
