"""Imported once by the forkserver that every step of a run forks from (orchestration.yaml,
`execution.multiprocess.preload_modules`), so that no step pays for these imports again.

Beyond the code location and its data libraries, a step loads Dagster's instance storage and job
reconstruction, MLflow's SQL stores, model flavour and skops serialization, all on first use. Each
of them cost a forked step 0.3-0.6 s, several times per run. Nothing here may start a thread, open
a file or a connection: a fork only copies the importing thread.

It also ties each step to the run worker that started this forkserver: a step whose worker was
killed ends itself (`mlplatform.core.processes.end_forks_with`).
"""

# ruff: noqa: F401  (imported for their side effect: being loaded before the fork)

import dagster._core.storage.event_log.sqlite
import dagster._core.storage.runs.sqlite
import dagster._core.storage.schedules.sqlite
import dagster._utils.test  # imported by Dagster when a step reconstructs its job
import lightgbm.sklearn  # a LightGBM champion is loaded by registration and scoring
import mlflow.pyfunc
import mlflow.sklearn
import mlflow.store.model_registry.sqlalchemy_store
import mlflow.store.tracking.sqlalchemy_store
import mlflow.tracking
import pandas
import pandera.pandas
import pyarrow.parquet
import scipy.stats  # intervals in training and registration
import sklearn.ensemble
import skops.io
import sqlalchemy.dialects.sqlite

import mlplatform.definitions
from mlplatform.core.processes import end_forks_with


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
