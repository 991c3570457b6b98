"""The asset graph end to end: in memory, and with the real Parquet IO managers and an MLflow
SQLite store in temporary folders."""

import base64
import json
import re
import struct

import dagster as dg
import pandas as pd
import pytest

from mlplatform.automation.jobs import training_pipeline
from mlplatform.definitions import ASSETS
from mlplatform_tests.code_location import platform_for
from mlplatform_tests.conftest import Platform, make_platform

# Every test here runs the whole graph on days of the default size (50,000 rows).
pytestmark = pytest.mark.slow

FIRST_DAY = "2026-01-01"  # the partitions' first day: its feature window is that day alone
ALL_KEYS = {
    "raw_transactions", "validated_transactions", "quarantined_transactions", "features",
    "trained_model", "registered_model_version", "batch_scores", "shadow_scores",
}  # fmt: skip


def materialized_keys(result) -> set[str]:
    return {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}


def metadata_of(result, key: str) -> dict:
    for event in result.get_asset_materialization_events():
        if event.asset_key.to_user_string() == key:
            return {k: v.value for k, v in event.materialization.metadata.items()}
    raise AssertionError(f"{key} was not materialized")


def test_whole_graph_in_memory(platform: Platform):
    resources = {k: v for k, v in platform.resources.items() if "io_manager" not in k}
    result = dg.materialize_to_memory(ASSETS, partition_key=FIRST_DAY, resources=resources)
    assert result.success
    assert materialized_keys(result) == ALL_KEYS

    raw = result.output_for_node("raw_transactions")
    validated = result.output_for_node("validated_transactions", "validated_transactions")
    quarantined = result.output_for_node("validated_transactions", "quarantined_transactions")
    assert len(validated) + len(quarantined) == len(raw)
    assert quarantined["quarantine_reason"].str.len().gt(0).all()
    reasons = metadata_of(result, "quarantined_transactions")["reasons"]
    assert sum(reasons.values()) >= len(quarantined) > 0

    features = result.output_for_node("features")
    assert set(features["split"]) == {"train", "validation", "test"}
    model = result.output_for_node("trained_model")
    assert model["test_metrics"]["roc_auc"] > 0.8
    registered = result.output_for_node("registered_model_version")
    assert registered["aliases"] == ["challenger", "champion"]
    scores = result.output_for_node("batch_scores")
    assert len(scores) == len(features[features["event_time"].dt.strftime("%Y-%m-%d") == FIRST_DAY])
    assert scores["model_version"].eq(registered["version"]).all()
    assert 0 < metadata_of(result, "batch_scores")["alert_rate"] < 0.2


@pytest.fixture(scope="module")
def trained_platform(tmp_path_factory):
    """Two days through the real IO managers and a temporary MLflow SQLite store."""
    platform = make_platform(tmp_path_factory.mktemp("platform"))
    results = [
        dg.materialize(ASSETS, partition_key=day, resources=platform.resources)
        for day in ("2026-03-01", "2026-03-02")
    ]
    return platform, results


def test_materialize_persists_every_asset_as_files(trained_platform):
    platform, results = trained_platform
    assert all(r.success for r in results)
    data = platform.data_dir
    for key in ("raw_transactions", "validated_transactions", "quarantined_transactions",
                "features", "batch_scores"):  # fmt: skip
        assert (data / key / "2026-03-02.parquet").exists(), key
    for key in ("trained_model", "registered_model_version"):
        assert (data / key / "2026-03-02.json").exists(), key
    # The second day's features cover the trailing window: both days.
    assert metadata_of(results[1], "features")["window_days_found"] == ["2026-03-01", "2026-03-02"]
    stored = pd.read_parquet(data / "validated_transactions" / "2026-03-02.parquet")
    assert isinstance(stored["country"].dtype, pd.CategoricalDtype)


