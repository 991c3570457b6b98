"""Realized, backtest and estimated performance per model version in the exporter's metrics, the
dashboard's panels on them and the decay alert: against an instance where model_performance was
really materialized (two trained days, late outcomes, two scored days judged), and on plain
records for what the real runs cannot show cheaply (many days, live verdicts, judged checks)."""

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass

import dagster as dg
import pytest
import yaml

from mlplatform.definitions import ASSETS, MONITORING_ASSETS
from mlplatform.monitoring.exporter import PlatformCollector
from mlplatform.monitoring.history import CheckEvaluation, ScoredDayPerformance
from mlplatform.monitoring.instance_reader import InstanceHistory
from mlplatform.monitoring.metric_families import newest_judged
from mlplatform.monitoring.performance_families import (
    ESTIMATED_METRICS,
    REALIZED_METRICS,
    performance_metrics,
)
from mlplatform_tests.conftest import Platform, make_platform
from mlplatform_tests.test_monitoring import (
    MONITORING,
    PROMETHEUS_DIR,
    alert_case,
    promql_metric_names,
    run_promtool,
    scrape,
)

ROWS_PER_DAY = 5000
TRAINED_DAYS = ("2026-03-01", "2026-03-02")
# Outcomes arrive 1-14 days after their event: three more days of arrivals.
ARRIVAL_DAYS = ("2026-03-03", "2026-03-04", "2026-03-05")
DAY_ASSETS = dg.AssetSelection.all() - dg.AssetSelection.groups("monitoring")
OUTCOME_ASSETS = ["outcomes", "quarantined_outcomes"]


@dataclass
class Monitored:
    instance: dg.DagsterInstance
    platform: Platform
    # Scored day -> the metadata of its (latest) model_performance materialization.
    performance: dict[str, dict]
    # (check, scored day) -> its evaluation in that run.
    checks: dict[tuple[str, str], dg.AssetCheckEvaluation]


def materialize(instance, platform: Platform, day: str, selection) -> dg.ExecuteInProcessResult:
    result = dg.materialize(
        [*ASSETS, *MONITORING_ASSETS],
        partition_key=day,
        resources=platform.resources,
        instance=instance,
        selection=selection,
    )
    assert result.success, day
    return result


@pytest.fixture(scope="module")
def monitored(tmp_path_factory) -> Iterator[Monitored]:
    root = tmp_path_factory.mktemp("monitored")
    home = root / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        platform = make_platform(root, rows_per_day=ROWS_PER_DAY)
        for day in TRAINED_DAYS:
            materialize(instance, platform, day, DAY_ASSETS)
        for day in ARRIVAL_DAYS:
            materialize(instance, platform, day, OUTCOME_ASSETS)
        performance, checks = {}, {}
        # The newer day first, as when late outcomes make an older day's figures be redone.
        for day in reversed(TRAINED_DAYS):
            result = materialize(instance, platform, day, ["model_performance"])
            (event,) = result.get_asset_materialization_events()
            performance[day] = {k: v.value for k, v in event.materialization.metadata.items()}
            checks |= {(e.check_name, day): e for e in result.get_asset_check_evaluations()}
        yield Monitored(instance, platform, performance, checks)


@pytest.fixture(scope="module")
def served(monitored):
    return scrape(PlatformCollector(InstanceHistory(monitored.instance)))


def newest_per_version(performance: dict[str, dict], key: str) -> dict[str, str]:
    """version -> its newest scored day whose metadata holds `key`."""
    days: dict[str, str] = {}
    for day, metadata in sorted(performance.items()):
        if key in metadata:
            days[metadata["model_version"]] = day
    return days


@pytest.mark.slow
def test_the_runs_left_realized_and_estimated_figures(monitored):
    # Outcomes of both days arrived (1-14 days late): each has a realized figure and an estimate.
    for day in TRAINED_DAYS:
        metadata = monitored.performance[day]
        assert metadata["realized_labelled_rows"] > 0, day
        assert 0 < metadata["realized_coverage"] < 1, day
        assert "realized_roc_auc" in metadata and "estimated_roc_auc" in metadata, day
        assert "backtest_roc_auc" in metadata, day


