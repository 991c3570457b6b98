"""Reading transaction files (CSV or Parquet; a file, a folder or a glob; local or any fsspec URL)
and cutting them into daily partitions by the contract's event-time column."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from mlplatform.core.validate import DatasetError

SUFFIXES = {".csv": "csv", ".csv.gz": "csv", ".parquet": "parquet", ".pq": "parquet"}


class SourceError(OSError):
    """Files of a source cannot be found or reached (possibly for a while: retryable); the message
    names the path. Content that cannot be parsed is a DatasetError instead."""


def _format_of(path: str, declared: str) -> str:
    if declared != "auto":
        return declared
    for suffix, kind in SUFFIXES.items():
        if path.lower().endswith(suffix):
            return kind
    raise SourceError(
        f"{path}: cannot tell the file format from its name; set data_source.file_format"
    )


def list_source_files(path: str, file_format: str = "auto") -> list[str]:
    """Every data file that `path` names: itself, the files of a folder, or a glob's matches."""
    import fsspec

    fs, _, _ = fsspec.get_fs_token_paths(path)
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]

    def url(p: str) -> str:
        return p if protocol in ("file", "local") else f"{protocol}://{p}"

    stripped = fs._strip_protocol(path)
    if any(ch in stripped for ch in "*?["):
        found = sorted(fs.glob(stripped))
    elif fs.isdir(stripped):
        found = sorted(
            p
            for p in fs.find(stripped)
            if file_format != "auto" or any(p.lower().endswith(s) for s in SUFFIXES)
        )
    elif fs.exists(stripped):
        found = [stripped]
    else:
        raise SourceError(f"{path}: no such file or folder")
    files = [url(p) for p in found if not fs.isdir(p)]
    if not files:
        raise SourceError(f"{path}: no data files found")
    return files


def read_source_day(
    path: str, event_time_column: str, day: dt.date, file_format: str = "auto"
) -> pd.DataFrame:
    """The rows of all files under `path` whose event time falls on `day` (UTC)."""
    import fsspec

    start = pd.Timestamp(day, tz="UTC")
    end = start + pd.Timedelta(days=1)
    frames = []
    for file in list_source_files(path, file_format):
        kind = _format_of(file, file_format)
        try:
            with fsspec.open(file, "rb", compression="infer") as handle:
                frame = pd.read_csv(handle) if kind == "csv" else pd.read_parquet(handle)
        except OSError as error:
            # The storage did not answer (network, permissions, a file being replaced): may pass.
            raise SourceError(f"{file}: cannot read ({type(error).__name__}: {error})") from error
        except Exception as error:  # the content itself is bad: retrying will not help
            raise DatasetError(
                f"{file}: cannot read as {kind} ({type(error).__name__}: {error})"
            ) from error
        if event_time_column not in frame.columns:
            raise DatasetError(
                f"{file}: event-time column '{event_time_column}' named by the contract is missing"
            )
        event_time = pd.to_datetime(
            frame[event_time_column], errors="coerce", utc=True, format="ISO8601"
        )
        # A row without a readable event time belongs to no partition: refuse the file rather
        # than lose the row.
        unplaceable = event_time.isna().to_numpy().nonzero()[0]
        if len(unplaceable):
            row = int(unplaceable[0])
            raise DatasetError(
                f"{file}: {len(unplaceable)} row(s) without a valid event time, first at "
                f"{'line ' + str(row + 2) if kind == 'csv' else 'row ' + str(row)}: "
                f"{frame[event_time_column].iloc[row]!r}"
            )
        frames.append(frame.loc[(event_time >= start) & (event_time < end)])
    return pd.concat(frames, ignore_index=True)
