"""A registered model is loaded only as skops, from inside its own folder, trusting only the types
of the platform's own model families in the form skops writes them, and only if it is a model of
those families: a version whose files ask for pickle, point outside the folder, hold another type
or callable, build a trusted type from the file's arguments, or hold another object is refused.
Every crafted model here is a real file, and a genuine model of every family still loads."""

import io
import json
import operator
import os
import zipfile
from functools import partial

import numpy as np
import pandas as pd
import pytest
from sklearn.preprocessing import StandardScaler

from mlplatform.core.model_loading import UntrustedModelError, load_trusted_skops
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


# Crafted model files, refused before they load -------------------------------------------------

URI = "models:/crafted/1"
PARAMS = {
    "logistic_regression": {"C": 1.0},
    "hist_gradient_boosting": {"max_iter": 5},
    "lightgbm": {"n_estimators": 5},
}


@pytest.fixture(scope="module")
def frame():
    rng = np.random.default_rng(0)
    rows = 200
    x = pd.DataFrame(
        {
            "channel": pd.Categorical(rng.choice(["web", "pos", "atm"], rows)),
            "amount": rng.normal(size=rows),
            "age": rng.normal(size=rows),
        }
    )
    x.loc[::17, "amount"] = np.nan
    y = (x["age"] + rng.normal(size=rows) > 0).astype(int).to_numpy()
    return x, y


@pytest.fixture(scope="module")
def candidates(frame):
    """Each family's fitted pipeline and their soft vote, as selection makes them."""
    from mlplatform.core.models import FAMILIES, build_model, fit_model, soft_vote

    x, y = frame
    fitted = {
        family: fit_model(
            build_model(family, ["channel"], ["amount", "age"], PARAMS[family], 1), x, y
        )
        for family in FAMILIES
    }
    return {**fitted, "soft_vote": soft_vote(list(fitted.items()), x, y)}


def saved(model, folder, name="model.skops") -> dict:
    """`model` written with skops in `folder`, and the MLmodel flavor that names it."""
    import skops.io

    os.makedirs(folder, exist_ok=True)
    skops.io.dump(model, os.path.join(folder, name))
    return {"serialization_format": "skops", "pickled_model": name}


def rewrite_schema(path, change) -> None:
    """The skops file at `path` with `change` applied to its schema.json, the rest kept."""
    with zipfile.ZipFile(path) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    schema = json.loads(files["schema.json"])
    change(schema)
    files["schema.json"] = json.dumps(schema).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)


def nodes(state):
    """Every node (a dict skops loads) of a schema."""
    if isinstance(state, list):
        for item in state:
            yield from nodes(item)
    elif isinstance(state, dict):
        if "__loader__" in state:
            yield state
        for value in state.values():
            yield from nodes(value)


def state_of(value) -> dict:
    """skops' own state of `value`, without ids (so that it shares none with the file it joins)."""
    import skops.io

    with zipfile.ZipFile(io.BytesIO(skops.io.dumps(value))) as archive:
        schema = json.loads(archive.read("schema.json"))
    for node in nodes(schema):
        node.pop("__id__", None)
    return {k: v for k, v in schema.items() if k not in ("protocol", "_skops_version")}


@pytest.mark.parametrize("family", ["logistic_regression", "hist_gradient_boosting", "lightgbm",
                                    "soft_vote"])  # fmt: skip
def test_a_genuine_model_of_every_family_loads_and_predicts_the_same(
    candidates, frame, family, tmp_path
):
    """Bare, and as training registers it: calibrated (or not) inside its decision threshold."""
    from mlplatform.core.calibration import calibrate
    from mlplatform.core.models import with_decision_threshold

    x, y = frame
    bare = candidates[family]
    registered = [
        with_decision_threshold(calibrate(bare, method, x, y), 0.4, x, y)
        for method in ("none", "sigmoid", "isotonic")
    ]
    for number, model in enumerate([bare, *registered]):
        folder = tmp_path / str(number)
        loaded = load_trusted_skops(URI, str(folder), saved(model, folder))
        assert np.allclose(loaded.predict_proba(x), model.predict_proba(x))
        assert np.array_equal(loaded.predict(x), model.predict(x))


@pytest.mark.parametrize("where", ["absolute", "parent", "symlink"])
def test_a_model_file_outside_the_models_folder_is_refused(candidates, tmp_path, where):
    """A genuine model elsewhere on the host: it would load, from a file the model never held."""
    elsewhere = tmp_path / "elsewhere"
    saved(candidates["logistic_regression"], elsewhere)
    folder = tmp_path / "model"
    folder.mkdir()
    value = {
        "absolute": str(elsewhere / "model.skops"),
        "parent": "../elsewhere/model.skops",
        "symlink": "model.skops",
    }[where]
    if where == "symlink":
        (folder / "model.skops").symlink_to(elsewhere / "model.skops")
    flavor = {"serialization_format": "skops", "pickled_model": value}
    with pytest.raises(UntrustedModelError) as refused:
        load_trusted_skops(URI, str(folder), flavor)
    assert str(refused.value) == (
        f"{URI}: its model file {value!r} is not inside the model's own folder"
    )


