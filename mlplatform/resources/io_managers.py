"""IO managers for asset partitions, on any fsspec filesystem (local folder, s3://...).

DataFrames are stored as Parquet, small records (model and registry summaries) as JSON. Local writes
are atomic: the file is written beside its destination and renamed over it, so a crash mid-write
leaves the previous good version in place. Object stores replace an object in one PUT anyway.

A writer killed mid-write (kill -9, a lost machine) leaves its temporary file behind. Each name says
who wrote it (`<file>.<pid>-<id>@<host>.tmp`), and every local write first removes the temporary
files in its folder whose writer is gone: on this host, when that process no longer runs; from
another host (or unnamed), once untouched for longer than any run may last. A live writer's file is
never removed.

Where they store (`base_dir`, `storage_options`, which may carry an object store's credentials) is
`Locked` (resources/locked.py): from the settings, never from run config.
"""

import contextlib
import io
import json
import os
import re
import time
import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, BinaryIO

import dagster as dg

from mlplatform.core.processes import HOST, process_is_alive
from mlplatform.resources.failures import failing_fast
from mlplatform.resources.locked import Locked

if TYPE_CHECKING:
    import pandas as pd
    from upath import UPath


def _is_local(path: "UPath") -> bool:
    return getattr(path, "protocol", "") in ("", "file", "local")


def _local_file(path: "UPath") -> str:
    return os.fspath(path.path if hasattr(path, "path") else path)


# A temporary file nobody on this host can vouch for is left this long after its last write: past
# any run's maximum runtime (orchestration.yaml, 2 hours by default), so its writer's run is over.
UNVOUCHED_TEMPORARY_SECONDS = 6 * 3600
_TEMPORARY = re.compile(r"\.(?:(?P<pid>\d+)-)?[0-9a-f]{32}(?:@(?P<host>[^/]+))?\.tmp$")


def temporary_name(target: str) -> str:
    """Where a write to `target` goes until it is complete: beside it, naming its writer."""
    return f"{target}.{os.getpid()}-{uuid.uuid4().hex}@{HOST}.tmp"


def sweep_abandoned_temporaries(folder: str, now: float | None = None) -> list[str]:
    """Remove the temporary files in `folder` whose writer is gone (see the module's docstring);
    the paths removed."""
    now = time.time() if now is None else now
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return []
    removed = []
    for name in names:
        match = _TEMPORARY.search(name)
        if match is None:
            continue
        path = os.path.join(folder, name)
        try:
            modified = os.stat(path).st_mtime
        except FileNotFoundError:
            continue  # its writer finished (renamed it) meanwhile
        pid, host = match.group("pid"), match.group("host")
        if pid is not None and host == HOST:
            abandoned = not process_is_alive(int(pid), active_at=modified)
        else:
            abandoned = now - modified > UNVOUCHED_TEMPORARY_SECONDS
        if abandoned:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
                removed.append(path)
    return removed


def write_atomically(path: "UPath", write: Callable[[BinaryIO], None]) -> None:
    """Call `write` with a binary handle whose content replaces `path` only once complete."""
    if _is_local(path):
        target = _local_file(path)
        temporary = temporary_name(target)
        try:
            with open(temporary, "wb") as handle:
                write(handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, target)
        finally:
            if os.path.exists(temporary):
                os.unlink(temporary)
    else:
        # An object store commits whatever was written when the handle closes, even on an
        # error: the object is built in memory first and sent whole, or not at all.
        buffer = io.BytesIO()
        write(buffer)
        with path.open("wb") as handle:
            handle.write(buffer.getbuffer())


@contextlib.contextmanager
def _by_cause(what: str) -> Iterator[None]:
    """The platform's error policy (error_handling.yaml) for storage: Dagster hands an IO
    manager's error to the step's retry policy whatever it is, so only errors a rule calls
    transient (a full or busy disk, a lost connection) get there; a file that is corrupt, missing
    or forbidden, or a programming error, fails at once, naming the asset, partition and file."""
    from mlplatform.config.active import ERROR_HANDLING

    try:
        yield
    except (dg.Failure, dg.RetryRequested):
        raise
    except Exception as error:
        rule = ERROR_HANDLING.rule_for(error)
        if rule is not None and rule.action == "retry":
            raise
        raise failing_fast(what, error, rule) from error


def _naming(context: dg.InputContext | dg.OutputContext) -> str:
    """`features[2026-03-02]`; an input over a window names its first and last day."""
    keys = list(context.asset_partition_keys) if context.has_asset_partitions else []
    span = "" if not keys else keys[0] if len(keys) == 1 else f"{keys[0]}..{keys[-1]}"
    return context.asset_key.to_user_string() + (f"[{span}]" if span else "")


