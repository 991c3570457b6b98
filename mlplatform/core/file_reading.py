"""One data file read as it was written: CSV fields stay text (validation converts the contract's
typed columns and quarantines a cell that does not convert, with its reason), Parquet keeps its
stored types, and a record whose structure is wrong is refused with its file and line, never
repaired. Errors are sorted by cause: the content (`DatasetError`, fail fast) or the storage
(`SourceError`, may pass).
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import re
import zlib
from collections.abc import Iterator
from typing import IO

import numpy as np
import pandas as pd

from mlplatform.core.contract import Contract
from mlplatform.core.source_files import SourceError, format_of
from mlplatform.core.validate import DatasetError

UTF8_BOM = b"\xef\xbb\xbf"

# Errors that say the bytes themselves are wrong; some are OSErrors (BadGzipFile), so they are
# sorted out before the OSErrors that mean the storage did not answer.
_CONTENT_ERRORS: tuple[type[BaseException], ...] = (
    gzip.BadGzipFile,
    EOFError,  # a compressed file cut short
    zlib.error,
    UnicodeError,
    csv.Error,
    ValueError,  # pyarrow.ArrowInvalid ("not a Parquet file") is a ValueError
    KeyError,  # a column asked for is not in the file
)
_STORAGE_ERRORS: tuple[type[BaseException], ...] = (
    FileNotFoundError,  # removed or being replaced between listing and reading
    PermissionError,
    ConnectionError,
    TimeoutError,
)


CHUNK_BYTES = 1 << 20


def _line_ends(data: bytes) -> int:
    """The lines `data` ends: a line ends at LF, CR LF or a lone CR (old Mac exports)."""
    return data.count(b"\n") + data.count(b"\r") - data.count(b"\r\n")


def _where(file: str, block: bytes, lines_before: int, position: int, what: str) -> str:
    line_start = max(block.rfind(b"\n", 0, position), block.rfind(b"\r", 0, position)) + 1
    line = lines_before + _line_ends(block[:position]) + 1
    return f"{file}: line {line}: {what} at byte {position - line_start + 1}"


_LINE_BREAK = re.compile(r"(\r\n|\r|\n)")


def _text_lines(handle: IO[bytes], file: str) -> Iterator[str]:
    """The physical lines of a CSV file for `csv.reader`, each with its line end (LF, CR LF or a
    lone CR), decoded a block at a time (a line at a time costs seconds per million lines); a NUL
    byte or bytes that are not UTF-8 are refused naming their line."""
    pending, lines_before, first = b"", 0, True
    while True:
        chunk = handle.read(CHUNK_BYTES)
        if first:
            chunk, first = chunk.removeprefix(UTF8_BOM), False
        data = pending + chunk
        if chunk:
            # Cut after the last line end; a CR as the last byte waits, its LF may come next.
            cut = data.rfind(b"\n") + 1
            cut = max(cut, data.rfind(b"\r", cut, len(data) - 1) + 1)
        else:
            cut = len(data)
        block, pending = data[:cut], data[cut:]
        nul = block.find(b"\x00")
        if nul >= 0:
            # pandas cuts the field at a NUL and the csv module keeps it: either way the value is
            # not what the producer meant to write.
            raise DatasetError(_where(file, block, lines_before, nul, "a NUL byte"))
        try:
            text = block.decode("utf-8")
        except UnicodeDecodeError as error:
            byte = block[error.start : error.start + 1]
            raise DatasetError(
                _where(file, block, lines_before, error.start, f"not UTF-8 text ({byte!r})")
            ) from None
        if text.count("\r") == text.count("\r\n"):  # LF or CR LF: the fast split
            lines = text.split("\n")
            for line in lines[:-1]:
                yield line + "\n"
        else:
            parts = _LINE_BREAK.split(text)
            lines = parts[::2]
            for line, end in zip(lines, parts[1::2], strict=False):  # the last has no end
                yield line + end
        if lines[-1]:
            yield lines[-1]  # the last line, without a line break
        if not chunk:
            return
        lines_before += _line_ends(block)


def _looks_like_several_records(record: list[str], width: int, event_index: int) -> bool:
    """Whether the lines a multi-line record spans are each a whole record of their own: a quote
    opened in one record and closed a few records later swallows the records between, and the
    merged record can still have the right number of fields. A legitimate quoted field with a
    line break does not make every line of it a record with a readable event time. The lines are
    the record's fields joined again (the quotes gone), split at the line breaks."""
    for line in _LINE_BREAK.split(",".join(record))[::2]:
        fields = line.split(",")
        if len(fields) != width:
            return False
        stamp = pd.to_datetime(fields[event_index].strip(), errors="coerce", utc=True)
        if pd.isna(stamp):
            return False
    return True