def test_registry_holds_a_champion_with_tracking_links(trained_platform):
    platform, results = trained_platform
    client = platform.mlflow_client()
    champion = client.get_model_version_by_alias("card_transactions_classifier", "champion")
    run = client.get_run(champion.run_id)
    assert run.data.tags["dagster_partition"] in ("2026-03-01", "2026-03-02")
    assert run.data.tags["dagster_run_id"] in {r.run_id for r in results}
    assert "code_version" in run.data.tags
    assert {"test_roc_auc", "test_accuracy", "test_pr_auc"} <= set(run.data.metrics)
    assert float(run.data.params["decision_threshold"]) > 0
    model = client.get_logged_model(run.outputs.model_outputs[0].model_id)
    assert model.name == "model"
    day = run.data.tags["dagster_partition"]
    assert run.info.run_name == f"trained_model {day}"
    # And back: the Dagster run, as a tag and as the run's description in MLflow's UI.
    dagster_run = f"http://127.0.0.1:3000/runs/{run.data.tags['dagster_run_id']}"
    assert run.data.tags["dagster_run_url"] == dagster_run
    assert dagster_run in run.data.tags["mlflow.note.content"]
    # The test metrics belong to the logged model, measured on the logged features.
    (dataset_input,) = run.inputs.dataset_inputs
    dataset = dataset_input.dataset
    assert {t.key: t.value for t in dataset_input.tags}["mlflow.data.context"] == "training"
    assert dataset.name.startswith("card_transactions features ") and dataset.digest
    # Its schema: every column the model reads, and the label and split beside them.
    import mlflow

    schema = {column["name"] for column in json.loads(dataset.schema)["mlflow_colspec"]}
    model_inputs = mlflow.models.get_model_info(f"models:/{model.model_id}").signature.inputs
    assert {*model_inputs.input_names(), "label", "split"} <= schema
    assert json.loads(dataset.profile)["num_rows"] == sum(
        int(run.data.params[f"rows_{split}"]) for split in ("train", "validation", "test")
    )
    linked = {m.key: m for m in model.metrics}
    assert linked["test_roc_auc"].value == run.data.metrics["test_roc_auc"]
    assert linked["test_roc_auc"].dataset_digest == dataset.digest
    registered = client.get_registered_model("card_transactions_classifier")
    assert "probability that `is_fraud` is `1`" in registered.description
    assert champion.description.startswith(f"{run.data.params['model_family']} trained for {day}")
    assert "Promoted to champion" in champion.description
    plots = {a.path for a in client.list_artifacts(champion.run_id, "evaluation")}
    assert {
        f"evaluation/{name}.png"
        for name in ("roc_curve", "precision_recall_curve", "confusion_matrix", "calibration",
                     "score_distribution", "permutation_importance")
    } <= plots  # fmt: skip
    assert "evaluation/permutation_importance.json" in plots


def test_the_trained_models_page_shows_its_evaluation(trained_platform):
    _, results = trained_platform
    metadata = metadata_of(results[1], "trained_model")
    plots = metadata["evaluation_plots"]
    # Every plot of the MLflow run, calibration and score distribution included (issue 27.7).
    assert plots.count("](data:image/png;base64,") == 6
    for name in ("roc_curve", "confusion_matrix", "calibration", "score_distribution"):
        assert f"![{name}.png]" in plots
    # Drawn at the width of the UI's dialog (about 360 px), which shows them at their own size:
    # not shrunk there, so their text stays legible.
    for encoded in re.findall(r"base64,([A-Za-z0-9+/=]+)\)", plots):
        width, height = struct.unpack(">II", base64.b64decode(encoded)[16:24])
        assert 250 <= width <= 400 and height <= 400, (width, height)
    confusion = {row.data["actual"]: row.data for row in metadata["confusion_matrix"].records}
    counted = sum(row["flagged"] + row["passed"] for row in confusion.values())
    assert counted == metadata["test_rows"]
    assert (
        confusion["positive"]["flagged"] + confusion["positive"]["passed"]
        == (metadata["test_positives"])
    )
    importance = [row.data["feature"] for row in metadata["permutation_importance"].records]
    assert sorted(importance) == sorted(metadata["input_columns"])


