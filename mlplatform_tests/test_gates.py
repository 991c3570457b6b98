"""Quality gates in real materializations: every gate passes on normal days; each gate fails on a
day built to fail it; blocking gates stop everything downstream and leave the registry as it was;
warning gates let the run go on; automation does not carry data past a failed gate."""

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

import dagster as dg
import pytest

from mlplatform.checks.raw_transactions import raw_transactions_checks
from mlplatform.checks.validated_transactions import validated_transactions_checks
from mlplatform.definitions import ASSETS, CHECKS
from mlplatform.resources.mlflow import CHAMPION
from mlplatform_tests.conftest import Platform, make_platform
from mlplatform_tests.packaged import generated_day

pytestmark = pytest.mark.slow

MODEL = "card_transactions_classifier"
HISTORY_DAYS = ("2026-02-28", "2026-03-01", "2026-03-02")
NORMAL_DAY = "2026-03-03"
INCIDENT_DAY = "2026-03-04"
# Enough for every gate to judge (about 120 positives in a test split), a fifth of the default
# test day: each of these tests trains a model.
ROWS_PER_DAY = 20_000
INGESTION = ["raw_transactions", "validated_transactions", "quarantined_transactions"]
ALL_CHECKS = {
    "raw_transactions:schema_matches_contract", "raw_transactions:not_empty",
    "raw_transactions:fresh", "raw_transactions:volume_in_band",
    "validated_transactions:quarantine_rate", "validated_transactions:null_rate",
    "validated_transactions:value_ranges", "validated_transactions:unique_ids",
    "validated_transactions:label_rate", "features:finite_values", "features:drift",
    "features:no_target_leakage", "trained_model:accuracy", "trained_model:roc_auc",
    "trained_model:pr_auc", "trained_model:recall", "trained_model:not_worse_than_champion",
    "trained_model:calibrated", "registered_model_version:reproduces_test_metrics",
    "registered_model_version:signature_matches_features",
}  # fmt: skip
DOWNSTREAM_OF = {
    "raw_transactions": {"validated_transactions", "features", "trained_model",
                         "registered_model_version", "batch_scores", "shadow_scores"},
    "validated_transactions": {"features", "trained_model", "registered_model_version",
                               "batch_scores", "shadow_scores"},
    "features": {"trained_model", "registered_model_version", "batch_scores", "shadow_scores"},
    # Scoring is its own path: a blocked challenger does not stop the champion from scoring.
    "trained_model": {"registered_model_version"},
}  # fmt: skip


@dataclass
class Deployment:
    root: object
    instance: dg.DagsterInstance
    normal_run: dg.ExecuteInProcessResult

    def platform(self, **environ: str) -> Platform:
        return make_platform(self.root, rows_per_day=ROWS_PER_DAY, **environ)

    def run(self, day: str, selection=None, run_config=None, **environ: str):
        return dg.materialize(
            [*ASSETS, *CHECKS],
            selection=selection,
            partition_key=day,
            resources=self.platform(**environ).resources,
            instance=self.instance,
            run_config=run_config,
            raise_on_error=False,
        )

    def mlflow_run_statuses(self) -> set[str]:
        client = self.platform().mlflow_client()
        experiment = client.get_experiment_by_name("mlplatform")
        return {r.info.status for r in client.search_runs([experiment.experiment_id])}

    def registry(self) -> tuple[list[str], str | None]:
        client = self.platform().mlflow_client()
        versions = sorted(str(v.version) for v in client.search_model_versions(f"name='{MODEL}'"))
        try:
            champion = str(client.get_model_version_by_alias(MODEL, CHAMPION).version)
        except Exception:
            champion = None
        return versions, champion


@pytest.fixture(scope="module")
def deployment(tmp_path_factory) -> Iterator[Deployment]:
    with dg.instance_for_test() as instance:
        root = tmp_path_factory.mktemp("gates")
        deployment = Deployment(root, instance, None)  # type: ignore[arg-type]
        for day in HISTORY_DAYS:
            assert deployment.run(day, selection=INGESTION).success
        deployment.normal_run = deployment.run(NORMAL_DAY)
        yield deployment


