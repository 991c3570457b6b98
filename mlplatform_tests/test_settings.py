from pathlib import Path

import pytest

from mlplatform.config.settings import SettingsError, load_settings


def write_settings(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "platform.yaml").write_text(text)
    return folder


def test_packaged_defaults_load_with_paths_anchored_at_root(tmp_path):
    settings = load_settings(environ={}, root=tmp_path)
    assert settings.data_source.kind == "generator"
    assert settings.features.window_days == 7
    assert settings.storage.base_dir == str(tmp_path / ".mlplatform" / "data")
    assert settings.mlflow.tracking_uri == f"sqlite:///{tmp_path}/.mlplatform/mlflow/mlflow.db"
    assert Path(settings.dataset).name == "card_transactions"
    assert Path(settings.contract) == Path(settings.dataset) / "contract.yaml"


def test_user_settings_folder_overrides_only_the_keys_it_names(tmp_path):
    folder = write_settings(tmp_path / "settings", "features:\n  window_days: 3\n")
    settings = load_settings(environ={"MLPLATFORM_SETTINGS_DIR": str(folder)}, root=tmp_path)
    assert settings.features.window_days == 3
    assert settings.features.test_fraction == 0.15


def test_environment_overrides_endpoints(tmp_path):
    settings = load_settings(
        environ={"MLFLOW_TRACKING_URI": "http://127.0.0.1:5000", "MLPLATFORM_DATA_DIR": "s3://b/p"},
        root=tmp_path,
    )
    assert settings.mlflow.tracking_uri == "http://127.0.0.1:5000"
    assert settings.storage.base_dir == "s3://b/p"


def test_misspelt_key_is_named(tmp_path):
    folder = write_settings(tmp_path / "s", "features:\n  windows_days: 3\n")
    with pytest.raises(SettingsError) as raised:
        load_settings(environ={"MLPLATFORM_SETTINGS_DIR": str(folder)}, root=tmp_path)
    assert "features.windows_days: unknown key" in str(raised.value)
    assert str(folder / "platform.yaml") in str(raised.value)


def test_impossible_value_is_named(tmp_path):
    folder = write_settings(tmp_path / "s", "data_source:\n  generator:\n    fraud_rate: 1.5\n")
    with pytest.raises(SettingsError, match=r"data_source\.generator\.fraud_rate"):
        load_settings(environ={"MLPLATFORM_SETTINGS_DIR": str(folder)}, root=tmp_path)


def test_files_source_without_path_is_refused(tmp_path):
    with pytest.raises(SettingsError, match="data_source.path is required"):
        load_settings(environ={"MLPLATFORM_SOURCE_KIND": "files"}, root=tmp_path)


def test_unknown_dataset_is_named(tmp_path):
    with pytest.raises(SettingsError, match="dataset: 'nope' is neither a packaged dataset"):
        load_settings(environ={"MLPLATFORM_DATASET": "nope"}, root=tmp_path)


def test_broken_yaml_names_the_file(tmp_path):
    folder = write_settings(tmp_path / "s", "features: [unclosed\n")
    with pytest.raises(SettingsError, match="not valid YAML"):
        load_settings(environ={"MLPLATFORM_SETTINGS_DIR": str(folder)}, root=tmp_path)


# quality_gates.yaml -------------------------------------------------------------------------------


def write_gates(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "quality_gates.yaml").write_text(text)
    return folder


def test_packaged_gates_load_with_blocking_from_severity():
    from mlplatform.config.gates import load_quality_gates

    gates = load_quality_gates(environ={})
    assert gates.trained_model.accuracy.min == 0.85
    assert gates.trained_model.accuracy.blocking
    assert not gates.features.drift.blocking