def test_a_registered_model_whose_mlmodel_points_outside_its_folder_is_refused(registry, tmp_path):
    import yaml
    from sklearn.linear_model import LogisticRegression

    from mlplatform.core.models import SKOPS_TRUSTED_TYPES

    resource, experiment = registry
    uri, _ = register(
        resource, experiment, LogisticRegression(), "elsewhere", serialization_format="skops",
        skops_trusted_types=list(SKOPS_TRUSTED_TYPES),
    )  # fmt: skip
    outside = str(next((tmp_path / "artifacts").rglob("model.skops")))
    (mlmodel,) = (tmp_path / "artifacts").rglob("MLmodel")
    description = yaml.safe_load(mlmodel.read_text())
    description["flavors"]["sklearn"]["pickled_model"] = outside
    mlmodel.write_text(yaml.safe_dump(description))
    with pytest.raises(UntrustedModelError, match=f"{uri}: its model file '{outside}' is not"):
        resource.load_sklearn_model(uri)


@pytest.mark.parametrize(
    "transformer",
    [
        pytest.param(lambda: partial(np.negative), id="of another function"),
        pytest.param(lambda: partial(np.add, 1.0), id="of a function with arguments"),
    ],
)
def test_a_partial_of_anything_but_check_array_is_refused(transformer, frame, tmp_path):
    """numpy's functions are trusted by skops itself: a partial would call them as the file says."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    x, y = frame
    model = make_pipeline(FunctionTransformer(transformer()), LogisticRegression())
    model.fit(x[["age"]], y)
    only_check_array = r"where this platform trusts only functools.partial\(sklearn.utils.valid"
    with pytest.raises(UntrustedModelError, match=r"holds numpy\.\w+ " + only_check_array):
        load_trusted_skops(URI, str(tmp_path), saved(model, tmp_path))


def test_check_array_outside_histgradientboostings_partial_is_refused(frame, tmp_path):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer
    from sklearn.utils.validation import check_array

    x, y = frame
    model = make_pipeline(
        FunctionTransformer(check_array, kw_args={"dtype": "float64"}), LogisticRegression()
    )
    model.fit(x[["age"]], y)
    with pytest.raises(UntrustedModelError, match="holds sklearn.utils.validation.check_array"):
        load_trusted_skops(URI, str(tmp_path), saved(model, tmp_path))


def test_another_object_under_the_id_of_a_partials_check_array_is_refused(candidates, tmp_path):
    """skops builds one object per id: an object written under check_array's id would be it."""
    flavor = saved(candidates["hist_gradient_boosting"], tmp_path)

    def alias(schema):
        partial_node = next(n for n in nodes(schema) if n["__loader__"] == "PartialNode")
        partial_node["content"]["namespace"]["__id__"] = partial_node["content"]["func"]["__id__"]

    rewrite_schema(tmp_path / "model.skops", alias)
    with pytest.raises(UntrustedModelError, match="gives the id of a partial's"):
        load_trusted_skops(URI, str(tmp_path), flavor)


@pytest.mark.parametrize("form", ["ConstructorFromReduceNode", "LossNode"])
def test_a_booster_built_from_a_host_file_is_refused(candidates, frame, form, tmp_path):
    """`Booster(None, None, "<a host path>")`: the type is trusted, but in these forms skops calls
    it with arguments from the file, and LightGBM reads the file they name."""
    import skops.io
    from lightgbm import LGBMClassifier

    from mlplatform.core.models import SKOPS_TRUSTED_TYPES

    x, y = frame
    host_file = tmp_path / "host_model.txt"
    LGBMClassifier(n_estimators=2, verbose=-1).fit(x[["age"]], y).booster_.save_model(host_file)
    folder = tmp_path / "model"
    flavor = saved(candidates["lightgbm"], folder)
    arguments = state_of((None, None, str(host_file)))
    crafted = {"__class__": "Booster", "__module__": "lightgbm.basic", "__loader__": form}
    if form == "LossNode":
        crafted |= {"__reduce__": {"args": arguments}, "content": state_of({})}
    else:
        crafted |= {"content": arguments}

    def build_from_the_host_file(schema):
        booster = next(n for n in nodes(schema) if n["__class__"] == "Booster")
        booster.clear()
        booster.update(crafted)

    path = folder / "model.skops"
    rewrite_schema(path, build_from_the_host_file)
    # The payload is live: skops' own audit passes it, and a load reads the host's file.
    assert set(skops.io.get_untrusted_types(file=path)) <= set(SKOPS_TRUSTED_TYPES)
    read = skops.io.load(path, trusted=list(SKOPS_TRUSTED_TYPES))
    assert read[-1]._Booster.num_trees() == 2
    with pytest.raises(
        UntrustedModelError,
        match=f"holds lightgbm.basic.Booster as {form}; the platform's models hold it only as "
        "ObjectNode",
    ):
        load_trusted_skops(URI, str(folder), flavor)


@pytest.mark.parametrize(
    "make, kind",
    [
        (lambda x: {"coef": [1.0, 2.0]}, "builtins.dict"),
        (lambda x: [1, 2, 3], "builtins.list"),
        (lambda x: StandardScaler().fit(x[["age"]]), "sklearn.preprocessing._data.StandardScaler"),
    ],
    ids=["dict", "list", "a fitted transformer"],
)
def test_an_object_that_is_no_model_of_the_families_is_refused(make, kind, frame, tmp_path):
    with pytest.raises(
        UntrustedModelError, match=f"{URI}: holds a {kind}, not a model of the platform's families"
    ):
        load_trusted_skops(URI, str(tmp_path), saved(make(frame[0]), tmp_path))


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