@pytest.mark.slow
def test_realized_backtest_and_estimate_per_version_are_the_materializations(monitored, served):
    model = "card_transactions_classifier"
    realized_days = newest_per_version(monitored.performance, "realized_roc_auc")
    assert realized_days
    for version, day in realized_days.items():
        metadata = monitored.performance[day]
        labels = {"model": model, "version": version, "day": day}
        for metric in REALIZED_METRICS:
            for suffix in ("", "_low", "_high"):
                assert served.value(
                    f"mlplatform_realized_metric{suffix}", metric=metric, **labels
                ) == pytest.approx(metadata[f"realized_{metric}{suffix}"]), (metric, suffix)
            for suffix in ("", "_low", "_high"):
                assert served.value(f"mlplatform_realized_coverage{suffix}", **labels) == (
                    pytest.approx(metadata[f"realized_coverage{suffix}"])
                )
        for key, rows in (("scored_rows", "scored"), ("labelled_rows", "labelled"),
                          ("positives", "positives")):  # fmt: skip
            assert (
                served.value("mlplatform_realized_rows", rows=rows, **labels)
                == (metadata[f"realized_{key}"])
            )
        assert served.value(
            "mlplatform_realized_minus_backtest", metric="roc_auc", **labels
        ) == pytest.approx(metadata["realized_roc_auc"] - metadata["backtest_roc_auc"])
        assert served.value(
            "mlplatform_backtest_metric", model=model, version=version, metric="roc_auc"
        ) == pytest.approx(metadata["backtest_roc_auc"])
        # One day per version: older days of the same version are not served.
        assert {s.labels["day"] for s in served.series("mlplatform_realized_metric",
                                                       version=version)} == {day}  # fmt: skip
    for version, day in newest_per_version(monitored.performance, "estimated_roc_auc").items():
        metadata = monitored.performance[day]
        labels = {"model": model, "version": version, "day": day}
        for metric in ESTIMATED_METRICS:
            assert served.value(
                "mlplatform_estimated_metric", metric=metric, **labels
            ) == pytest.approx(metadata[f"estimated_{metric}"])
            assert served.value(
                "mlplatform_estimated_metric_high", metric=metric, **labels
            ) == pytest.approx(metadata[f"estimated_{metric}_high"])
    # Every version served scored a day here, and no other.
    versions = {m["model_version"] for m in monitored.performance.values()}
    assert {s.labels["version"] for s in served.series("mlplatform_realized_metric")} == versions


@pytest.mark.slow
def test_live_verdicts_are_the_shadow_comparisons(monitored, served):
    # The second day's registration left a challenger or a predecessor: it scored in shadow, and
    # the comparison of the day is served with the action it called for.
    newest = monitored.performance[TRAINED_DAYS[-1]]
    assert newest["live_verdicts"], "nothing scored in shadow on the second day"
    for role, evidence in newest["live_verdicts"].items():
        (sample,) = served.series(
            "mlplatform_live_verdict", role=role, version=evidence["version"],
            champion_version=evidence["champion_version"],
        )  # fmt: skip
        assert sample.value == 1 and sample.labels["action"] == evidence["action"]
        if "difference" in evidence:
            assert served.value(
                "mlplatform_live_difference", role=role, version=evidence["version"],
                metric=evidence["metric"],
            ) == pytest.approx(float(evidence["difference"]))  # fmt: skip


@pytest.mark.slow
def test_checks_too_thin_to_judge_are_not_served_as_judged(monitored, served):
    def judged(check: str) -> list:
        return served.series(
            "mlplatform_window_asset_check_judged_passed", asset="model_performance", check=check
        )

    # At 5,000 rows a day, the few positives known so far cannot judge decay: "not judged yet",
    # which passes (the day is judged again as outcomes arrive) and is marked inconclusive. The
    # latest evaluation is served as it is; the judged gauge leaves it out.
    for check in ("realized_above_floor", "realized_vs_backtest"):
        assert all(monitored.checks[(check, day)].metadata["inconclusive"].value
                   for day in TRAINED_DAYS), check  # fmt: skip
        assert served.value("mlplatform_asset_check_passed", asset="model_performance",
                            check=check) == 1  # fmt: skip
        assert judged(check) == [], check
    # A check that judged both days is served on the newer day, though the older one was
    # evaluated last.
    newest = TRAINED_DAYS[-1]
    conclusive = [
        check
        for (check, day), e in monitored.checks.items()
        if day == newest and not e.metadata["inconclusive"].value
    ]
    assert conclusive
    for check in conclusive:
        (sample,) = judged(check)
        assert sample.labels["partition"] == newest
        assert sample.value == (1.0 if monitored.checks[(check, newest)].passed else 0.0)


