"""Imported once by the forkserver that every step of a run forks from (orchestration.yaml,
`execution.multiprocess.preload_modules`), so that no step pays for these imports again.

Beyond the code location and its data libraries, a step loads Dagster's instance storage and job
reconstruction, MLflow's SQL stores, model flavour and skops serialization, all on first use. Each
of them cost a forked step 0.3-0.6 s, several times per run. Nothing here may start a thread, open
a file or a connection: a fork only copies the importing thread.
"""

import dagster._core.storage.event_log.sqlite
import dagster._core.storage.runs.sqlite
import dagster._core.storage.schedules.sqlite
import dagster._utils.test  # noqa: F401  (imported by Dagster when a step reconstructs its job)
import mlflow.pyfunc
import mlflow.sklearn
import mlflow.store.model_registry.sqlalchemy_store
import mlflow.store.tracking.sqlalchemy_store
import mlflow.tracking  # noqa: F401
import pandas  # noqa: F401
import pandera.pandas  # noqa: F401
import pyarrow.parquet  # noqa: F401
import sklearn.ensemble  # noqa: F401
import skops.io  # noqa: F401
import sqlalchemy.dialects.sqlite  # noqa: F401

import mlplatform.definitions  # noqa: F401
