"""Training on outcomes: a dataset whose events arrive without a label (`outcomes.labels:
outcomes`) learns only from the outcomes known by the end of the partition's day.

The example folder `datasets/card_transactions_outcome_labels` is the packaged card_transactions
contract with `labels: outcomes`, its generator emitting events without is_fraud and each outcome
1-3 days after its event. The definitions read the dataset when they load (the features' inputs
depend on it), so the pipeline runs in a process of its own; the checks here compare what it
stored with the generator's truth.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlplatform.config.dataset import DATASET_ENV, open_dataset
from mlplatform.core import data_gates
from mlplatform.core.contract import ContractError, load_contract, parse_contract
from mlplatform.core.features import (
    LABEL_COLUMN,
    SPLIT_COLUMN,
    WAITING,
    build_features,
    outcome_labels,
)
from mlplatform.core.generator import GeneratorParams, generate_outcomes, generate_transactions
from mlplatform.core.outcomes import KNOWN_AT, OUTCOME
from mlplatform.core.validate import DatasetError, validate
from mlplatform_tests.conftest import TEST_SETTINGS_DIR, platform_environment

PROJECT = Path(__file__).resolve().parents[1]
FOLDER = Path(__file__).parent / "datasets" / "card_transactions_outcome_labels"
START = dt.date(2026, 3, 1)
# The packaged feature window (7 days) ends on DAY; outcomes of NEXT_DAY exist when it trains.
DAYS = [(START + dt.timedelta(days=i)).isoformat() for i in range(7)]
DAY = DAYS[-1]
NEXT_DAY = (dt.date.fromisoformat(DAY) + dt.timedelta(days=1)).isoformat()


@pytest.fixture(scope="module")
def contract():
    return load_contract(FOLDER / "contract.yaml")


@pytest.fixture(scope="module")
def generator() -> GeneratorParams:
    from mlplatform.config.settings import load_settings

    settings = load_settings(
        environ={DATASET_ENV: str(FOLDER), "MLPLATFORM_SETTINGS_DIR": str(TEST_SETTINGS_DIR)}
    )
    return GeneratorParams(**settings.data_source.generator.model_dump())


# The contract and the example folder --------------------------------------------------------------


def test_the_example_folder_is_the_packaged_dataset_with_labels_from_outcomes(contract) -> None:
    packaged = load_contract(open_dataset("card_transactions").contract)
    assert contract.columns == packaged.columns
    assert (contract.id, contract.target, contract.name) == (
        packaged.id,
        packaged.target,
        packaged.name,
    )
    assert contract.labels_from_outcomes and not packaged.labels_from_outcomes
    assert packaged.outcomes is not None and packaged.outcomes.labels == "events"
    assert contract.target not in contract.event_columns
    assert list(packaged.event_columns) == list(packaged.columns)


def _contract_data(**outcomes: object) -> dict:
    return {
        "name": "loans",
        "id": "loan_id",
        "event_time": "applied_at",
        "target": "defaulted",
        "columns": {
            "loan_id": {"type": "integer", "nullable": False},
            "applied_at": {"type": "datetime", "nullable": False},
            "amount": {"type": "float"},
            "defaulted": {"type": "integer", "categories": [0, 1]},
        },
        "outcomes": {"max_delay_days": 30, **outcomes},
    }


def test_labels_come_from_the_events_unless_the_contract_says_outcomes() -> None:
    assert not parse_contract(_contract_data()).labels_from_outcomes
    assert parse_contract(_contract_data(labels="outcomes")).labels_from_outcomes
    with pytest.raises(ContractError, match=r"outcomes\.labels: Input should be 'events' or"):
        parse_contract(_contract_data(labels="targets"))
    # known_at says when each label became known: a label delay on top would be a second rule.
    with pytest.raises(ContractError, match="label_delay_days applies to labels the events"):
        parse_contract({**_contract_data(labels="outcomes"), "label_delay_days": 3})


# Validation and the data gates on events without labels -------------------------------------------


def test_events_without_the_target_validate_when_labels_come_from_outcomes(
    contract, generator
) -> None:
    from dataclasses import replace

    params = replace(generator, rows_per_day=400)
    events = generate_transactions(START, params)
    assert "is_fraud" not in events.columns
    outcome = validate(events, contract)
    assert len(outcome.validated) + len(outcome.quarantined) == len(events)
    assert len(outcome.validated) > 350 and "is_fraud" not in outcome.validated.columns
    assert data_gates.schema_matches_contract(events, contract).passed
    # The same events against the contract whose events carry their labels: refused, named.
    packaged = load_contract(open_dataset("card_transactions").contract)
    with pytest.raises(DatasetError, match=r"missing: \['is_fraud'\]"):
        validate(events, packaged)
    schema = data_gates.schema_matches_contract(events, packaged)
    assert not schema.passed and schema.details["missing_columns"] == ["is_fraud"]
    # Events that carry a label anyway: it is not the training label, so it is not kept.
    labelled = generate_transactions(START, replace(params, events_carry_labels=True))
    outcome = validate(labelled, contract)
    assert outcome.ignored_columns == ["is_fraud"]
    assert "is_fraud" not in outcome.validated.columns


def test_the_label_rate_gate_is_not_judged_on_events_without_labels(contract, generator) -> None:
    from dataclasses import replace

    params = replace(generator, rows_per_day=400)
    validated = validate(generate_transactions(START, params), contract).validated
    gate = data_gates.label_rate(validated, contract, 0.001, 0.2)
    assert gate.passed and gate.observed is None
    assert gate.summary == "not judged: labels come from outcomes"
    # The stage's gates together: the other gates judge the events as before.
    from mlplatform.config.gates import gates_for

    gates = gates_for(FOLDER).validated_transactions
    outcomes = data_gates.validated_transactions_gates(validated, 0, contract, gates)
    assert outcomes["label_rate"].summary == "not judged: labels come from outcomes"
    assert all(outcome.passed for outcome in outcomes.values())
    # A dataset whose events carry labels is still judged on them: no positive fails the gate.
    packaged = load_contract(open_dataset("card_transactions").contract)
    no_fraud = validated.assign(is_fraud=0)
    assert not data_gates.label_rate(no_fraud, packaged, 0.001, 0.2).passed


# The join: only the outcomes known by the end of the day ------------------------------------------


def _values(labels: pd.Series) -> list[int | None]:
    return [None if pd.isna(value) else int(value) for value in labels]


def test_an_outcome_counts_only_if_known_before_the_day_ends_in_the_partitions_time_zone() -> None:
    zone = "America/New_York"
    ids = pd.Series([101, 102, 103, 104, 105], dtype="Int64")
    outcomes = pd.DataFrame(
        {
            # Ids as the outcome records hold them (text): compared as text with the events'.
            "loan_id": ["101", "102", "103", "104", "999"],
            OUTCOME: np.array([1, 0, 1, 0, 1], dtype="int8"),
            KNOWN_AT: pd.to_datetime(
                [
                    "2026-03-07T12:00:00Z",
                    # 23:59:59 on the 7th in New York: known by the end of the 7th.
                    "2026-03-08T04:59:59Z",
                    # Midnight on the 8th in New York (still the 7th in UTC): too late.
                    "2026-03-08T05:00:00Z",
                    "2026-03-09T12:00:00Z",
                    "2026-03-07T12:00:00Z",
                ],
                utc=True,
            ),
        }
    )
    cut = dt.date(2026, 3, 8)
    labels = outcome_labels(ids, outcomes, "loan_id", known_before=cut, timezone=zone)
    assert _values(labels) == [1, 0, None, None, None]
    assert labels.index.equals(ids.index)
    # In UTC the day ends five hours earlier: the 23:59:59 outcome was known only the next day.
    utc = outcome_labels(ids, outcomes, "loan_id", known_before=cut, timezone="UTC")
    assert _values(utc) == [1, None, None, None, None]
    # Without a cut-off every outcome given counts; a float id 104.0 is the id "104".
    floats = pd.Series([101.0, 104.0, np.nan])
    assert _values(outcome_labels(floats, outcomes, "loan_id")) == [1, 0, None]
    # An id with two outcomes takes the one known first.
    twice = pd.concat([outcomes.iloc[[3]].assign(**{OUTCOME: np.int8(1)}), outcomes.iloc[[3]]])
    twice[KNOWN_AT] = pd.to_datetime(["2026-03-09T12:00:00Z", "2026-03-07T00:00:00Z"], utc=True)
    assert _values(outcome_labels(pd.Series(["104"]), twice, "loan_id")) == [0]


def test_features_take_their_labels_from_the_outcomes_known_and_the_rest_wait(
    contract, generator
) -> None:
    from dataclasses import replace

    params = replace(generator, rows_per_day=2000)
    days = [START + dt.timedelta(days=i) for i in range(3)]
    validated = pd.concat(
        [validate(generate_transactions(day, params), contract).validated for day in days],
        ignore_index=True,
    )
    records = pd.concat(
        [generate_outcomes(day + dt.timedelta(days=1), params) for day in days],
        ignore_index=True,
    )
    outcomes = pd.DataFrame(
        {
            "transaction_id": records["transaction_id"],
            OUTCOME: records["is_fraud"].astype("int8"),
            KNOWN_AT: records["known_at"],
        }
    )
    # The model of the last day: the outcomes of the day after it are given, and must not count.
    cut = days[-1] + dt.timedelta(days=1)
    features = build_features(validated, contract, labels_known_before=cut, outcomes=outcomes)
    known_by = outcomes.loc[outcomes[KNOWN_AT] < pd.Timestamp(cut, tz="UTC"), "transaction_id"]
    assert len(known_by) < len(outcomes)
    labelled = features[SPLIT_COLUMN] != WAITING
    assert set(features.loc[labelled, "transaction_id"]) == set(known_by) & set(
        features["transaction_id"]
    )
    assert labelled.sum() > 1000 and (~labelled).sum() > 2000
    # Every label is the outcome's, row by row.
    by_id = outcomes.drop_duplicates("transaction_id").set_index("transaction_id")[OUTCOME]
    rows = features[labelled]
    assert (rows[LABEL_COLUMN].to_numpy() == by_id.loc[rows["transaction_id"]].to_numpy()).all()
    assert rows[LABEL_COLUMN].sum() > 10
    # The last day's events have no outcome by its end (each arrives at least a day late).
    on_last = features["event_time"].dt.date == days[-1]
    assert on_last.sum() > 1500 and (features.loc[on_last, SPLIT_COLUMN] == WAITING).all()
    # No outcome known at all: nothing to learn from, said as such.
    with pytest.raises(DatasetError, match=r"the 0 outcome\(s\) known before"):
        build_features(validated, contract, labels_known_before=cut, outcomes=outcomes.iloc[:0])


# End to end, in the dataset's own process --------------------------------------------------------

# Runs with the example folder as the dataset: raw, validated and outcomes for each day of the
# window, the outcomes of the day after it, then features and trained_model of the window's last
# day (each with its checks). Prints what it did as one JSON line.
PIPELINE = """
import json, sys
import dagster as dg
from mlplatform.config.active import SETTINGS
from mlplatform.definitions import ASSETS, CHECKS, MONITORING_ASSETS, build_resources

