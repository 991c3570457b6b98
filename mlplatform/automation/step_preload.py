"""Imported once by the forkserver that every step of a run forks from (orchestration.yaml,
`execution.multiprocess.preload_modules`), so that no step pays for these imports again.

Beyond the code location and its data libraries, a step loads Dagster's instance storage and job
reconstruction, MLflow's SQL stores, model flavour and skops serialization, all on first use. Each
of them cost a forked step 0.3-0.6 s, several times per run. Nothing here may start a thread, open
a file or a connection: a fork only copies the importing thread.

It also ties each step to the run worker that started this forkserver: a step whose worker was
killed ends itself (`mlplatform.core.processes.end_forks_with`).
"""

import importlib

import mlplatform.definitions  # noqa: F401  (the code location; its errors are the platform's own)
from mlplatform.core.processes import end_forks_with

# Each imported on its own: Dagster's are private modules, and a release that renames one (or any
# of these) must cost the steps a slower start, not fail the forkserver. The test of the preload
# (mlplatform_tests/test_execution.py) fails while one of them does not import.
PRELOADS = (
    "dagster._core.storage.event_log.sqlite",
    "dagster._core.storage.runs.sqlite",
    "dagster._core.storage.schedules.sqlite",
    "dagster._utils.test",  # imported by Dagster when a step reconstructs its job
    "lightgbm.sklearn",  # a LightGBM champion is loaded by registration and scoring
    "mlflow.pyfunc",
    "mlflow.sklearn",
    "mlflow.store.model_registry.sqlalchemy_store",
    "mlflow.store.tracking.sqlalchemy_store",
    "mlflow.tracking",
    "pandas",
    "pandera.pandas",
    "pyarrow.parquet",
    "scipy.stats",  # intervals in training and registration
    "sklearn.ensemble",
    "skops.io",
    "sqlalchemy.dialects.sqlite",
)


def preload(names: tuple[str, ...]) -> list[str]:
    """Import each of `names`; those that do not import (a renamed module, or a native library
    the host lacks, such as LightGBM's libgomp: OSError). The step that needs one then fails
    with the real error itself; the forkserver, which every step needs, must not."""
    missing = []
    for name in names:
        try:
            importlib.import_module(name)
        except (ImportError, OSError):
            missing.append(name)
    return missing


NOT_PRELOADED = preload(PRELOADS)


def _in_forkserver() -> bool:
    """Whether this import is a forkserver's preload (and not, say, a test importing the module)."""
    import sys

    frame = sys._getframe()
    while frame is not None:
        if frame.f_globals.get("__name__") == "multiprocessing.forkserver":
            return True
        frame = frame.f_back
    return False


if _in_forkserver():
    import os

    # The forkserver's parent is the process whose executor asked for it: the run worker (or the
    # CLI process of `dagster asset materialize`).
    end_forks_with(os.getppid())