@pytest.mark.slow
def test_the_performance_panels_and_the_decay_alert_query_served_metrics(served):
    dashboard = json.loads((MONITORING / "grafana" / "dashboard.json").read_text())
    names = set()
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            names |= promql_metric_names(target["expr"])
    for wanted in ("mlplatform_realized_metric", "mlplatform_backtest_metric",
                   "mlplatform_estimated_metric", "mlplatform_realized_coverage",
                   "mlplatform_realized_minus_backtest", "mlplatform_live_verdict"):  # fmt: skip
        assert wanted in names, wanted
        assert served.series(wanted), f"{wanted}: no sample after real runs"
    rules = yaml.safe_load((PROMETHEUS_DIR / "alert_rules.yml").read_text())
    (decay,) = [r for g in rules["groups"] for r in g["rules"]
                if r.get("alert") == "MlplatformRealizedPerformanceDecayed"]  # fmt: skip
    assert promql_metric_names(decay["expr"]) <= served.declared


# --- On plain records ---------------------------------------------------------------------------


def day_of(offset: int) -> str:
    return (dt.date(2026, 3, 1) + dt.timedelta(days=offset)).isoformat()


def scored_day(offset: int, version: str, realized: float | None, **extra) -> ScoredDayPerformance:
    values = {"estimated_roc_auc": 0.9, "estimated_roc_auc_low": 0.85,
              "estimated_roc_auc_high": 0.95, "backtest_roc_auc": 0.93,
              "realized_coverage": 0.0 if realized is None else 0.5,
              "realized_scored_rows": 100}  # fmt: skip
    if realized is not None:
        values.update(realized_roc_auc=realized, realized_roc_auc_low=realized - 0.05,
                      realized_roc_auc_high=realized + 0.04, realized_positives=40)  # fmt: skip
    return ScoredDayPerformance("m", day_of(offset), version, 1000.0 + offset, values, **extra)


def families(days) -> dict[str, list]:
    return {family.name: family.samples for family in performance_metrics(days)}


def test_each_version_is_served_on_its_newest_day_with_each_figure():
    # 30 days: v1 scored days 0-19, v2 days 20-29; outcomes have come for days up to 24.
    days = [scored_day(i, "1" if i < 20 else "2", 0.9 - i / 100 if i < 25 else None)
            for i in range(30)]  # fmt: skip
    served = families(days)
    realized = {(s.labels["version"], s.labels["day"]): s.value
                for s in served["mlplatform_realized_metric"]}  # fmt: skip
    assert realized == {
        ("1", day_of(19)): pytest.approx(0.71),
        ("2", day_of(24)): pytest.approx(0.66),
    }
    estimated = {(s.labels["version"], s.labels["day"])
                 for s in served["mlplatform_estimated_metric"]}  # fmt: skip
    assert estimated == {("1", day_of(19)), ("2", day_of(29))}
    gap = {s.labels["version"]: s.value for s in served["mlplatform_realized_minus_backtest"]}
    assert gap == {"1": pytest.approx(0.71 - 0.93), "2": pytest.approx(0.66 - 0.93)}
    assert {s.labels["version"]: s.value for s in served["mlplatform_backtest_metric"]} == {
        "1": 0.93, "2": 0.93,
    }  # fmt: skip
    # Coverage goes with the realized figure's day.
    coverage = served["mlplatform_realized_coverage"]
    assert {(s.labels["version"], s.labels["day"]) for s in coverage} == set(realized)
    # However long the history, one series per version and figure (and kind of rows).
    longer = families([scored_day(i, "1" if i < 200 else "2", 0.9) for i in range(365)])
    assert len(longer["mlplatform_realized_metric"]) == 2
    for name, samples in longer.items():
        assert len({s.labels["version"] for s in samples}) == len(samples) or name.endswith(
            "_rows"
        ), name