def test_no_mlflow_run_is_left_running(trained_platform):
    platform, _ = trained_platform
    client = platform.mlflow_client()
    experiment = client.get_experiment_by_name(platform.settings.mlflow.experiment_name)
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 2
    assert {r.info.status for r in runs} == {"FINISHED"}


# A model trained on the oldest 11% of the window (the rest validates and tests it): clearly worse
# than the champion, which trained on 70%.
WEAK_MODEL = {"ops": {"features": {"config": {"validation_fraction": 0.04, "test_fraction": 0.85}}}}


def test_worse_model_does_not_take_champion_and_scores_use_the_champion(trained_platform):
    platform, _ = trained_platform
    client = platform.mlflow_client()
    name = "card_transactions_classifier"
    before = str(client.get_model_version_by_alias(name, "champion").version)
    result = dg.materialize(
        ASSETS,
        selection=["features", "trained_model", "registered_model_version", "batch_scores"],
        partition_key="2026-03-02",
        resources=platform.resources,
        run_config=WEAK_MODEL,
    )
    assert result.success
    registered = metadata_of(result, "registered_model_version")
    assert registered["promotion_reason"].startswith("champion kept")
    assert registered["promoted_to_champion"] is False
    assert registered["aliases"] == ["challenger"]
    assert str(client.get_model_version_by_alias(name, "champion").version) == before
    challenger = client.get_model_version_by_alias(name, "challenger")
    assert str(challenger.version) == registered["version"] != before
    # batch_scores ran after the weak version was registered, and still used the champion.
    assert metadata_of(result, "batch_scores")["model_version"] == before
    scores = pd.read_parquet(platform.data_dir / "batch_scores" / "2026-03-02.parquet")
    assert set(scores["model_version"]) == {before}


def test_job_runs_with_the_mlflow_hook(tmp_path):
    platform = make_platform(tmp_path)
    job = dg.Definitions(
        assets=ASSETS, jobs=[training_pipeline], resources=platform.resources
    ).resolve_job_def("training_pipeline")
    with dg.instance_for_test() as instance:
        result = job.execute_in_process(partition_key=FIRST_DAY, instance=instance)
    assert result.success
    runs = platform.mlflow_client().search_runs(
        [platform.mlflow_client().get_experiment_by_name("mlplatform").experiment_id]
    )
    assert [r.info.status for r in runs] == ["FINISHED"]
    assert runs[0].data.tags["dagster_run_id"] == result.run_id


def test_the_champion_loaded_by_alias_decides_as_batch_scores_did(trained_platform, monkeypatch):
    """The registered model applies its own threshold: `predict` on the version loaded by alias,
    through the platform's loader and through MLflow's pyfunc (what `mlflow models serve` runs),
    gives the decisions batch_scores stored for the day; `predict_proba` still gives the score."""
    import mlflow.pyfunc

    platform, _ = trained_platform
    resource = platform.resources["mlflow"]
    uri = "models:/card_transactions_classifier@champion"
    model, input_columns = resource.load_with_inputs(uri)
    champion = platform.mlflow_client().get_model_version_by_alias(
        "card_transactions_classifier", "champion"
    )
    features = pd.read_parquet(platform.data_dir / "features" / "2026-03-02.parquet")
    day_rows = features[features["event_time"].dt.strftime("%Y-%m-%d") == "2026-03-02"]
    scores = pd.read_parquet(platform.data_dir / "batch_scores" / "2026-03-02.parquet")
    assert set(scores["model_version"]) == {str(champion.version)}
    assert list(scores["transaction_id"]) == list(day_rows["transaction_id"])
    # Enough rows on both sides of the threshold for the comparison to mean something.
    assert 0 < scores["decision"].sum() < len(scores)

    decisions = model.predict(day_rows[input_columns]).astype(bool)
    assert (decisions == scores["decision"].to_numpy()).all()
    assert model.predict_proba(day_rows[input_columns])[:, 1] == pytest.approx(
        scores["score"].to_numpy()
    )
    assert model.threshold == pytest.approx(float(champion.tags["decision_threshold"]))
    assert model.threshold != 0.5  # chosen on validation, not scikit-learn's default

    # MLflow's own loaders (pyfunc, `mlflow models serve`) refuse skops unless whoever serves the
    # model says they trust where it came from; the platform's loader never needs this.
    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true")
    served = mlflow.pyfunc.load_model(uri).predict(day_rows[input_columns])
    assert (pd.Series(served).astype(bool).to_numpy() == scores["decision"].to_numpy()).all()


