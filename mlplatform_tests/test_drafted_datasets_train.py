"""A folder drafted by `mlplatform dataset init` trains end to end with only its roles confirmed.

For each benchmark dataset of the model-selection issue (the same CSVs `test_drafting.py` drafts and
checks): the folder is drafted with --id/--event-time/--target/--positive-label and not edited, then
the real pipeline runs on it (real IO managers, a Dagster instance and an SQLite MLflow in a
temporary folder) for the days the drafted feature window needs: raw and validated data of each day,
then features, the model, its registration and the champion's scores on the last. The settings are
read when the definitions load, so each dataset runs in a process of its own, with nothing set
outside the folder but where data, MLflow and Dagster keep things and the test session's settings
folder (the smaller model search every other test runs: it sets nothing a drafted folder does);
one process runs all its days.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from mlplatform.cli import main
from mlplatform.core.models import SOFT_VOTE
from mlplatform_tests.benchmarks.quality import DATASETS, ID_COLUMN, TIME_COLUMN, load_frame
from mlplatform_tests.conftest import TEST_SETTINGS_DIR, platform_environment

PROJECT = Path(__file__).resolve().parents[1]
UPSTREAM = ["raw_transactions", "validated_transactions", "quarantined_transactions"]

# Runs in the dataset's own process (the settings in effect are the folder's): the days of the
# first feature window the drafted settings give, from the drafted first partition; the raw and
# validated data of each, then the whole graph on the last. Prints what it did as one JSON line.
PIPELINE = """
import datetime as dt, json, sys, time
import dagster as dg
from mlplatform.config.active import SETTINGS
from mlplatform.definitions import ASSETS, CHECKS, build_resources

window = SETTINGS.features.window_days
first = SETTINGS.partitions.start_date
days = [(first + dt.timedelta(days=i)).isoformat() for i in range(window)]
resources = build_resources(SETTINGS)
runs = []
with dg.DagsterInstance.get() as instance:
    for day in days:
        selection = None if day == days[-1] else json.loads(sys.argv[1])
        started = time.monotonic()
        result = dg.materialize(
            [*ASSETS, *CHECKS], selection=selection, partition_key=day, resources=resources,
            instance=instance, raise_on_error=False,
        )
        runs.append({
            "day": day,
            "success": result.success,
            "failed_steps": [e.step_key for e in result.get_step_failure_events()],
            "failed_checks": [
                {
                    "check": e.asset_check_key.to_user_string(),
                    "severity": e.severity.value,
                    "inconclusive": bool(getattr(e.metadata.get("inconclusive"), "value", False)),
                    "description": e.description or "",
                }
                for e in result.get_asset_check_evaluations() if not e.passed
            ],
            "checks": len(result.get_asset_check_evaluations()),
            "seconds": round(time.monotonic() - started, 1),
        })
print(json.dumps({"days": days, "window_days": window, "runs": runs}))
"""


def dataset_environment(tmp_path: Path, folder: Path) -> dict[str, str]:
    """The folder, where data, MLflow and Dagster keep things (a DAGSTER_HOME prepared as the
    Makefile prepares it) and the test session's settings folder, whose smaller model search (two
    folds, two trials per family) is the one setting a drafted folder leaves to the defaults that
    changes here; nothing else of the session's environment."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").symlink_to(PROJECT / "dagster.yaml")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLPLATFORM_")}
    env.update(
        platform_environment(tmp_path), DAGSTER_HOME=str(home), MLPLATFORM_DATASET=str(folder),
        MLPLATFORM_SETTINGS_DIR=str(TEST_SETTINGS_DIR),
    )  # fmt: skip
    return env


@pytest.mark.slow
@pytest.mark.parametrize("item", [dataset.item for dataset in DATASETS])
def test_a_drafted_folder_trains_end_to_end_with_only_its_roles_confirmed(
    tmp_path: Path, item: str
) -> None:
    import mlflow

    from mlplatform.config.dataset import DATASET_ENV
    from mlplatform.config.settings import load_settings
    from mlplatform.core.contract import load_contract

    dataset = next(d for d in DATASETS if d.item == item)
    frame, _ = load_frame(dataset)
    sample = tmp_path / "landing" / f"{item}.csv"
    sample.parent.mkdir()
    frame.to_csv(sample, index=False)
    folder = tmp_path / item
    confirmed = ["--id", ID_COLUMN, "--event-time", TIME_COLUMN, "--target", dataset.target]
    confirmed += ["--positive-label", dataset.positive_label]
    assert main(["dataset", "init", str(sample), str(folder), *confirmed]) == 0
    drafted = {path.name: path.read_text() for path in folder.iterdir()}

    result = subprocess.run(
        [sys.executable, "-c", PIPELINE, json.dumps(UPSTREAM)],
        cwd=PROJECT,
        env=dataset_environment(tmp_path, folder),
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    print(item, "seconds per day:", [run["seconds"] for run in outcome["runs"]])
    assert [run for run in outcome["runs"] if not run["success"]] == [], result.stderr[-6000:]
    # Every day's gates ran, and the last day's model gates too.
    assert outcome["runs"][-1]["checks"] > outcome["runs"][0]["checks"] > 0
    failed_checks = [check for run in outcome["runs"] for check in run["failed_checks"]]
    # The data gates, as drafted, pass on the clean sample (a warning too would be a false alarm)
    # and the model gates can judge: the drafted window gives their test split enough positives.
    # A model below an advisory floor (a recall at a threshold chosen for F1) only warns.
    assert [c for c in failed_checks if not c["check"].startswith("trained_model:")] == []
    assert [c for c in failed_checks if c["inconclusive"] or c["severity"] != "WARN"] == []
    # The folder was used as drafted.
    assert {path.name: path.read_text() for path in folder.iterdir()} == drafted

    settings = load_settings(environ={DATASET_ENV: str(folder)}, root=tmp_path)
    days = outcome["days"]
    assert outcome["window_days"] == settings.features.window_days == len(days)
    days_of_rows = pd.to_datetime(frame[TIME_COLUMN], utc=True).dt.date.astype(str)
    assert days[0] == str(settings.partitions.start_date) == min(days_of_rows)

    # Every row of those days accounted for: validated or quarantined, none lost.
    data = tmp_path / "data"
    stored = {
        name: sum(len(pd.read_parquet(data / name / f"{day}.parquet")) for day in days)
        for name in ("validated_transactions", "quarantined_transactions")
    }
    assert sum(stored.values()) == int(days_of_rows.isin(days).sum())

    # The model was trained with the drafted settings' families and registered.
    record = pd.read_json(data / "trained_model" / f"{days[-1]}.json", typ="series")
    candidates = {row["family"] for row in record["candidates"]}
    assert candidates - {SOFT_VOTE} == set(settings.training.families)
    assert record["window_days"] == days
    contract = load_contract(folder / "contract.yaml")
    client = mlflow.MlflowClient(tracking_uri=platform_environment(tmp_path)["MLFLOW_TRACKING_URI"])
    name = f"{contract.name}_classifier"
    assert [str(v.version) for v in client.search_model_versions(f"name='{name}'")] == ["1"]
    champion = client.get_model_version_by_alias(name, "champion")
    assert str(champion.version) == "1"

    # The champion scored the last day: every validated row of it.
    scores = pd.read_parquet(data / "batch_scores" / f"{days[-1]}.parquet")
    validated = pd.read_parquet(data / "validated_transactions" / f"{days[-1]}.parquet")
    assert len(scores) == len(validated) > 0
