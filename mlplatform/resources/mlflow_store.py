"""Opening MLflow's stores: a client on the tracking and registry URIs, and a new local SQLite
store created by one process at a time, whole or not at all."""

import contextlib
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient


def open_client(tracking_uri: str, registry_uri: str) -> "MlflowClient":
    """An MlflowClient on these URIs, its stores opened (a new SQLite store created whole)."""
    from mlflow.tracking import MlflowClient

    with sqlite_store_initialization(tracking_uri, registry_uri):
        client = MlflowClient(tracking_uri=tracking_uri, registry_uri=registry_uri)
        # Opening the stores creates a new database's tables; done here, under the lock.
        client.search_experiments(max_results=1)
        client.search_registered_models(max_results=1)
    return client


@contextlib.contextmanager
def sqlite_store_initialization(*uris: str) -> Iterator[None]:
    """One process at a time creates a new local SQLite MLflow store, whole or not at all.
    MLflow creates a new database's tables when a process first opens it, in some thirty
    migrations that each commit: two processes doing so at once (two runs training side by side
    on a fresh deployment), or one killed in the middle (a run's first training killed with
    SIGKILL), left a half-created schema that every later open failed on (`table trace_info
    already exists`). An exclusive lock on a file beside the database makes the first open
    create it and the others find it done; it is built under a temporary name and linked into
    place once complete. A store that exists is whole, so it is opened without the lock: a
    process stopped or hung while holding it would otherwise hold up every step that opens the
    store, for as long as it lives."""
    import fcntl

    paths = sorted({uri.removeprefix("sqlite:///") for uri in uris if uri.startswith("sqlite:///")})
    with contextlib.ExitStack() as held:
        for path in paths:
            if os.path.exists(path):
                continue
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            handle = held.enter_context(open(f"{path}.init-lock", "a"))
            fcntl.flock(handle, fcntl.LOCK_EX)
            held.callback(fcntl.flock, handle, fcntl.LOCK_UN)
            if not os.path.exists(path):
                _create_sqlite_store(path)
        yield


def _create_sqlite_store(path: str) -> None:
    """A new SQLite MLflow store at `path`, its schema complete (called under the lock)."""
    from mlflow.tracking import MlflowClient

    building = f"{path}.creating"
    for leftover in (building, f"{building}-journal"):  # of a process killed while building it
        with contextlib.suppress(FileNotFoundError):
            os.remove(leftover)
    uri = f"sqlite:///{building}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.search_experiments(max_results=1)
    client.search_registered_models(max_results=1)
    # Linked, not renamed over: a process that opened the store without this lock (an MLflow
    # server) may have created it meanwhile, and its file is kept.
    with contextlib.suppress(FileExistsError):
        os.link(building, path)
    os.remove(building)