def _field_problem(
    lines: Iterator[str], start: int, header: list[str], max_field_chars: int
) -> str | None:
    """What stopped the csv module in the record that starts at line `start` of `lines` (the
    file's lines from its first): a field over `max_field_chars` (its size and lines) or a quote
    never closed. None when it is neither. Streams the field: memory stays one line."""
    number, size, quoted, opened, at_start, line_no = 0, 0, False, start, True, 0

    def named(index: int) -> str:
        return f"field {index + 1}" + (f" ({header[index]})" if index < len(header) else "")

    def too_large(last: int) -> str | None:
        if size <= max_field_chars:
            return None
        where = f"line {opened}" if last == opened else f"lines {opened}-{last}"
        return (
            f"{where}: {named(number)} is {size:,} characters, over the limit of "
            f"{max_field_chars:,} (data_source.csv_max_field_chars)"
            + (": a quote left open?" if last != opened else "")
        )

    for line_no, line in enumerate(lines, start=1):
        if line_no < start:
            continue
        position, end = 0, len(line.rstrip("\r\n"))
        while True:
            if at_start:
                size, opened, at_start = 0, line_no, False
                quoted = position < len(line) and line[position] == '"'
                position += quoted
            if quoted:
                close = line.find('"', position)
                if close < 0:  # the field goes on, line end and all
                    size += len(line) - position
                    break
                size += close - position
                if line.startswith('"', close + 1):  # a doubled quote is one quote
                    size, position = size + 1, close + 2
                    continue
                quoted, position = False, close + 1
                continue
            comma = line.find(",", position, end)
            size += (end if comma < 0 else comma) - position
            problem = too_large(line_no)
            if problem or comma < 0:
                return problem  # the record ended (or this field is the one)
            number, position, at_start = number + 1, comma + 1, True
    if quoted:
        return (
            f"line {opened}: a quote opened in {named(number)} at line {opened} is never closed "
            f"(the file ends inside it, {size:,} characters later)"
        )
    return None