def test_links_to_mlflow_open_the_ui_people_use(trained_platform):
    """A local store has no UI to link; an http tracking URI is one; a configured UI address
    (Docker: the tracking URI is the containers' address) wins over both."""
    from mlplatform.resources.mlflow import MlflowResource

    platform, results = trained_platform
    local = platform.resources["mlflow"]
    fields = {
        "tracking_uri": local.tracking_uri,
        "artifact_location": local.artifact_location,
        "experiment_name": local.experiment_name,
    }
    run_id = metadata_of(results[1], "trained_model")["mlflow_run_id"]
    assert metadata_of(results[1], "trained_model")["mlflow_run"] == f"run {run_id} in " + (
        local.tracking_uri
    )
    browsable = MlflowResource(**fields, ui_url="https://mlflow.example.org/")
    experiment = browsable.experiment_id
    assert browsable.run_link(run_id).value == (
        f"https://mlflow.example.org/#/experiments/{experiment}/runs/{run_id}"
    )
    assert (
        browsable.version_link("m", "3").value == "https://mlflow.example.org/#/models/m/versions/3"
    )


def test_with_a_label_delay_the_model_learns_only_from_labelled_days(tmp_path):
    """A contract whose labels arrive a day late: the partition's own day is in the features (to
    be scored) but waits outside every split; the model trains, validates and tests on the days
    before it, and the metadata says how many rows waited."""
    import yaml

    from mlplatform.config.dataset import open_dataset

    contract = yaml.safe_load(open_dataset("card_transactions").contract.read_text())
    contract["label_delay_days"] = 1
    folder = tmp_path / "delayed"
    folder.mkdir()
    (folder / "contract.yaml").write_text(yaml.safe_dump(contract))
    days = ("2026-01-01", "2026-01-02", "2026-01-03")
    ingestion = ["raw_transactions", "validated_transactions", "quarantined_transactions"]
    # The definitions loaded for this contract: its label delay widens the feature window's
    # partition mapping, which is fixed when they load.
    delayed = platform_for(tmp_path, rows_per_day=5000, MLPLATFORM_DATASET=str(folder))
    with delayed as (platform, definitions):
        assets = definitions.ASSETS
        for day in days[:2]:
            assert dg.materialize(
                assets, selection=ingestion, partition_key=day, resources=platform.resources
            ).success
        result = dg.materialize(
            assets, selection=[*ingestion, "features", "trained_model"], partition_key=days[2],
            resources=platform.resources,
        )  # fmt: skip
    assert result.success
    features = pd.read_parquet(platform.data_dir / "features" / f"{days[2]}.parquet")
    on_the_day = features["event_time"].dt.strftime("%Y-%m-%d") == days[2]
    assert (features.loc[on_the_day, "split"] == "waiting").all()
    assert (features.loc[~on_the_day, "split"] != "waiting").all()
    shown = metadata_of(result, "features")
    assert shown["label_delay_days"] == 1
    assert shown["rows_waiting_for_labels"] == on_the_day.sum() > 0
    trained = result.output_for_node("trained_model")
    assert sum(trained["split_sizes"].get(s, 0) for s in ("train", "validation", "test")) == (
        (~on_the_day).sum()
    )
