"""Imported once by the forkserver that every step of a run forks from (orchestration.yaml,
`execution.multiprocess.preload_modules`), so that no step pays for these imports again.

Beyond the code location and its data libraries, a step loads Dagster's instance storage and job
reconstruction, MLflow's SQL stores, model flavour and skops serialization, all on first use. Each
of them cost a forked step 0.3-0.6 s, several times per run. Nothing here may start a thread, open
a file or a connection: a fork only copies the importing thread.
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