def test_gates_override_only_what_they_name(tmp_path):
    from mlplatform.config.gates import load_quality_gates

    folder = write_gates(tmp_path, "trained_model:\n  roc_auc:\n    min: 0.7\n")
    gates = load_quality_gates(environ={"MLPLATFORM_SETTINGS_DIR": str(folder)})
    assert gates.trained_model.roc_auc.min == 0.7
    assert gates.trained_model.roc_auc.severity == "ERROR"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("features:\n  drfit:\n    max_psi: 0.2\n", "features.drfit: unknown key"),
        (
            "validated_transactions:\n  quarantine_rate:\n    max_rate: 1.5\n",
            "validated_transactions.quarantine_rate.max_rate: Input should be less than or equal",
        ),
        (
            "validated_transactions:\n  label_rate:\n    min_rate: 0.2\n    max_rate: 0.1\n",
            "min_rate (0.2) is above max_rate (0.1)",
        ),
        ("trained_model:\n  recall:\n    severity: FATAL\n", "trained_model.recall.severity"),
        (
            "raw_transactions:\n  volume_in_band:\n    min_history: 99\n",
            "min_history cannot exceed",
        ),
    ],
)
def test_bad_gates_file_names_the_key(tmp_path, text, expected):
    from mlplatform.config.gates import load_quality_gates

    folder = write_gates(tmp_path, text)
    with pytest.raises(SettingsError) as raised:
        load_quality_gates(environ={"MLPLATFORM_SETTINGS_DIR": str(folder)})
    assert expected in str(raised.value)
    assert str(folder / "quality_gates.yaml") in str(raised.value)


def test_a_key_written_twice_is_refused_with_its_line(tmp_path):
    folder = write_settings(
        tmp_path / "s", "features:\n  window_days: 3\n  test_fraction: 0.1\n  window_days: 5\n"
    )
    with pytest.raises(SettingsError, match=r"platform.yaml: .*'window_days' appears twice"):
        load_settings(environ={"MLPLATFORM_SETTINGS_DIR": str(folder)}, root=tmp_path)


# run config in the Launchpad: derived from the settings models ------------------------------------


def training_job():
    from mlplatform.definitions import defs

    return defs.resolve_job_def("training_pipeline")


@pytest.mark.parametrize(
    ("run_config", "path", "allowed"),
    [
        (
            {"ops": {"trained_model": {"config": {"threshold_metric": "f_1"}}}},
            "trained_model:config:threshold_metric",
            ["f1", "precision", "recall", "balanced_accuracy"],
        ),
        (
            {"ops": {"trained_model": {"config": {"selection_metric": "auc"}}}},
            "trained_model:config:selection_metric",
            ["roc_auc", "pr_auc"],
        ),
        (
            {"resources": {"data_source": {"config": {"generator": {"incident": "flod"}}}}},
            "generator:incident",
            ["volume_drop", "label_noise"],
        ),
    ],
)
def test_a_misspelt_choice_is_refused_before_any_step_with_the_allowed_values(
    run_config, path, allowed
):
    import dagster as dg

    with dg.instance_for_test() as instance:
        with pytest.raises(dg.DagsterInvalidConfigError) as refused:
            training_job().execute_in_process(
                run_config=run_config, partition_key="2026-03-02", instance=instance
            )
        assert not instance.get_runs(), "the run was refused before it was created"
    message = str(refused.value)
    assert path in message and "not in enum type" in message
    assert all(value in message for value in allowed), message


def test_launchpad_defaults_are_the_settings_and_bounds_are_theirs():
    import dagster as dg

    from mlplatform.assets.features import FeaturesConfig
    from mlplatform.assets.trained_model import TrainedModelConfig
    from mlplatform.config.active import SETTINGS

    shown = TrainedModelConfig().model_dump()
    assert shown == SETTINGS.training.model_dump(include=set(shown))
    assert set(FeaturesConfig().model_dump()) == {"validation_fraction", "test_fraction"}
    # A value outside its bounds, or against a rule across fields, fails its step at once and
    # names the key: retrying cannot fix a setting.
    for bad, key in (
        (lambda: TrainedModelConfig(folds=0), "folds"),
        (lambda: TrainedModelConfig(time_budget_seconds=-1), "time_budget_seconds"),
        (lambda: FeaturesConfig(validation_fraction=0.5, test_fraction=0.45), "0.9"),
    ):
        with pytest.raises(dg.Failure) as failed:
            bad()
        assert not failed.value.allow_retries
        assert key in str(failed.value)


def test_a_hyperparameter_is_passed_to_the_model_as_set():
    """A family's hyperparameter is one YAML key and one typed field: nothing in core names it."""
    from mlplatform.core.models import build_model
    from mlplatform_tests.packaged import search_plan

    fixed = dict(search_plan().families["hist_gradient_boosting"].fixed)
    classifier = build_model(
        "hist_gradient_boosting", ["c"], ["n"], {**fixed, "n_iter_no_change": 7}, seed=1
    )[-1]
    assert classifier.n_iter_no_change == 7
    assert classifier.get_params()["class_weight"] == "balanced"