days, next_day = json.loads(sys.argv[1]), sys.argv[2]
ingestion = ["raw_transactions", "validated_transactions", "quarantined_transactions",
             "outcomes", "quarantined_outcomes"]
resources = build_resources(SETTINGS)
instance = dg.DagsterInstance.ephemeral()
runs = []

def run(day, selection):
    result = dg.materialize(
        [*ASSETS, *MONITORING_ASSETS, *CHECKS], selection=selection, partition_key=day,
        resources=resources, instance=instance, raise_on_error=False,
    )
    runs.append({
        "day": day,
        "selection": selection,
        "success": result.success,
        "failed_steps": [e.step_key for e in result.get_step_failure_events()],
        "materialized": sorted(
            e.asset_key.to_user_string() for e in result.get_asset_materialization_events()
        ),
        "checks": {
            e.asset_check_key.to_user_string(): {
                "passed": e.passed, "severity": e.severity.value, "description": e.description,
            }
            for e in result.get_asset_check_evaluations()
        },
        "metadata": {
            e.asset_key.to_user_string(): {
                k: v.value for k, v in e.materialization.metadata.items()
                if isinstance(v.value, (int, float, str))
            }
            for e in result.get_asset_materialization_events()
        },
    })

for day in days:
    run(day, ingestion)