def evaluations(result) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.asset_check_key.to_user_string(): e for e in result.get_asset_check_evaluations()}


def failed(result) -> set[str]:
    return {key for key, e in evaluations(result).items() if not e.passed}


def materialized(result) -> set[str]:
    return {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}


def test_every_gate_passes_on_a_normal_day_with_value_and_threshold(deployment):
    result = deployment.normal_run
    assert result.success
    checks = evaluations(result)
    assert set(checks) == ALL_CHECKS
    # Calibration warns on this small window, and rightly: the soft vote wins here and has no
    # log-odds, so the sigmoid is fitted on its probabilities and predicts 0.0004-0.0017 in three
    # middle bins where 0.0017-0.0050 happened. A warning, judged on enough positives.
    assert failed(result) == {"trained_model:calibrated"}
    calibrated = checks["trained_model:calibrated"]
    assert calibrated.severity == dg.AssetCheckSeverity.WARN
    assert not calibrated.metadata["inconclusive"].value
    assert "bins predict a rate outside" in calibrated.description
    # The trained model shows its calibration error and Brier score with intervals, and its MLflow
    # run logs them beside the raw scores' (what calibration bought).
    model = next(
        {k: v.value for k, v in e.materialization.metadata.items()}
        for e in result.get_asset_materialization_events()
        if e.asset_key.to_user_string() == "trained_model"
    )
    assert model["calibration"] == "sigmoid"
    for score in ("ece", "brier"):
        assert model[f"test_{score}_low"] <= model[f"test_{score}"] <= model[f"test_{score}_high"]
        assert model[f"test_{score}_high"] < model[f"test_{score}_uncalibrated"]
    logged = deployment.platform().mlflow_client().get_run(model["mlflow_run_id"]).data.metrics
    assert logged["test_ece"] == pytest.approx(model["test_ece"], abs=1e-6)  # shown rounded
    assert {"test_ece_high", "test_brier_low", "test_brier_uncalibrated"} <= set(logged)
    for key, evaluation in checks.items():
        assert {"observed", "threshold", "summary"} <= set(evaluation.metadata), key
        assert evaluation.partition == NORMAL_DAY
    # Judged against real history, not waved through.
    assert "median" in checks["raw_transactions:volume_in_band"].description
    assert "highest PSI" in checks["features:drift"].description
    # Per-feature drift is a table a person sorts, one row per numeric feature.
    psi = checks["features:drift"].metadata["psi_by_feature"]
    assert [c.name for c in psi.schema.columns] == ["feature", "psi"]
    rows = {r.data["feature"]: r.data["psi"] for r in psi.records}
    assert "amount" in rows and all(isinstance(v, float) for v in rows.values())
    assert max(rows.values()) == checks["features:drift"].metadata["observed"].value
    assert deployment.registry()[1] is not None


# A model trained on the oldest 11% of the window: clearly worse than the champion.
WEAK_MODEL = {"ops": {"features": {"config": {"validation_fraction": 0.04, "test_fraction": 0.85}}}}


def threshold_for(metric: str) -> dict:
    return {"ops": {"trained_model": {"config": {"threshold_metric": metric}}}}


UNCALIBRATED = {"ops": {"trained_model": {"config": {"calibration": "none"}}}}


