"""After deployment, end to end with the real IO managers, a temporary MLflow store and a Dagster
instance: outcomes arrive days late, each scored day gains its realized performance as they do,
a concept drift is caught by the realized-performance checks (one alert, a retraining that brings
performance back, the estimate shown to have missed), and the champion moves on live evidence:
promoted, rolled back, and rolled back by hand, each move with its reason in the registry."""

import datetime as dt
import json
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from mlplatform.automation.monitoring import outcomes_arrived, performance_decay, rollback
from mlplatform.definitions import ASSETS, MONITORING_ASSETS
from mlplatform.resources.data_source import DataSource, GeneratorConfig
from mlplatform_tests.conftest import WebhookReceiver, make_platform

pytestmark = pytest.mark.slow

START = dt.date(2026, 3, 1)
DRIFT_DAY = START + dt.timedelta(days=7)  # the first day whose fraud follows another concept
ROWS_PER_DAY = 10_000  # about 100 frauds a day: enough positives for a day's realized metrics
MAX_DELAY = 3  # outcomes arrive 1 to 3 days after their event
EVERYTHING = [*ASSETS, *MONITORING_ASSETS]
INGEST = ["raw_transactions", "validated_transactions", "quarantined_transactions"]
OUTCOMES = ["outcomes", "quarantined_outcomes"]
SCORE = [*INGEST, "features", "batch_scores", "shadow_scores", *OUTCOMES]


def day(n: int) -> str:
    return (START + dt.timedelta(days=n - 1)).isoformat()


class Loop:
    """A platform whose generated fraud changes concept on DRIFT_DAY, run day by day as the
    schedule and the sensors would run it."""

    def __init__(self, root: Path, instance: dg.DagsterInstance, webhook: WebhookReceiver):
        from mlplatform.resources.alerts import AlertWebhook

        self.platform = make_platform(root, rows_per_day=ROWS_PER_DAY)
        source: DataSource = self.platform.resources["data_source"]
        dials = source.generator.model_dump()
        self.resources = {
            **self.platform.resources,
            "data_source": DataSource(
                kind="generator",
                generator=GeneratorConfig(
                    **{
                        **dials,
                        "concept_drift_from": DRIFT_DAY.isoformat(),
                        "outcome_delay_min_days": 1,
                        "outcome_delay_max_days": MAX_DELAY,
                    }
                ),
            ),
            "alert_webhook": AlertWebhook(url=webhook.url),
        }
        self.instance = instance
        self.webhook = webhook
        self.mlflow = self.resources["mlflow"]
        self.outcomes_cursor: str | None = None
        self.decay_cursor: str | None = None

    def materialize(self, partition: str, selection, **arguments) -> dg.ExecuteInProcessResult:
        result = dg.materialize(
            EVERYTHING,
            partition_key=partition,
            resources=self.resources,
            instance=self.instance,
            selection=selection,
            **arguments,
        )
        assert result.success, partition
        return result

    def monitor(self, **arguments) -> list[str]:
        """The outcomes_arrived sensor's requests, run as its job would: the scored days it asked
        for, each day's realized performance recomputed."""
        context = dg.build_sensor_context(instance=self.instance, cursor=self.outcomes_cursor)
        result = outcomes_arrived(context)
        if isinstance(result, dg.SkipReason):
            return []
        self.outcomes_cursor = result.cursor
        days = sorted({request.partition_key for request in result.run_requests})
        for scored in days:
            self.materialize(scored, ["model_performance"], **arguments)
        return days

    def watch_decay(self) -> list[dg.RunRequest]:
        with dg.build_sensor_context(
            instance=self.instance,
            cursor=self.decay_cursor,
            resources={"alert_webhook": self.resources["alert_webhook"]},
        ) as context:
            result = performance_decay(context)
        if isinstance(result, dg.SkipReason):
            return []
        self.decay_cursor = result.cursor
        return list(result.run_requests)

    def checks(self, scored: str) -> dict[str, dict]:
        """The newest evaluation of each model_performance check for a scored day."""
        from mlplatform.checks.gate_history import completed_evaluations, evaluation_verdict

        found = {}
        for check in (
            "realized_above_floor", "realized_vs_backtest", "estimate_matches_realized",
            "not_worse_than_predecessor", "score_distribution",
        ):  # fmt: skip
            records = completed_evaluations(self.instance, "model_performance", check, scored, 1)
            if records:
                verdict, metadata = evaluation_verdict(records[0])
                found[check] = {"verdict": verdict, **metadata}
        return found

    def performance(self, scored: str) -> dict:
        record = self.instance.fetch_materializations(
            dg.AssetRecordsFilter(
                asset_key=dg.AssetKey("model_performance"), asset_partitions=[scored]
            ),
            limit=1,
        ).records[0]
        return {k: v.value for k, v in record.asset_materialization.metadata.items()}

    def champion(self):
        name = self.mlflow.model_name_for("card_transactions")
        return self.mlflow.client.get_model_version_by_alias(name, "champion")