run(next_day, ["outcomes", "quarantined_outcomes"])
run(days[-1], ["features", "trained_model"])
print(json.dumps({"runs": runs, "contract": str(SETTINGS.contract)}))
"""


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    root = tmp_path_factory.mktemp("training_on_outcomes")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLPLATFORM_")}
    env.update(
        platform_environment(root),
        MLPLATFORM_DATASET=str(FOLDER),
        MLPLATFORM_SETTINGS_DIR=str(TEST_SETTINGS_DIR),
        DAGSTER_HOME=str(root),
    )
    result = subprocess.run(
        [sys.executable, "-c", PIPELINE, json.dumps(DAYS), NEXT_DAY],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["contract"] == str(FOLDER / "contract.yaml")
    return root / "data", outcome["runs"], result.stderr


def _stored(data: Path, asset: str, days: list[str]) -> pd.DataFrame:
    return pd.concat([pd.read_parquet(data / asset / f"{day}.parquet") for day in days])


@pytest.mark.slow  # `pipeline`: the whole graph over several days, in a process of its own
def test_events_without_labels_pass_their_gates_with_the_label_rate_not_judged(pipeline) -> None:
    data, runs, log = pipeline
    assert [run["failed_steps"] for run in runs if not run["success"]] == [], log[-6000:]
    for run in runs[: len(DAYS)]:
        assert "validated_transactions" in run["materialized"] and "outcomes" in run["materialized"]
        failed = {name: check for name, check in run["checks"].items() if not check["passed"]}
        assert failed == {}, run["day"]
        label_rate = run["checks"]["validated_transactions:label_rate"]
        assert label_rate["description"] == "not judged: labels come from outcomes"
        assert run["metadata"]["validated_transactions"]["label_rate"] == (
            "labels come from outcomes"
        )
    raw = pd.read_parquet(data / "raw_transactions" / f"{DAY}.parquet")
    assert "is_fraud" not in raw.columns and len(raw) > 4000


@pytest.mark.slow
def test_a_day_s_features_hold_labels_only_for_outcomes_known_by_its_end(
    pipeline, generator
) -> None:
    data, runs, _ = pipeline
    features = pd.read_parquet(data / "features" / f"{DAY}.parquet")
    ids = set(features["transaction_id"])
    # The window's events: every validated row of its days, each once.
    assert len(features) == len(ids) == len(_stored(data, "validated_transactions", DAYS))
    # The generator's truth: each event's outcome and the day it became known.
    truth = pd.concat(
        [generate_outcomes(dt.date.fromisoformat(day), generator) for day in [*DAYS, NEXT_DAY]],
        keys=[*DAYS, NEXT_DAY],
        names=["arrival_day", None],
    ).reset_index("arrival_day")
    truth = truth[truth["transaction_id"].isin(ids)].set_index("transaction_id")
    known = truth[truth["arrival_day"] <= DAY]
    labelled = features[SPLIT_COLUMN] != WAITING
    assert set(features.loc[labelled, "transaction_id"]) == set(known.index)
    rows = features[labelled]
    assert (rows[LABEL_COLUMN].to_numpy() == known.loc[rows["transaction_id"], "is_fraud"]).all()
    assert rows[LABEL_COLUMN].sum() > 50
    # Outcomes that arrived the next day were stored before this day's features were made, and
    # their rows still wait: an outcome known after the day is never used.
    next_day = truth[truth["arrival_day"] == NEXT_DAY].index
    stored_next = pd.read_parquet(data / "outcomes" / f"{NEXT_DAY}.parquet")
    assert len(next_day) > 1000 and set(next_day) <= set(stored_next["transaction_id"])
    split = features.set_index("transaction_id")[SPLIT_COLUMN]
    assert (split.loc[next_day] == WAITING).all()
    # The day's own events: none has an outcome yet (each arrives at least a day late).
    on_day = features["event_time"].dt.date.astype(str) == DAY
    assert on_day.sum() > 4000 and (features.loc[on_day, SPLIT_COLUMN] == WAITING).all()
    # What the UI shows: how many rows got labels from outcomes, how many wait.
    metadata = runs[-1]["metadata"]["features"]
    assert metadata["rows_labelled_from_outcomes"] == len(known)
    assert metadata["rows_waiting_for_labels"] == len(features) - len(known)
    assert metadata["labels"] == "outcomes known by the end of the day"


@pytest.mark.slow
def test_a_model_trains_on_the_known_outcomes_of_the_window(pipeline) -> None:
    data, runs, log = pipeline
    last = runs[-1]
    assert last["success"] and {"features", "trained_model"} <= set(last["materialized"]), log[
        -6000:
    ]
    features = pd.read_parquet(data / "features" / f"{DAY}.parquet")
    record = json.loads((data / "trained_model" / f"{DAY}.json").read_text())
    sizes = features[SPLIT_COLUMN].value_counts()
    assert {k: n for k, n in record["split_sizes"].items() if n} == {
        split: int(n) for split, n in sizes.items() if n
    }
    learned = sum(record["split_sizes"].get(split, 0) for split in ("train", "validation", "test"))
    assert learned == last["metadata"]["features"]["rows_labelled_from_outcomes"]
    assert record["window_days"] == DAYS
    # The model ranks fraud on outcomes it never saw in training better than chance.
    assert record["test_metrics"]["roc_auc"] > 0.7