@pytest.mark.parametrize(
    ("incident", "run_config", "gates"),
    [
        ("schema_break", None, ("raw_transactions:schema_matches_contract",)),
        ("volume_drop", None, ("raw_transactions:volume_in_band",)),
        ("bad_rows", None, ("validated_transactions:quarantine_rate",)),
        ("label_shift", None, ("validated_transactions:label_rate",)),
        ("leak", None, ("features:no_target_leakage",)),
        # One run for both: noisy labels sink ROC-AUC and PR-AUC alike.
        ("label_noise", None, ("trained_model:roc_auc", "trained_model:pr_auc")),
        # Flagging everyone maximises recall: the threshold drops and accuracy collapses.
        ("none", threshold_for("recall"), ("trained_model:accuracy",)),
    ],
    ids=lambda value: "+".join(value) if isinstance(value, tuple) else None,
)
def test_blocking_gate_stops_the_run_and_leaves_the_registry(
    deployment, incident, run_config, gates
):
    registry_before = deployment.registry()
    result = deployment.run(
        INCIDENT_DAY, run_config=run_config, MLPLATFORM_GENERATOR_INCIDENT=incident
    )
    assert not result.success
    for gate in gates:
        assert gate in failed(result)
        evaluation = evaluations(result)[gate]
        assert evaluation.severity == dg.AssetCheckSeverity.ERROR
        assert evaluation.description  # a sentence a person reads in the UI
    (stopped_asset,) = {gate.split(":")[0] for gate in gates}
    assert stopped_asset in materialized(result)  # the checked asset itself stays
    assert not (DOWNSTREAM_OF[stopped_asset] & materialized(result))
    assert deployment.registry() == registry_before
    assert "RUNNING" not in deployment.mlflow_run_statuses()
    if stopped_asset == "trained_model":
        # The day is still scored, by the champion it already had, and says why.
        _, champion = registry_before
        scored = next(
            {k: v.value for k, v in e.materialization.metadata.items()}
            for e in result.get_asset_materialization_events()
            if e.asset_key.to_user_string() == "batch_scores"
        )
        assert scored["model_version"] == champion
        why = scored["why_this_version"]
        assert "failed its blocking gates" in why
        for gate in gates:
            assert f"'{gate.split(':')[1]}'" in why


@pytest.mark.parametrize(
    ("incident", "run_config", "gate"),
    [
        ("stale", None, "raw_transactions:fresh"),
        ("null_spike", None, "validated_transactions:null_rate"),
        ("drift", None, "features:drift"),
        ("none", threshold_for("precision"), "trained_model:recall"),
        # Worse than the champion: registered as challenger, the champion stays and scores.
        ("none", WEAK_MODEL, "trained_model:not_worse_than_champion"),
        # Not calibrated: the class-weighted scores overstate fraud in every bin.
        ("none", UNCALIBRATED, "trained_model:calibrated"),
    ],
)
def test_warning_gate_reports_and_lets_the_run_go_on(deployment, incident, run_config, gate):
    champion_before = deployment.registry()[1]
    result = deployment.run(
        INCIDENT_DAY, run_config=run_config, MLPLATFORM_GENERATOR_INCIDENT=incident
    )
    assert gate in failed(result)
    assert evaluations(result)[gate].severity == dg.AssetCheckSeverity.WARN
    assert "batch_scores" in materialized(result)
    if gate == "trained_model:not_worse_than_champion":
        assert deployment.registry()[1] == champion_before
        assert "may be worse" in evaluations(result)[gate].description
    if gate == "trained_model:calibrated":
        assert "10 of 10 bins predict a rate outside" in evaluations(result)[gate].description
        assert len(evaluations(result)[gate].metadata["bins"].records) == 10


def test_a_model_that_failed_its_gates_never_takes_champion_later(deployment):
    blocked = deployment.run(INCIDENT_DAY, run_config=threshold_for("recall"))
    assert "trained_model:accuracy" in failed(blocked)
    versions_before, champion_before = deployment.registry()
    # Someone materializes the registration alone afterwards (UI, re-execution).
    later = deployment.run(INCIDENT_DAY, selection=["registered_model_version"])
    record = {
        k: v.value
        for e in later.get_asset_materialization_events()
        for k, v in e.materialization.metadata.items()
    }
    assert record["promoted_to_champion"] is False
    assert "below the gate floors for ['accuracy']" in record["promotion_reason"]
    versions_after, champion_after = deployment.registry()
    assert champion_after == champion_before and len(versions_after) == len(versions_before) + 1