def test_a_search_range_must_suit_its_hyperparameter(tmp_path):
    folder = write_settings(
        tmp_path / "s",
        "training:\n  lightgbm:\n    search:\n      num_leaves: {low: 1, high: 64, log: true}\n",
    )
    with pytest.raises(SettingsError, match="greater than or equal to 2"):
        load_settings(environ={"MLPLATFORM_SETTINGS_DIR": str(folder)}, root=tmp_path)
    folder = write_settings(
        tmp_path / "t",
        "training:\n  lightgbm:\n    search:\n      depth: {low: 1, high: 6, log: false}\n",
    )
    with pytest.raises(SettingsError, match="depth: not a hyperparameter"):
        load_settings(environ={"MLPLATFORM_SETTINGS_DIR": str(folder)}, root=tmp_path)


# Bounds checked at load, naming the file and the dotted key ---------------------------------------


@pytest.mark.parametrize(
    ("file_name", "text", "key", "expected"),
    [
        (
            "orchestration.yaml",
            "step_time_limit_seconds:\n  training: -1\n",
            "step_time_limit_seconds.training",
            "greater than or equal to 0",
        ),
        (
            "orchestration.yaml",
            "retries:\n  ingestion: {delay_seconds: .inf}\n",
            "retries.ingestion.delay_seconds",
            "finite number",
        ),
        (
            "orchestration.yaml",
            "sensors:\n  landing_settle_seconds: .nan\n",
            "sensors.landing_settle_seconds",
            "finite number",
        ),
        (
            "orchestration.yaml",
            "schedule:\n  timezone: Europe/Atlantis\n",
            "schedule.timezone",
            "'Europe/Atlantis' is not a time zone",
        ),
        (
            "orchestration.yaml",
            "schedule:\n  cron: '61 2 * * *'\n",
            "schedule.cron",
            "'61 2 * * *' is not a valid cron expression",
        ),
        (
            "platform.yaml",
            "partitions:\n  timezone: Mars/Olympus\n",
            "partitions.timezone",
            "'Mars/Olympus' is not a time zone",
        ),
        (
            "platform.yaml",
            "training:\n  time_budget_seconds: .inf\n",
            "training.time_budget_seconds",
            "finite number",
        ),
        (
            "platform.yaml",
            "training:\n  random_state: -1\n",
            "training.random_state",
            "greater than or equal to 0",
        ),
        (
            "quality_gates.yaml",
            "raw_transactions:\n  volume_in_band:\n    max_ratio: .inf\n",
            "raw_transactions.volume_in_band.max_ratio",
            "finite number",
        ),
    ],
)
def test_a_value_out_of_its_bounds_is_refused_naming_file_and_key(
    tmp_path, file_name, text, key, expected
):
    from mlplatform.config.gates import load_quality_gates
    from mlplatform.config.orchestration import load_orchestration

    (tmp_path / file_name).write_text(text)
    environ = {"MLPLATFORM_SETTINGS_DIR": str(tmp_path)}
    load = {
        "orchestration.yaml": lambda: load_orchestration(environ=environ),
        "platform.yaml": lambda: load_settings(environ=environ, root=tmp_path),
        "quality_gates.yaml": lambda: load_quality_gates(environ=environ),
    }[file_name]
    with pytest.raises(SettingsError) as refused:
        load()
    message = str(refused.value)
    assert str(tmp_path / file_name) in message
    assert f"  {key}: " in message and expected in message


def test_no_step_time_limit_is_zero_as_documented(tmp_path):
    from mlplatform.config.orchestration import load_orchestration

    (tmp_path / "orchestration.yaml").write_text("step_time_limit_seconds:\n  training: 0\n")
    settings = load_orchestration(environ={"MLPLATFORM_SETTINGS_DIR": str(tmp_path)})
    assert settings.step_time_limit_seconds["training"] == 0


def test_run_config_refuses_what_the_settings_files_refuse():
    """The Launchpad's fields carry the settings' bounds; infinity passes `gt=0` unless refused."""
    import dagster as dg

    from mlplatform.assets.trained_model import TrainedModelConfig

    with pytest.raises(dg.Failure, match="time_budget_seconds: Input should be a finite number"):
        TrainedModelConfig(time_budget_seconds=float("inf"))
    with pytest.raises(dg.Failure, match="random_state: Input should be greater than or equal"):
        TrainedModelConfig(random_state=-1)
    assert TrainedModelConfig(time_budget_seconds=30.0).time_budget_seconds == 30.0