class _PartitionedFileIOManager(dg.UPathIOManager):
    def __init__(self, base_dir: str, storage_options: dict[str, Any] | None = None):
        from upath import UPath

        super().__init__(base_path=UPath(base_dir, **(storage_options or {})))

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        with _by_cause(f"writing {_naming(context)} under {self._base_path}"):
            super().handle_output(context, obj)

    def load_input(self, context: dg.InputContext) -> Any:
        with _by_cause(f"reading {_naming(context)} from {self._base_path}"):
            return super().load_input(context)

    def make_safe_partition_path(self, base_path: "UPath", partition: str) -> "UPath":
        return base_path / partition.replace("/", "_").lstrip(".")

    def write(
        self, context: dg.OutputContext, path: "UPath", write: Callable[[BinaryIO], None]
    ) -> None:
        """`write_atomically`, after removing what killed writers left beside `path`."""
        if _is_local(path):
            folder = os.path.dirname(_local_file(path))
            removed = sweep_abandoned_temporaries(folder)
            if removed:
                context.log.warning(
                    f"Removed {len(removed)} temporary file(s) left by writers that are gone: "
                    f"{removed}"
                )
        write_atomically(path, write)


class ParquetFrameIOManager(_PartitionedFileIOManager):
    """DataFrames as Parquet. Inputs mapped to several partitions (a trailing window) load as one
    DataFrame; with `allow_missing_partitions` in the input's metadata, absent days are skipped and
    logged instead of failing the step; with `allow_no_partitions` too, none at all is an empty
    DataFrame."""

    extension = ".parquet"

    def dump_to_path(self, context: dg.OutputContext, obj: "pd.DataFrame", path: "UPath") -> None:
        import pandas as pd

        if not isinstance(obj, pd.DataFrame):
            raise dg.Failure(
                f"{context.asset_key.to_user_string()}: the Parquet IO manager stores DataFrames, "
                f"got {type(obj).__name__}",
                allow_retries=False,
            )
        # Written straight into the temporary file: no in-memory copy of the whole file. zstd:
        # as fast as snappy to write and read here, and files about 40% smaller.
        self.write(
            context, path, lambda handle: obj.to_parquet(handle, index=False, compression="zstd")
        )

    def load_from_path(self, context: dg.InputContext, path: "UPath") -> "pd.DataFrame":
        import pyarrow.parquet as pq

        if _is_local(path):
            table = pq.read_table(_local_file(path))
        else:
            with path.open("rb") as handle:
                table = pq.read_table(handle)
        # Each column is released from Arrow as soon as pandas has it, so the peak is about one
        # copy of the frame, not two.
        frame = table.to_pandas(split_blocks=True, self_destruct=True)
        # Columns pandas took over without a copy (numbers, times, category codes) are read-only
        # Arrow memory; a copy of each, one at a time, gives callers the writable frame
        # pd.read_parquet would. Text columns are new Python objects already.
        for column in frame.columns:
            if frame[column].dtype != object:
                frame[column] = frame[column].copy()
        return frame

    def load_partitions(self, context: dg.InputContext) -> "pd.DataFrame":
        """The mapped partitions as one DataFrame, in partition order. Days not materialized are
        left out when the input allows it, and named in one line: Dagster's own loader warns once
        per missing day ("Couldn't load partition"), which on a first day reads like six errors
        for a window that is simply not there yet."""
        import pandas as pd

        metadata = context.definition_metadata or {}
        name = context.asset_key.to_user_string()
        paths = self._get_paths_for_partitions(context)
        keys = sorted(context.asset_partition_keys)
        frames, missing = [], []
        for key in keys:
            try:
                frames.append(self.load_from_path(context, paths[key]))
            except FileNotFoundError:
                if not metadata.get("allow_missing_partitions"):
                    raise
                missing.append(key)
        if not frames:
            if metadata.get("allow_no_partitions"):
                # Outcomes still to come, say: none yet is a state, not an error.
                context.log.info(f"None of the partitions {keys} of {name} are materialized yet")
                return pd.DataFrame()
            raise dg.Failure(
                f"none of the partitions {keys} of {name} have been materialized",
                allow_retries=False,
            )
        if missing:
            context.log.info(
                f"Loaded {len(frames)} of {len(keys)} partitions of {name}; not materialized, so "
                f"left out: {missing}"
            )
        return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)


class JsonRecordIOManager(_PartitionedFileIOManager):
    """Small JSON-serialisable records (dicts) as JSON files."""

    extension = ".json"

    def dump_to_path(self, context: dg.OutputContext, obj: dict[str, Any], path: "UPath") -> None:
        payload = json.dumps(obj, indent=2, sort_keys=True, default=str).encode()
        self.write(context, path, lambda handle: handle.write(payload))

    def load_from_path(self, context: dg.InputContext, path: "UPath") -> dict[str, Any]:
        with path.open("rb") as handle:
            return json.load(handle)


class ParquetIOManager(dg.ConfigurableIOManagerFactory):
    """Stores every DataFrame asset partition as `<base_dir>/<asset>/<partition>.parquet`."""

    base_dir: Locked[str]
    storage_options: Locked[dict[str, Any]] = {}

    def create_io_manager(self, context: dg.InitResourceContext) -> ParquetFrameIOManager:
        return ParquetFrameIOManager(self.base_dir, self.storage_options)


class JsonIOManager(dg.ConfigurableIOManagerFactory):
    """Stores small record outputs as `<base_dir>/<asset>/<partition>.json`."""

    base_dir: Locked[str]
    storage_options: Locked[dict[str, Any]] = {}

    def create_io_manager(self, context: dg.InitResourceContext) -> JsonRecordIOManager:
        return JsonRecordIOManager(self.base_dir, self.storage_options)
