"""The files a source names (a file, a folder or a glob; local or any fsspec URL) and their
format, and `SourceError` for storage that cannot answer (which may pass: retried)."""

from __future__ import annotations

from mlplatform.core.validate import DatasetError

SUFFIXES = {".csv": "csv", ".csv.gz": "csv", ".parquet": "parquet", ".pq": "parquet"}


class SourceError(Exception):
    """The storage holding a source cannot be reached, or its files are not there yet: this may
    pass, so it is retryable. Deliberately not an OSError: Python raises some content errors as
    OSError (a file that is not gzip), and those must not look retryable. The message names the
    path. Content that cannot be read is a DatasetError."""


def format_of(path: str, declared: str) -> str:
    if declared != "auto":
        return declared
    for suffix, kind in SUFFIXES.items():
        if path.lower().endswith(suffix):
            return kind
    # A settings problem, not a passing one: retrying cannot teach the platform a new suffix.
    raise DatasetError(
        f"{path}: cannot tell the file format from its name (known endings: "
        f"{', '.join(SUFFIXES)}); set data_source.file_format"
    )


def _file_ancestor(fs, stripped: str) -> str | None:
    """The nearest folder on the way to `stripped` that is a file, if any."""
    parent = stripped.rstrip("/").rpartition("/")[0]
    while parent:
        if fs.exists(parent):
            return None if fs.isdir(parent) else parent
        parent = parent.rpartition("/")[0]
    return None


def list_source_files(path: str, file_format: str = "auto") -> list[str]:
    """Every data file that `path` names: itself, the files of a folder, or a glob's matches."""
    import fsspec

    try:
        fs, _, _ = fsspec.get_fs_token_paths(path)
        protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
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
            blocking = _file_ancestor(fs, stripped)
            if blocking is not None:
                raise DatasetError(
                    f"{path}: {blocking} is a file, not a folder; check data_source.path"
                )
            raise SourceError(f"{path}: no such file or folder")
        files = [
            p if protocol in ("file", "local") else f"{protocol}://{p}"
            for p in found
            if not fs.isdir(p)
        ]
    except (NotADirectoryError, IsADirectoryError) as error:
        raise DatasetError(
            f"{path}: not a usable data path ({error}); check data_source.path"
        ) from error
    except OSError as error:
        # Connection refused, timed out, permission flapping on a mount: may pass.
        raise SourceError(f"{path}: cannot list ({type(error).__name__}: {error})") from error
    if not files:
        raise SourceError(f"{path}: no data files found")
    return files
