"""Which files in a landing location are new or changed, and which days they hold."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field


@dataclass
class LandingCursor:
    """Fingerprints of the files already handed to runs, and days seen but not yet partitions
    (today's file arrives before today's partition exists)."""

    processed: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str | None) -> LandingCursor:
        if not text:
            return cls()
        return cls(processed=dict(json.loads(text).get("processed", {})))

    def serialize(self) -> str:
        return json.dumps({"processed": self.processed}, sort_keys=True)


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

    from mlplatform.core.sources import list_source_files

    result = {}
    for file in list_source_files(path, file_format):
        fs, _, (stripped,) = fsspec.get_fs_token_paths(file)
        info = fs.info(stripped)
        modified = info.get("mtime") or info.get("LastModified")
        stamp = info.get("ETag") or modified or ""
        result[file] = LandedFile(f"{info.get('size')}:{stamp}", _epoch(modified))
    return result


def days_in_file(file: str, event_time_column: str, file_format: str = "auto") -> set[dt.date]:
    """The calendar days (UTC) of the event times in one file, reading only that column."""
    import fsspec
    import pandas as pd

    from mlplatform.core.sources import _format_of

    kind = _format_of(file, file_format)
    with fsspec.open(file, "rb", compression="infer") as handle:
        if kind == "csv":
            column = pd.read_csv(handle, usecols=[event_time_column])[event_time_column]
        else:
            column = pd.read_parquet(handle, columns=[event_time_column])[event_time_column]
    times = pd.to_datetime(column, utc=True, errors="coerce", format="ISO8601").dropna()
    return set(times.dt.date.unique())