@pytest.fixture(scope="module")
def loop(tmp_path_factory):
    webhook = WebhookReceiver()
    with dg.instance_for_test() as instance:
        loop = Loop(tmp_path_factory.mktemp("loop"), instance, webhook)
        for n in range(1, 7):
            loop.materialize(day(n), [*INGEST, *OUTCOMES])
        # v1, trained on the six days before the drift and the last one.
        loop.materialize(day(7), dg.AssetSelection.all() - dg.AssetSelection.groups("monitoring"))
        loop.history = {"coverage": {}}
        for n in range(8, 15):
            loop.materialize(day(n), SCORE)
            loop.monitor()
            loop.history["coverage"][day(n)] = loop.performance(day(8))["realized_coverage"]
        yield loop
    webhook.close()


def test_each_scored_day_gains_its_realized_metrics_as_its_outcomes_arrive(loop):
    coverage = loop.history["coverage"]
    # Day 8's outcomes arrive on days 9 to 11: its coverage grows, then stays whole.
    assert coverage[day(8)] < coverage[day(9)] < coverage[day(10)] <= coverage[day(11)]
    assert coverage[day(11)] == coverage[day(14)] == 1.0
    seen = loop.performance(day(8))
    assert seen["realized_labelled_rows"] == seen["realized_scored_rows"]
    for metric in ("roc_auc", "pr_auc", "precision", "recall", "brier", "coverage"):
        assert seen[f"realized_{metric}_low"] <= seen[f"realized_{metric}"]
        assert seen[f"realized_{metric}"] <= seen[f"realized_{metric}_high"]
    assert seen["realized_positives"] >= 30
    # The estimate's interval is widened by what training measured for the model, never narrowed.
    champion = loop.mlflow.client.get_model_version(
        loop.mlflow.model_name_for("card_transactions"), seen["model_version"]
    )
    assert seen["estimated_dispersion"] == float(champion.tags["estimate_dispersion"]) >= 1
    # Every outcome record of the days is accounted for: joined or quarantined with a reason.
    for n in range(2, 15):
        record = loop.instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey("outcomes"), asset_partitions=[day(n)]),
            limit=1,
        ).records[0]
        metadata = {k: v.value for k, v in record.asset_materialization.metadata.items()}
        assert metadata["records_in"] == metadata["joined"] + metadata["quarantined"]


def test_concept_drift_fails_the_realized_checks_with_confidence_and_alerts_once(loop):
    deadline = DRIFT_DAY + dt.timedelta(days=MAX_DELAY + 2)
    failed_by_deadline = [
        scored
        for scored in (day(n) for n in range(8, 15))
        if scored <= deadline.isoformat()
        and loop.checks(scored)["realized_vs_backtest"]["verdict"] == "failed"
    ]
    assert failed_by_deadline, {day(n): loop.checks(day(n)) for n in range(8, 11)}
    # The champion trained before the drift ranks the day's fraud far worse than its backtest.
    assert loop.performance(day(8))["realized_roc_auc_high"] < 0.8
    # The estimate from the calibrated probabilities could not see the drift.
    assert loop.checks(day(8))["estimate_matches_realized"]["verdict"] == "failed"

    requests = loop.watch_decay()
    decay_alerts = [m for m in loop.webhook.messages if "decayed" in m["text"]]
    assert len(decay_alerts) == 1, [m["text"] for m in loop.webhook.messages]
    assert len(requests) == 1 and requests[0].partition_key == day(14)
    assert loop.watch_decay() == [] and len(loop.webhook.messages) == len(decay_alerts)
    loop.history["retraining"] = requests[0]


def test_the_retraining_brings_realized_performance_back_and_clears_the_alert(loop):
    request = loop.history.get("retraining")
    if request is None:
        pytest.skip("needs the drift test's retraining request")  # ran alone
    before = str(loop.champion().version)
    loop.materialize(
        request.partition_key,
        dg.AssetSelection.assets("features").downstream() - dg.AssetSelection.groups("monitoring"),
        tags=request.tags,
    )
    champion = loop.champion()
    assert str(champion.version) != before
    assert champion.tags["previous_champion"] == before
    assert champion.tags["champion_reason"].startswith(f"registration of {day(14)}")
    for n in range(15, 19):
        loop.materialize(day(n), SCORE)
        loop.monitor()
    for n in (15, 16):
        seen = loop.performance(day(n))
        assert seen["model_version"] == str(champion.version)
        assert seen["realized_roc_auc_low"] > 0.8, seen
        assert loop.checks(day(n))["realized_vs_backtest"]["verdict"] == "passed"
        # v1 in shadow: the champion is not worse than the version it replaced.
        assert loop.checks(day(n))["not_worse_than_predecessor"]["verdict"] == "passed"
    loop.watch_decay()
    cleared = [m for m in loop.webhook.messages if "cleared" in m["text"]]
    assert len(cleared) == 1, [m["text"] for m in loop.webhook.messages]
    loop.history["champion"] = str(champion.version)