def test_a_day_that_failed_its_gates_is_left_out_of_later_windows(deployment):
    assert not deployment.run(INCIDENT_DAY, MLPLATFORM_GENERATOR_INCIDENT="label_shift").success
    next_day = deployment.run("2026-03-05")
    features = next(
        e.materialization.metadata
        for e in next_day.get_asset_materialization_events()
        if e.asset_key.to_user_string() == "features"
    )
    assert features["window_days_excluded"].value == {INCIDENT_DAY: ["label_rate"]}
    assert INCIDENT_DAY not in features["window_days_found"].value
    assert NORMAL_DAY in features["window_days_found"].value


def test_empty_day_is_refused_before_raw_data_is_stored(tmp_path):
    """A day without rows is unusable raw data: ingestion refuses it (the not_empty gate still
    judges a day with fewer rows than its min_rows)."""
    landing = tmp_path / "landing"
    landing.mkdir()
    other_day = generated_day(dt.date(2026, 3, 5))
    other_day.to_csv(landing / "tx.csv", index=False)
    platform = make_platform(
        tmp_path, MLPLATFORM_SOURCE_KIND="files", MLPLATFORM_SOURCE_PATH=str(landing)
    )
    result = dg.materialize(
        [*ASSETS, *CHECKS],
        partition_key="2026-03-02",
        resources=platform.resources,
        raise_on_error=False,
    )
    assert not result.success
    assert materialized(result) == set()
    failure = result.get_step_failure_events()[0].step_failure_data.user_failure_data
    assert "no rows for 2026-03-02" in failure.description


def requested_after_raw_update(platform: Platform, instance: dg.DagsterInstance) -> tuple:
    """Tick the automation once, materialize raw data (with its checks), tick again: what does
    automation request for validated_transactions?"""
    latest_day = "2026-03-02"
    evaluation_time = dt.datetime(2026, 3, 3, 6, tzinfo=dt.UTC)
    defs = dg.Definitions(assets=ASSETS, asset_checks=CHECKS, resources=platform.resources)
    selection = dg.AssetSelection.assets("validated_transactions")
    first = dg.evaluate_automation_conditions(
        defs, instance, asset_selection=selection, evaluation_time=evaluation_time
    )
    result = dg.materialize(
        [*ASSETS, raw_transactions_checks, validated_transactions_checks],
        selection=["raw_transactions"],
        partition_key=latest_day,
        resources=platform.resources,
        instance=instance,
        raise_on_error=False,
    )
    second = dg.evaluate_automation_conditions(
        defs,
        instance,
        asset_selection=selection,
        evaluation_time=evaluation_time + dt.timedelta(minutes=1),
        cursor=first.cursor,
    )
    return result, second.get_requested_partitions(dg.AssetKey("validated_transactions"))


def test_automation_does_not_carry_data_past_a_failed_gate(tmp_path):
    """`eager` alone would request validated_transactions after any raw materialization; the
    platform's condition also waits for raw's blocking checks to pass."""
    with dg.instance_for_test() as instance:
        bad = make_platform(tmp_path / "bad", MLPLATFORM_GENERATOR_INCIDENT="schema_break")
        result, requested = requested_after_raw_update(bad, instance)
        assert "raw_transactions:schema_matches_contract" in failed(result)
        assert requested == set()

    with dg.instance_for_test() as instance:
        result, requested = requested_after_raw_update(make_platform(tmp_path / "good"), instance)
        assert failed(result) == set()
        assert requested == {"2026-03-02"}


def test_incident_can_be_set_for_one_run_from_the_launchpad(tmp_path):
    """The README's recipe: one generator dial in run config, the others keep their settings."""
    platform = make_platform(tmp_path)
    result = dg.materialize(
        [*ASSETS, *CHECKS],
        selection=["raw_transactions"],
        partition_key="2026-03-02",
        resources=platform.resources,
        run_config={
            "resources": {"data_source": {"config": {"generator": {"incident": "schema_break"}}}}
        },
        raise_on_error=False,
    )
    assert failed(result) == {"raw_transactions:schema_matches_contract"}
