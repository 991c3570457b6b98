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
    assert Path(settings.contract).name == "card_transactions.yaml"


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


def test_unknown_contract_is_named(tmp_path):
    with pytest.raises(SettingsError, match="contract: 'nope'"):
        load_settings(environ={"MLPLATFORM_CONTRACT": "nope"}, root=tmp_path)


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