def test_the_newest_conclusive_comparison_of_each_pair_is_served():
    verdict = {"version": "3", "champion_version": "2", "metric": "roc_auc"}
    judged = {**verdict, "action": "keep", "difference": "-0.01", "difference_low": "-0.03",
              "difference_high": "0.01"}  # fmt: skip
    days = [
        scored_day(0, "2", 0.9, verdicts={"challenger": {**judged, "difference": "-0.02"}}),
        scored_day(1, "2", 0.9, verdicts={"challenger": judged}),
        # The newest day: too few positives yet.
        scored_day(2, "2", None, verdicts={"challenger": {**verdict, "action": "inconclusive"}}),
        scored_day(3, "2", None, verdicts={"previous_champion": {
            "version": "1", "champion_version": "2", "metric": "roc_auc",
            "action": "inconclusive"}}),
    ]  # fmt: skip
    served = families(days)
    actions = {(s.labels["role"], s.labels["day"], s.labels["action"])
               for s in served["mlplatform_live_verdict"]}  # fmt: skip
    assert actions == {("challenger", day_of(1), "keep"),
                       ("previous_champion", day_of(3), "inconclusive")}  # fmt: skip
    (difference,) = served["mlplatform_live_difference"]
    assert difference.value == -0.01 and difference.labels["day"] == day_of(1)
    assert [s.value for s in served["mlplatform_live_difference_low"]] == [-0.03]


def test_the_newest_judged_evaluation_skips_the_inconclusive():
    def evaluation(partition, passed, timestamp, inconclusive=False):
        return CheckEvaluation("r", "model_performance", "realized_vs_backtest", "WARN", passed,
                               partition, timestamp, None, inconclusive)  # fmt: skip

    chosen = newest_judged([
        evaluation(day_of(1), False, 10.0),
        # Day 1 judged again later with more outcomes: still failing.
        evaluation(day_of(1), False, 30.0),
        # Day 0 recomputed last, with its final outcomes: an older day.
        evaluation(day_of(0), True, 40.0),
        # Newer days with outcomes still to come.
        evaluation(day_of(2), False, 20.0, inconclusive=True),
        evaluation(day_of(3), False, 50.0, inconclusive=True),
    ])  # fmt: skip
    (only,) = chosen.values()
    assert (only.partition, only.timestamp, only.passed) == (day_of(1), 30.0, False)
    assert newest_judged([evaluation(day_of(3), False, 50.0, inconclusive=True)]) == {}


def test_the_decay_alert_fires_on_the_newest_judged_day_and_stays_quiet_otherwise(tmp_path):
    def series(check: str, partition: str, values: str) -> dict:
        return {
            "series": 'mlplatform_window_asset_check_judged_passed{asset="model_performance",'
            f'check="{check}",severity="WARN",partition="{partition}"}}',
            "values": values,
        }

    failing = {"asset": "model_performance", "check": "realized_vs_backtest", "severity": "WARN",
               "partition": "2026-03-10"}  # fmt: skip
    test = {
        "interval": "1m",
        "input_series": [
            series("realized_vs_backtest", "2026-03-10", "1x10 0x20"),
            series("realized_above_floor", "2026-03-10", "1x30"),
            # Not a decay check.
            series("estimate_matches_realized", "2026-03-10", "0x30"),
        ],
        "alert_rule_test": [
            alert_case("MlplatformRealizedPerformanceDecayed", "5m"),
            alert_case(
                "MlplatformRealizedPerformanceDecayed",
                "15m",
                [{**failing, "severity": "warning"}],
            ),
        ],
    }
    tests_file = tmp_path / "decay_tests.yml"
    tests_file.write_text(
        yaml.safe_dump(
            {
                "rule_files": [str(PROMETHEUS_DIR / "alert_rules.yml")],
                "evaluation_interval": "1m",
                "tests": [test],
            }
        )
    )
    result = run_promtool("test", "rules", str(tests_file))
    assert result.returncode == 0, result.stdout + result.stderr
