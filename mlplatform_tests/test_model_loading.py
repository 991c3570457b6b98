"""A registered model is loaded only as skops, trusting only the types of the platform's own
model families: a version whose files ask for pickle, or that holds another type, is refused."""

import operator

import numpy as np
import pandas as pd
import pytest

from mlplatform.core.models import UntrustedModelError
from mlplatform.resources.mlflow import MlflowResource


@pytest.fixture
def registry(tmp_path):
    import mlflow

    resource = MlflowResource(
        tracking_uri=f"sqlite:///{tmp_path}/mlflow.db",
        artifact_location=str(tmp_path / "artifacts"),
        experiment_name="loading",
    )
    mlflow.set_tracking_uri(resource.tracking_uri)
    experiment = resource.experiment_id
    yield resource, experiment
    mlflow.set_tracking_uri(None)


def register(resource, experiment, model, name, **log_arguments):
    import mlflow
    import mlflow.sklearn

    x = pd.DataFrame({"a": np.arange(20.0), "b": np.arange(20.0) % 3})
    model.fit(x, np.arange(20) % 2)
    with mlflow.start_run(experiment_id=experiment):
        # Requirements given: MLflow infers them otherwise, about 5 s per model.
        info = mlflow.sklearn.log_model(
            model, name="model", pip_requirements=["scikit-learn"], **log_arguments
        )
    mlflow.register_model(info.model_uri, name)
    return f"models:/{name}/1", x


def test_a_model_of_the_platforms_families_loads(registry):
    from mlplatform.core.models import SKOPS_TRUSTED_TYPES, build_model

    resource, experiment = registry
    model = build_model("hist_gradient_boosting", [], ["a", "b"], {"max_iter": 5}, seed=1)
    uri, x = register(
        resource, experiment, model, "good", serialization_format="skops",
        skops_trusted_types=list(SKOPS_TRUSTED_TYPES),
    )  # fmt: skip
    loaded = resource.load_sklearn_model(uri)
    assert np.allclose(loaded.predict_proba(x), model.predict_proba(x))


def test_a_model_stored_with_pickle_is_refused(registry):
    from sklearn.linear_model import LogisticRegression

    resource, experiment = registry
    uri, _ = register(
        resource, experiment, LogisticRegression(), "pickled", serialization_format="cloudpickle"
    )
    with pytest.raises(UntrustedModelError, match="only the skops format is loaded"):
        resource.load_sklearn_model(uri)


def test_a_skops_model_holding_an_untrusted_type_is_refused(registry):
    """The model's own files may list any type as trusted: the loader ignores that list."""
    from sklearn.preprocessing import FunctionTransformer

    resource, experiment = registry
    crafted = FunctionTransformer(operator.neg)  # a function reference: code that runs on load
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    model = make_pipeline(crafted, LogisticRegression())
    uri, _ = register(
        resource, experiment, model, "crafted", serialization_format="skops",
        skops_trusted_types=["_operator.neg"],
    )  # fmt: skip
    with pytest.raises(UntrustedModelError, match=r"does not trust: \['_operator.neg'\]"):
        resource.load_sklearn_model(uri)


def _open_store(uri: str, artifacts: str, barrier) -> str:
    resource = MlflowResource(tracking_uri=uri, artifact_location=artifacts, experiment_name="race")
    barrier.wait()  # every process opens the new store at the same moment
    return resource.experiment_id


@pytest.mark.slow
def test_processes_opening_a_new_sqlite_store_at_once_all_succeed(tmp_path):
    """Two runs training side by side on a fresh deployment used to race to create MLflow's
    tables and leave a half-created schema (`table trace_info already exists` ever after)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager:
        barrier = manager.Barrier(4)
        # An executor's workers leave when told to, not by SIGTERM (multiprocessing.Pool's exit),
        # which a worker started under a runner that ignores SIGTERM never obeys.
        with ProcessPoolExecutor(4, mp_context=context) as pool:
            ids = list(pool.map(_open_store, [uri] * 4, [str(tmp_path / "a")] * 4, [barrier] * 4))
    assert len(set(ids)) == 1
    # The store is whole: a new process opens it and finds the experiment.
    assert (
        _open_store(uri, str(tmp_path / "a"), type("NoWait", (), {"wait": lambda self: None})())
        == ids[0]
    )


def test_a_logged_datasets_digest_changes_with_any_cell():
    """MLflow's own digest hashes the first 10,000 rows only: a change further down went unseen."""
    import numpy as np
    import pandas as pd

    from mlplatform.resources.mlflow import dataset_digest

    rows = 50_000
    frame = pd.DataFrame(
        {
            "amount": np.arange(rows, dtype=float),
            "channel": pd.Categorical(np.where(np.arange(rows) % 2 == 0, "web", "pos")),
            "event_time": pd.date_range("2026-03-01", periods=rows, freq="s", tz="UTC"),
        }
    )
    digest = dataset_digest(frame)
    assert len(digest) == 8 and digest == dataset_digest(frame.copy())
    for column, value in (
        ("amount", -1.0),
        ("channel", "web"),
        ("event_time", frame["event_time"][0]),
    ):
        changed = frame.copy()
        changed.loc[rows - 1, column] = value
        assert dataset_digest(changed) != digest, column
    assert dataset_digest(frame.rename(columns={"amount": "value"})) != digest