def test_the_champion_moves_on_live_evidence_and_back_by_hand(loop):
    better = loop.history.get("champion")
    if better is None:
        pytest.skip("needs the retraining test's champion")  # ran alone
    name = loop.mlflow.model_name_for("card_transactions")
    worse = loop.champion().tags["previous_champion"]
    # Someone gives `champion` back to the pre-drift model: the better one now shadows it, as
    # the challenger and as the version it replaced.
    loop.mlflow.move_champion(name, worse, "a test: the old model back by hand")
    loop.materialize(day(19), SCORE)
    for n in range(20, 23):
        loop.materialize(day(n), [*INGEST, *OUTCOMES])
    loop.monitor()

    # By default a champion worse than its predecessor is announced, not rolled back; the
    # challenger, confidently better on the same live rows, is promoted on that evidence.
    checks = loop.checks(day(19))
    assert checks["not_worse_than_predecessor"]["verdict"] == "failed"
    promoted = loop.champion()
    assert str(promoted.version) == better
    assert promoted.tags["champion_reason"].startswith(f"promoted on live outcomes of {day(19)}")
    evidence = json.loads(promoted.tags["champion_evidence"])
    assert float(evidence["difference_low"]) > float(evidence["margin"])
    assert evidence["action"] == "promote" and evidence["version"] == better
    loop.watch_decay()
    assert [m for m in loop.webhook.messages if "rollback" in m["text"]]

    # Told to roll back, the same evidence moves the alias back at once.
    loop.mlflow.move_champion(name, worse, "a test: the old model back by hand again")
    config = {"on_worse_than_predecessor": "rollback"}
    loop.materialize(
        day(19),
        ["model_performance"],
        run_config={"ops": {"model_performance": {"config": config}}},
    )
    rolled = loop.champion()
    assert str(rolled.version) == better
    assert rolled.tags["champion_reason"].startswith(f"rollback on live outcomes of {day(19)}")

    # And by hand: the rollback job gives `champion` back to the version it replaced.
    result = rollback.execute_in_process(
        instance=loop.instance,
        resources={"mlflow": loop.mlflow},
        run_config={"ops": {"move_champion_back": {"config": {"reason": "a test"}}}},
    )
    assert result.success
    by_hand = loop.champion()
    assert str(by_hand.version) == worse
    assert by_hand.tags["champion_reason"] == f"rollback by hand from v{better}: a test"
    assert json.loads(by_hand.tags["champion_evidence"])["rolled_back_from"] == better


def test_the_scenario_is_written_down(loop):
    """The drift scenario's figures, day by day, for the README (test-artifacts/)."""
    rows = []
    for n in range(8, 19):
        seen, checks = loop.performance(day(n)), loop.checks(day(n))
        rows.append(
            {
                "day": day(n),
                "champion": seen["model_version"],
                "coverage": round(seen.get("realized_coverage", 0.0), 3),
                "realized_roc_auc": [
                    round(seen.get(f"realized_roc_auc{end}", float("nan")), 3)
                    for end in ("", "_low", "_high")
                ],
                "estimated_roc_auc": round(seen.get("estimated_roc_auc", float("nan")), 3),
                "backtest_roc_auc": round(seen.get("backtest_roc_auc", float("nan")), 3),
                **{check: result["verdict"] for check, result in checks.items()},
            }
        )
    folder = Path("test-artifacts")
    folder.mkdir(exist_ok=True)
    (folder / "concept_drift_scenario.json").write_text(json.dumps(rows, indent=2))
    assert {row["champion"] for row in rows} == {"1", loop.history.get("champion", "2")}


def test_scores_decide_from_the_champion_only(loop):
    scores = pd.read_parquet(loop.platform.data_dir / "batch_scores" / f"{day(19)}.parquet")
    shadow = pd.read_parquet(loop.platform.data_dir / "shadow_scores" / f"{day(19)}.parquet")
    assert scores["model_version"].nunique() == 1
    assert set(shadow["role"]) == {"challenger", "previous_champion"}
    assert not set(shadow["model_version"]) & set(scores["model_version"])
    assert set(shadow["transaction_id"]) == set(scores["transaction_id"])
    assert scores["decision"].any() and not shadow.empty