def _read_csv(
    handle: IO[bytes], file: str, contract: Contract, max_field_chars: int
) -> pd.DataFrame:
    """Every field as the text written; an empty field is a missing value. A field may hold up
    to `max_field_chars` characters (data_source.csv_max_field_chars); a longer one, or a quote
    never closed, is refused naming its line (and the field's size).

    Python's csv module with strict=True, not pandas or pyarrow: it refuses a quote closed in the
    middle of a field, and its line count tells which physical lines each record spans, which is
    what is needed to refuse a record with the wrong number of fields (pandas pads a short record
    with null) or a quote left open across records (pandas and pyarrow read it as one long field
    without an error), naming the line. pyarrow's invalid_row_handler sees the field count only,
    and no line number once quoted line breaks are allowed.
    """
    reader = csv.reader(_text_lines(handle, file), strict=True)
    end = 0  # the line the previous record ended on
    header: list[str] = []
    # The csv module's limit is process-wide: set for this read, put back after it.
    previous_limit = csv.field_size_limit(max_field_chars)
    try:
        header = next(reader, None)
        if header is None:
            raise DatasetError(f"{file}: empty file (no header line)")
        unnamed = [i + 1 for i, name in enumerate(header) if not name.strip()]
        if unnamed:
            raise DatasetError(
                f"{file}: line 1: header column(s) {unnamed} have no name (a stray delimiter?)"
            )
        repeated = sorted({name for name in header if header.count(name) > 1})
        if repeated:
            raise DatasetError(f"{file}: line 1: header names column(s) {repeated} more than once")
        width = len(header)
        event_index = header.index(contract.event_time) if contract.event_time in header else -1
        rows: list[list[str]] = []
        end = reader.line_num
        for record in reader:
            start, end = end + 1, reader.line_num
            if len(record) == width and end == start:
                rows.append(record)
                continue
            if not record:
                continue  # a blank line is no record
            if len(record) != width:
                raise DatasetError(
                    f"{file}: line {start}: {len(record)} fields where the header has {width}"
                    + (" (a field is missing)" if len(record) < width else " (too many fields)")
                )
            if event_index >= 0 and _looks_like_several_records(record, width, event_index):
                raise DatasetError(
                    f"{file}: lines {start}-{end}: a quote opened at line {start} is closed at "
                    f"line {end}, and every line between is a record of its own: a quote left "
                    "open?"
                )
            rows.append(record)
    except csv.Error as error:
        # The csv module says "field larger than field limit" both for a long field and for a
        # quote never closed (the rest of the file is then one field): read the record again.
        problem = None
        if str(error).startswith(("field larger", "unexpected end")) and handle.seekable():
            handle.seek(0)
            problem = _field_problem(_text_lines(handle, file), end + 1, header, max_field_chars)
        where = problem or f"line {end + 1}: malformed CSV record ({error})"
        raise DatasetError(f"{file}: {where}") from None
    finally:
        csv.field_size_limit(previous_limit)
    columns = {}
    for name, values in zip(header, zip(*rows, strict=True) if rows else [()] * width, strict=True):
        column = np.array(values, dtype=object)
        column[column == ""] = None  # missing stays missing: the empty string is how CSV writes it
        columns[name] = column
    return pd.DataFrame(columns, columns=header)


@contextlib.contextmanager
def errors_by_cause(file: str, kind: str) -> Iterator[None]:
    """Errors met while reading `file` as DatasetError (the content: fail fast) or SourceError
    (the storage did not answer: may pass), both naming the file."""
    try:
        yield
    except (DatasetError, SourceError):
        raise
    except _CONTENT_ERRORS as error:
        raise DatasetError(
            f"{file}: cannot read as {kind} ({type(error).__name__}: {error})"
        ) from error
    except (*_STORAGE_ERRORS, OSError) as error:
        # The storage did not answer (network, permissions, a file being replaced): may pass.
        raise SourceError(f"{file}: cannot read ({type(error).__name__}: {error})") from error


def parse_parquet(data: bytes, file: str, columns: list[str] | None = None) -> pd.DataFrame:
    """A Parquet file's bytes as a frame. Parsed from memory after the read, because pyarrow
    reports corrupt content as a bare OSError ("Corrupt snappy compressed data"), which would
    otherwise look like the storage failing and be retried."""
    import io

    try:
        return pd.read_parquet(io.BytesIO(data), columns=columns)
    except Exception as error:
        raise DatasetError(
            f"{file}: cannot read as parquet ({type(error).__name__}: {error})"
        ) from error


def read_file(
    file: str, contract: Contract, file_format: str = "auto", max_field_chars: int = 2**31 - 1
) -> pd.DataFrame:
    """One data file, every contract column present; CSV as text, Parquet as its stored types.
    `max_field_chars`: the longest CSV field read (the pipeline passes its setting,
    data_source.csv_max_field_chars; unset, only the csv module's own bound)."""
    import fsspec

    kind = format_of(file, file_format)
    with errors_by_cause(file, kind), fsspec.open(file, "rb", compression="infer") as handle:
        if kind == "csv":
            frame = _read_csv(handle, file, contract, max_field_chars)
        else:
            data = handle.read()
    if kind == "parquet":
        frame = parse_parquet(data, file)
        if not isinstance(frame.index, pd.RangeIndex):
            # pandas stores a frame's index in the file: a named one is a column of the data, an
            # unnamed one only row labels (possibly repeated, which would break row alignment).
            frame = frame.reset_index(drop=all(name is None for name in frame.index.names))
    missing = [name for name in contract.event_columns if name not in frame.columns]
    if missing:
        raise DatasetError(
            f"{file}: columns required by contract {contract.source} are missing: {missing}"
        )
    return frame
