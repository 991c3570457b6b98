"""Which files in a landing location are new or changed, and which days they hold."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field

from mlplatform.core.file_reading import errors_by_cause, parse_parquet
from mlplatform.core.source_files import SourceError, format_of, list_source_files
from mlplatform.core.sources import PartitionSpan, Placement, place_rows


@dataclass
class LandingCursor:
    """What the sensor has handed to runs: `processed`, the fingerprint of each file all of whose
    days were requested; `requested`, for a file with days that are not partitions yet (today's
    rows arrive before today's partition exists), its fingerprint and the days already requested,
    so its other days run now and only the pending ones are waited for."""

    processed: dict[str, str] = field(default_factory=dict)
    requested: dict[str, dict[str, list[str]]] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str | None) -> LandingCursor:
        if not text:
            return cls()
        state = json.loads(text)
        return cls(
            processed=dict(state.get("processed", {})),
            requested={
                file: {fingerprint: list(days) for fingerprint, days in by_version.items()}
                for file, by_version in state.get("requested", {}).items()
            },
        )

    def serialize(self) -> str:
        return json.dumps(
            {"processed": self.processed, "requested": self.requested}, sort_keys=True
        )

    def already_requested(self, file: str, fingerprint: str) -> set[str]:
        """Days of this version of the file already requested."""
        return set(self.requested.get(file, {}).get(fingerprint, []))

    def mark(self, file: str, fingerprint: str, requested: set[str], done: bool) -> None:
        self.requested.pop(file, None)
        if done:
            self.processed[file] = fingerprint
        else:
            self.processed.pop(file, None)
            if requested:
                self.requested[file] = {fingerprint: sorted(requested)}


@dataclass(frozen=True)
class LandedFile:
    fingerprint: str  # size and modification time (or ETag): changes when the file does
    modified: float | None  # seconds since the epoch, when the storage tells


def _epoch(value: object) -> float | None:
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, dt.datetime):
        return value.timestamp()
    return None


def fingerprints(path: str, file_format: str = "auto") -> dict[str, LandedFile]:
    """file URL -> its fingerprint and modification time, for every data file under `path`."""
    import fsspec

    result = {}
    for file in list_source_files(path, file_format):
        fs, _, (stripped,) = fsspec.get_fs_token_paths(file)
        try:
            info = fs.info(stripped)
        except OSError as error:  # removed since listed, or the storage did not answer
            raise SourceError(f"{file}: cannot read its details ({error})") from error
        modified = info.get("mtime") or info.get("LastModified")
        stamp = info.get("ETag") or modified or ""
        result[file] = LandedFile(f"{info.get('size')}:{stamp}", _epoch(modified))
    return result


def place_file_rows(
    file: str, event_time_column: str, span: PartitionSpan, file_format: str = "auto"
) -> Placement:
    """Where the rows of one file belong, reading only its event-time column.

    Lenient on purpose: the sensor only needs the days, and a file with a malformed record should
    still get its runs, where the strict reader refuses it naming the line (and the failure is
    alerted), rather than be left silently unprocessed here.
    """
    import fsspec
    import pandas as pd

    kind = format_of(file, file_format)
    with errors_by_cause(file, kind), fsspec.open(file, "rb", compression="infer") as handle:
        if kind == "csv":
            column = pd.read_csv(
                handle,
                usecols=[event_time_column],
                dtype=str,
                keep_default_na=False,
                na_values=[""],
                on_bad_lines="skip",
                encoding_errors="replace",
            )[event_time_column]
        else:
            data = handle.read()
    if kind == "parquet":
        column = parse_parquet(data, file, columns=[event_time_column])[event_time_column]
    return place_rows(column, span)
