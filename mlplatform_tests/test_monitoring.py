"""Observability against an instance populated by real runs: two successes, a run stopped by a
failed blocking gate (and recovered by the next run of that day), and a run whose first step fails.
The exporter's numbers, the report's numbers and the shipped Prometheus and Grafana files are
checked against what those runs did."""

import json
import os
import re
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
import yaml
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from mlplatform.automation.jobs import training_pipeline
from mlplatform.definitions import ASSETS, CHECKS
from mlplatform.monitoring.exporter import PlatformCollector, build_collector_registry
from mlplatform.monitoring.history import percentile
from mlplatform.monitoring.instance_reader import InstanceHistory
from mlplatform.monitoring.registry_reader import MlflowRegistryReader
from mlplatform.monitoring.report import build_report
from mlplatform.resources.mlflow import CHAMPION
from mlplatform_tests.conftest import Platform, make_platform

MONITORING = Path(__file__).resolve().parents[1] / "mlplatform" / "monitoring"
JOB = "training_pipeline"
ROWS_PER_DAY = 5000


@dataclass
class History:
    home: Path
    instance: dg.DagsterInstance
    platform: Platform
    # (partition, what was done, result) in the order they ran.
    runs: list[tuple[str, str, dg.ExecuteInProcessResult]]

    def result(self, what: str) -> dg.ExecuteInProcessResult:
        return next(result for _, done, result in self.runs if done == what)

    def record(self, what: str):
        return self.instance.get_run_record_by_id(self.result(what).run_id)


def run_training_pipeline(instance, platform: Platform, day: str) -> dg.ExecuteInProcessResult:
    job = dg.Definitions(
        assets=ASSETS, asset_checks=CHECKS, jobs=[training_pipeline], resources=platform.resources
    ).resolve_job_def(JOB)
    return job.execute_in_process(partition_key=day, instance=instance, raise_on_error=False)


@pytest.fixture(scope="module")
def history(tmp_path_factory) -> Iterator[History]:
    root = tmp_path_factory.mktemp("monitoring")
    home = root / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        platform = make_platform(root, rows_per_day=ROWS_PER_DAY)
        runs = []
        for day, what, environ in (
            ("2026-03-02", "success", {}),
            # Too many rows break the contract: the quarantine_rate gate stops the run.
            ("2026-03-03", "gate failure", {"MLPLATFORM_GENERATOR_INCIDENT": "bad_rows"}),
            ("2026-03-03", "recovery", {}),
            # The landing folder does not exist: the first step fails, nothing else runs.
            ("2026-03-04", "step failure", {"MLPLATFORM_SOURCE_KIND": "files",
                                            "MLPLATFORM_SOURCE_PATH": str(root / "missing")}),
        ):  # fmt: skip
            result = run_training_pipeline(
                instance, make_platform(root, rows_per_day=ROWS_PER_DAY, **environ), day
            )
            runs.append((day, what, result))
        yield History(home, instance, platform, runs)


# The sample names each metric type is exposed under.
SAMPLE_SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_sum", "_count"),
    "gauge": ("",),
}


@dataclass
class Scrape:
    samples: dict[str, list]  # sample name -> samples
    # Every sample name the exporter declares, also for metrics with no sample right now (the
    # age of active runs, when no run is active).
    declared: set[str]
    started: float
    ended: float

    def value(self, name: str, **labels: str) -> float:
        found = [s.value for s in self.samples.get(name, []) if _matches(s.labels, labels)]
        assert len(found) == 1, f"{name}{labels}: {len(found)} samples"
        return found[0]

    def series(self, name: str, **labels: str) -> list:
        return [s for s in self.samples.get(name, []) if _matches(s.labels, labels)]


def _matches(sample_labels: dict, wanted: dict) -> bool:
    return all(sample_labels.get(k) == v for k, v in wanted.items())


def scrape(collector: PlatformCollector) -> Scrape:
    started = time.time()
    text = generate_latest(build_collector_registry(collector)).decode()
    ended = time.time()
    samples: dict[str, list] = defaultdict(list)
    declared: set[str] = set()
    for family in text_string_to_metric_families(text):
        declared |= {family.name + suffix for suffix in SAMPLE_SUFFIXES[family.type]}
        for sample in family.samples:
            samples[sample.name].append(sample)
    return Scrape(dict(samples), declared, started, ended)


@pytest.fixture(scope="module")
def exported(history) -> Scrape:
    collector = PlatformCollector(
        InstanceHistory(history.instance),
        MlflowRegistryReader(history.platform.settings.mlflow.tracking_uri),
    )
    return scrape(collector)


# Real runs of the whole pipeline (the module's `history`): slow.
@pytest.mark.slow
def test_the_runs_did_what_the_history_needs(history):
    outcomes = {what: result.success for _, what, result in history.runs}
    assert outcomes == {
        "success": True, "gate failure": False, "recovery": True, "step failure": False,
    }  # fmt: skip
    gate_failures = [
        e.asset_check_key.to_user_string()
        for e in history.result("gate failure").get_asset_check_evaluations()
        if not e.passed
    ]
    assert "validated_transactions:quarantine_rate" in gate_failures
    step_failures = [
        e.step_key for e in history.result("step failure").all_events if e.is_step_failure
    ]
    assert step_failures == ["raw_transactions"]


@pytest.mark.slow
def test_run_counts_and_durations_are_the_runs(history, exported):
    assert exported.value("mlplatform_runs_total", dagster_job=JOB, status="SUCCESS") == 2
    assert exported.value("mlplatform_runs_total", dagster_job=JOB, status="FAILURE") == 2
    assert exported.value("mlplatform_runs_total", dagster_job=JOB, status="CANCELED") == 0
    assert exported.value("mlplatform_active_runs", dagster_job=JOB) == 0
    assert exported.value("mlplatform_queued_runs", dagster_job=JOB) == 0
    assert exported.series("mlplatform_active_run_duration_seconds") == []

    # The four runs ended just now: all in the window, each its own series.
    for status, runs in (("SUCCESS", ("success", "recovery")),
                         ("FAILURE", ("gate failure", "step failure"))):  # fmt: skip
        assert exported.value("mlplatform_window_runs", dagster_job=JOB, status=status) == 2
        for what in runs:
            record = history.record(what)
            labels = {"dagster_job": JOB, "status": status, "run_id": record.dagster_run.run_id,
                      "partition": record.dagster_run.tags["dagster/partition"]}  # fmt: skip
            assert exported.value("mlplatform_window_run_duration_seconds", **labels) == (
                pytest.approx(record.end_time - record.start_time, rel=1e-9)
            )
            assert exported.value(
                "mlplatform_window_run_end_timestamp_seconds", **labels
            ) == pytest.approx(record.end_time, rel=1e-12)
    assert exported.value("mlplatform_window_runs", dagster_job=JOB, status="CANCELED") == 0
    assert len(exported.series("mlplatform_window_run_duration_seconds")) == 4
    assert exported.value("mlplatform_exporter_window_seconds") == 7 * 86400


@pytest.mark.slow
def test_step_durations_are_the_steps(history, exported):
    expected_counts: Counter = Counter()
    durations: dict[tuple[str, str], list[float]] = defaultdict(list)
    for _, _, result in history.runs:
        for event in result.all_events:
            if event.is_step_success or event.is_step_failure:
                status = "SUCCESS" if event.is_step_success else "FAILURE"
                expected_counts[(event.step_key, status)] += 1
        for stats in history.instance.get_run_step_stats(result.run_id):
            if stats.status.value in ("SUCCESS", "FAILURE"):
                durations[(stats.step_key, stats.status.value)].append(
                    stats.end_time - stats.start_time
                )
    served = {
        (s.labels["step"], s.labels["status"]): s.value
        for s in exported.series("mlplatform_window_steps", dagster_job=JOB)
    }
    assert served == dict(expected_counts)
    assert served[("trained_model", "SUCCESS")] == 2
    assert served[("raw_transactions", "FAILURE")] == 1
    assert served[("validated_transactions_checks", "FAILURE")] == 1
    for (step, status), values in durations.items():
        labels = {"dagster_job": JOB, "step": step, "status": status}
        name = "mlplatform_window_step_duration_seconds"
        assert exported.value(name, quantile="1", **labels) == pytest.approx(max(values))
        assert exported.value(name, quantile="0.5", **labels) == pytest.approx(
            percentile(values, 0.5)
        )


@pytest.mark.slow
def test_check_outcomes_are_the_evaluations(history, exported):
    expected: Counter = Counter()
    latest: dict[tuple[str, str], dg.AssetCheckEvaluation] = {}
    for _, _, result in history.runs:
        for e in result.get_asset_check_evaluations():
            key = (e.asset_key.to_user_string(), e.check_name)
            expected[(*key, e.severity.value, "passed" if e.passed else "failed")] += 1
            latest[key] = e
    served = {
        tuple(s.labels[k] for k in ("asset", "check", "severity", "outcome")): s.value
        for s in exported.series("mlplatform_window_asset_check_evaluations")
    }
    assert {k: v for k, v in served.items() if v} == dict(expected)
    assert served[("validated_transactions", "quarantine_rate", "ERROR", "failed")] == 1
    # Zero series exist too, so that increase() sees the first failure of a check.
    assert served[("validated_transactions", "quarantine_rate", "ERROR", "passed")] == 2

    for (asset, check), e in latest.items():
        assert exported.value("mlplatform_asset_check_passed", asset=asset, check=check) == float(
            e.passed
        )
    # The failed gate was recovered by the next run of that day: the latest evaluation passed.
    (quarantine_gate,) = exported.series(
        "mlplatform_asset_check_passed", asset="validated_transactions", check="quarantine_rate"
    )
    assert quarantine_gate.labels == {
        "asset": "validated_transactions", "check": "quarantine_rate", "severity": "ERROR",
        "partition": "2026-03-03",
    }  # fmt: skip
    assert quarantine_gate.value == 1
    drift = latest[("features", "drift")]
    assert exported.value(
        "mlplatform_asset_check_observed", asset="features", check="drift"
    ) == pytest.approx(drift.metadata["observed"].value)


def materialization(result: dg.ExecuteInProcessResult, asset: str):
    (event,) = [
        e
        for e in result.get_asset_materialization_events()
        if e.asset_key.to_user_string() == asset
    ]
    return event.materialization


@pytest.mark.slow
def test_rows_and_quarantine_rate_per_partition_are_the_latest_materializations(history, exported):
    for day, what in (("2026-03-02", "success"), ("2026-03-03", "recovery")):
        metadata = materialization(history.result(what), "validated_transactions").metadata
        labels = {"asset": "validated_transactions", "partition": day}
        assert exported.value("mlplatform_partition_rows", **labels) == (
            metadata["dagster/row_count"].value
        )
        assert exported.value("mlplatform_partition_quarantined_rows", **labels) == (
            metadata["quarantined_rows"].value
        )
        assert exported.value("mlplatform_partition_quarantine_rate", **labels) == (
            pytest.approx(metadata["quarantine_rate"].value)
        )
    # The bad day's first attempt quarantined far more; the served rate is the recovery's.
    bad = materialization(history.result("gate failure"), "validated_transactions").metadata
    assert bad["quarantine_rate"].value > 0.05
    assert exported.value(
        "mlplatform_partition_quarantine_rate", asset="validated_transactions",
        partition="2026-03-03",
    ) < 0.05  # fmt: skip
    # The day whose first step failed has no partition rows at all.
    assert exported.series("mlplatform_partition_rows", partition="2026-03-04") == []


@pytest.mark.slow
def test_time_since_last_materialization(history, exported):
    for asset in ("raw_transactions", "batch_scores"):
        event = history.instance.get_latest_materialization_event(dg.AssetKey(asset))
        timestamp = exported.value(
            "mlplatform_asset_last_materialization_timestamp_seconds", asset=asset
        )
        assert timestamp == pytest.approx(event.timestamp)
        age = exported.value("mlplatform_asset_seconds_since_last_materialization", asset=asset)
        # The age was measured during the scrape: timestamp + age falls inside the scrape.
        assert exported.started - 1e-3 <= timestamp + age <= exported.ended + 1e-3
    # batch_scores was last written by the recovery run, raw_transactions by it too.
    scores_event = history.instance.get_latest_materialization_event(dg.AssetKey("batch_scores"))
    assert scores_event.run_id == history.result("recovery").run_id


@pytest.mark.slow
def test_model_metrics_are_the_champions_registered_metrics(history, exported):
    client = history.platform.mlflow_client()
    model = "card_transactions_classifier"
    champion = client.get_model_version_by_alias(model, CHAMPION)
    registered = {
        result.run_id: materialization(result, "registered_model_version").metadata
        for what in ("success", "recovery")
        for result in [history.result(what)]
    }
    (metadata,) = [m for m in registered.values() if m["version"].value == str(champion.version)]
    for metric in ("accuracy", "roc_auc", "pr_auc", "recall"):
        assert exported.value(
            "mlplatform_model_metric", model=model, alias="champion", metric=metric
        ) == pytest.approx(metadata[f"test_{metric}"].value, abs=1e-9)
        assert exported.series(
            "mlplatform_model_metric", alias="champion", version=str(champion.version)
        )
    assert exported.value(
        "mlplatform_model_version_created_timestamp_seconds", model=model, alias="champion"
    ) == pytest.approx(champion.creation_timestamp / 1000)
    challenger = client.get_model_version_by_alias(model, "challenger")
    assert exported.series(
        "mlplatform_model_metric", alias="challenger", version=str(challenger.version)
    )
    assert exported.value("mlplatform_exporter_source_up", source="mlflow") == 1
    assert exported.value("mlplatform_exporter_source_up", source="dagster") == 1


# --- The window: what a scrape and the report read follows the days they show ---------------

DAY = 86400.0
NOW = 1_800_000_000.0  # a fixed clock: the scrapes compared must see the same "now"


def served_samples(collector: PlatformCollector) -> dict[tuple, float]:
    """(sample name, labels) -> value of one scrape, without the scrape's own timing."""
    text = generate_latest(build_collector_registry(collector)).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if family.name != "mlplatform_exporter_scrape_duration_seconds"
    }


def test_runs_before_the_window_change_neither_the_scrape_nor_the_report(tmp_path):
    """Two instances alike in their last days, one with forty to sixty days of older runs before
    them: their scrapes differ in nothing but the instance's run totals (which count every run),
    and their 7-day reports are equal. A run stuck for longer than the window is still going."""
    from mlplatform_tests.benchmarks.monitoring import (
        RunSpec,
        plan_history,
        reused_sqlite_engines,
        write_history,
    )

    # A run whose worker died ten days ago: never ended, still counted as going.
    stuck = RunSpec(JOB, "2026-01-05", NOW - 10 * DAY, "STARTED", stop_at=6)
    recent = [stuck, *plan_history(8, end=NOW - 3600, runs_per_day=3, seed=1)]
    old = plan_history(10, end=NOW - 40 * DAY, runs_per_day=0.5, seed=2)
    assert {spec.outcome for spec in old} >= {"SUCCESS", "FAILURE"}

    def served(with_old_runs: bool) -> tuple[dict, dict, int]:
        home = tmp_path / ("with_old_runs" if with_old_runs else "recent_only")
        home.mkdir()
        (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        with reused_sqlite_engines(), dg.DagsterInstance.from_config(str(home)) as instance:
            # Oldest first, as a real instance records them.
            if with_old_runs:
                write_history(instance, old, seed=2)
            write_history(instance, recent, seed=1)
        with dg.DagsterInstance.from_config(str(home)) as instance:
            collector = PlatformCollector(
                InstanceHistory(instance), partitions_kept=2, clock=lambda: NOW, window_days=7
            )
            week = build_report(instance, since=NOW - 7 * DAY, now=NOW).to_dict()
            return served_samples(collector), week, build_report(instance).runs_finished

    scrape, week, finished = served(with_old_runs=False)
    scrape_with_old, week_with_old, finished_with_old = served(with_old_runs=True)

    totals = "mlplatform_runs_total"
    assert {k: v for k, v in scrape_with_old.items() if k[0] != totals} == {
        k: v for k, v in scrape.items() if k[0] != totals
    }
    # The totals are the whole instance's: the old runs are in them, by job and final status.
    added = Counter((spec.job, spec.outcome) for spec in old)
    for (name, labels), value in scrape_with_old.items():
        if name == totals:
            job, status = dict(labels)["dagster_job"], dict(labels)["status"]
            assert value - scrape.get((name, labels), 0.0) == added[(job, status)], labels
    # Served for the jobs with a run in the window or going (and any this process has seen).
    served_jobs = {dict(labels)["dagster_job"] for n, labels in scrape_with_old if n == totals}
    assert served_jobs == {spec.job for spec in recent}
    assert sum(v for (n, _), v in scrape_with_old.items() if n == totals) == 8 + sum(
        1 for spec in old if spec.job in served_jobs
    )

    # What the window holds is served: the recent runs, the stuck one still going.
    assert sum(v for (n, _), v in scrape.items() if n == "mlplatform_window_runs") == 8
    assert scrape[("mlplatform_active_runs", (("dagster_job", JOB),))] == 1
    (stuck_for,) = [v for (n, _), v in scrape.items()
                    if n == "mlplatform_active_run_duration_seconds"]  # fmt: skip
    assert stuck_for > 9 * DAY
    assert any(n == "mlplatform_window_asset_check_evaluations" for n, _ in scrape)
    assert any(n == "mlplatform_partition_quarantine_rate" for n, _ in scrape)

    assert week_with_old == week
    assert week["runs_finished"] == 8 and week["steps"]
    # Without a window the report reads them all: the old runs were there to be seen.
    assert finished_with_old == finished + 10


def test_queued_and_started_runs_are_counted(tmp_path):
    from dagster._core.remote_origin import (
        InProcessCodeLocationOrigin,
        RemoteJobOrigin,
        RemoteRepositoryOrigin,
    )
    from dagster._core.types.loadable_target_origin import LoadableTargetOrigin

    # Run records as the run coordinator writes them (no daemon here to start them).
    origin = RemoteJobOrigin(
        RemoteRepositoryOrigin(
            InProcessCodeLocationOrigin(
                LoadableTargetOrigin(module_name="mlplatform.definitions", attribute="defs")
            ),
            "__repository__",
        ),
        JOB,
    )
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        for status in (dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.QUEUED,
                       dg.DagsterRunStatus.STARTED):  # fmt: skip
            instance.add_run(dg.DagsterRun(job_name=JOB, status=status, remote_job_origin=origin))
        served = scrape(PlatformCollector(InstanceHistory(instance)))
    assert served.value("mlplatform_queued_runs", dagster_job=JOB) == 2
    assert served.value("mlplatform_active_runs", dagster_job=JOB) == 1
    assert served.value("mlplatform_runs_total", dagster_job=JOB, status="SUCCESS") == 0


@pytest.mark.slow
def test_an_unreadable_registry_is_reported_and_the_rest_is_served(history, caplog):
    collector = PlatformCollector(
        InstanceHistory(history.instance), MlflowRegistryReader("nosuchscheme://registry")
    )
    with caplog.at_level("INFO", logger="mlplatform.exporter"):
        served = scrape(collector)
        scrape(collector)
    assert served.value("mlplatform_exporter_source_up", source="mlflow") == 0
    assert served.series("mlplatform_model_metric") == []
    assert served.value("mlplatform_runs_total", dagster_job=JOB, status="SUCCESS") == 2
    # Logged when it went down, not again on the next scrape.
    assert [r.getMessage() for r in caplog.records] == [
        "cannot read the mlflow source; it is reported as down"
    ]


@pytest.mark.slow
def test_report_measures_the_protocols_criteria(history):
    records = {what: history.record(what) for _, what, _ in history.runs}
    durations = sorted(r.end_time - r.start_time for r in records.values())
    report = build_report(history.instance)
    assert (report.runs_finished, report.runs_succeeded, report.runs_failed) == (4, 2, 2)
    assert report.success_rate == 0.5
    assert report.run_seconds_p50 == pytest.approx((durations[1] + durations[2]) / 2)
    assert report.run_seconds_max == pytest.approx(durations[-1])
    (recovery,) = report.recoveries
    assert (recovery.failed_run_id, recovery.recovered_run_id) == (
        history.result("gate failure").run_id, history.result("recovery").run_id,
    )  # fmt: skip
    expected_mttr = records["recovery"].end_time - records["gate failure"].end_time
    assert report.mean_time_to_recovery_seconds == pytest.approx(expected_mttr)
    (still_failing,) = report.open_incidents
    assert (still_failing.partition, still_failing.first_failed_run_id) == (
        "2026-03-04", history.result("step failure").run_id,
    )  # fmt: skip
    assert report.steps["trained_model"].count == 2
    assert report.steps["raw_transactions"].failures == 1
    met = {c.name: c.met for c in report.criteria}
    assert met == {"success rate": False, "p50 run time": True, "p95 run time": True,
                   "mean time to recovery": True}  # fmt: skip

    markdown = report.to_markdown()
    assert "| success rate | > 95% | 50.0% | **no** |" in markdown
    assert "2026-03-04" in markdown and history.result("step failure").run_id[:8] in markdown
    assert json.loads(report.to_json())["runs_failed"] == 2

    since_gate_failure = records["gate failure"].create_timestamp.timestamp()
    later = build_report(history.instance, since=since_gate_failure)
    assert later.runs_finished == 2  # created after: the recovery and the step failure
    assert later.recoveries == []  # its failure is before the window


@pytest.mark.slow
def test_report_command_prints_json_and_markdown(history, capsys):
    from mlplatform.cli import main

    assert main(["report", "--format", "json", "--dagster-home", str(history.home)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["runs_succeeded"] == 2 and printed["runs_failed"] == 2
    assert printed["mean_time_to_recovery_seconds"] == pytest.approx(
        printed["recoveries"][0]["seconds"]
    )
    assert main(["report", "--job", JOB, "--dagster-home", str(history.home)]) == 0
    assert "| mean time to recovery | < 30 min |" in capsys.readouterr().out


@pytest.mark.slow
def test_exporter_command_prints_one_scrape(history, capsys, monkeypatch):
    from mlplatform.cli import main

    monkeypatch.setenv("MLFLOW_TRACKING_URI", history.platform.settings.mlflow.tracking_uri)
    assert main(["exporter", "--once", "--dagster-home", str(history.home)]) == 0
    families = {f.name: f for f in text_string_to_metric_families(capsys.readouterr().out)}
    (successes,) = [
        s for s in families["mlplatform_runs"].samples if s.labels["status"] == "SUCCESS"
    ]
    assert successes.value == 2
    assert families["mlplatform_model_metric"].samples


@pytest.mark.slow
def test_a_registry_that_does_not_answer_does_not_hold_the_scrape(history):
    from mlplatform_tests.servers import free_port

    # Nothing listens there: MLflow's client would retry for minutes by default.
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{free_port()}",
        "DAGSTER_HOME": str(history.home),
    }
    env.pop("MLFLOW_HTTP_REQUEST_MAX_RETRIES", None)
    done = subprocess.run(
        [str(Path(sys.executable).with_name("mlplatform")), "exporter", "--once"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert 'mlplatform_exporter_source_up{source="mlflow"} 0.0' in done.stdout
    assert 'mlplatform_runs_total{dagster_job="training_pipeline",status="SUCCESS"} 2.0' in (
        done.stdout
    )
    assert "cannot read the mlflow source" in done.stderr


def test_report_and_exporter_name_a_missing_instance(monkeypatch, tmp_path, capsys):
    from mlplatform.cli import main

    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    assert main(["report"]) == 2
    assert "DAGSTER_HOME is not set" in capsys.readouterr().err
    assert main(["exporter", "--dagster-home", str(tmp_path / "nowhere")]) == 2
    assert "nowhere: not a folder" in capsys.readouterr().err


def promql_metric_names(expression: str) -> set[str]:
    return set(re.findall(r"\b(mlplatform_[a-z_]+)\b", expression))


@pytest.mark.slow
def test_every_dashboard_panel_queries_a_served_metric(exported):
    dashboard = json.loads((MONITORING / "grafana" / "dashboard.json").read_text())
    assert dashboard["panels"], "the dashboard has no panels"
    served = exported.declared
    for panel in dashboard["panels"]:
        expressions = [target["expr"] for target in panel["targets"]]
        assert expressions, f"panel {panel['title']!r} has no query"
        for expression in expressions:
            names = promql_metric_names(expression)
            assert names, f"panel {panel['title']!r}: {expression} names no mlplatform metric"
            assert names <= served, f"panel {panel['title']!r}: not served: {names - served}"


@pytest.mark.slow
def test_every_alert_queries_a_served_metric(exported):
    rules = yaml.safe_load((MONITORING / "prometheus" / "alert_rules.yml").read_text())
    alerts = {r["alert"]: r["expr"] for g in rules["groups"] for r in g["rules"]}
    for wanted in ("MlplatformRunFailed", "MlplatformSuccessRateBelowTarget",
                   "MlplatformRunTooLong", "MlplatformBlockingGateFailed",
                   "MlplatformChampionStale", "MlplatformDrift"):  # fmt: skip
        assert wanted in alerts
    served = exported.declared
    for name, expression in alerts.items():
        if name == "MlplatformExporterDown":  # Prometheus' own `up`
            continue
        names = promql_metric_names(expression)
        assert names and names <= served, f"{name}: {names - served} not served"


# --- The shipped Prometheus files, checked by Prometheus' own tools ---------------------------

PROMETHEUS_DIR = MONITORING / "prometheus"


def promtool() -> str:
    from mlplatform_tests.servers import require_executable

    return require_executable("promtool", "prometheus")


def run_promtool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [promtool(), *args], capture_output=True, text=True, timeout=60, cwd=PROMETHEUS_DIR
    )


def test_promtool_accepts_the_rules_and_the_scrape_config():
    rules = run_promtool("check", "rules", "alert_rules.yml")
    assert rules.returncode == 0, rules.stdout + rules.stderr
    assert "SUCCESS" in rules.stdout
    config = run_promtool("check", "config", "prometheus.yml")
    assert config.returncode == 0, config.stdout + config.stderr
    assert "1 rule files found" in config.stdout
    shipped = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    (scrape,) = shipped["scrape_configs"]
    assert scrape["static_configs"][0]["targets"] == ["metrics-exporter:9464"]


def expected_annotations(alert: str, labels: dict[str, str], **literal: str) -> dict[str, str]:
    """The alert's annotations with `{{ $labels.x }}` filled in; templates that format the value
    are given literally."""
    rules = yaml.safe_load((PROMETHEUS_DIR / "alert_rules.yml").read_text())
    (rule,) = [r for g in rules["groups"] for r in g["rules"] if r.get("alert") == alert]
    rendered = {}
    for key, template in rule["annotations"].items():
        text = re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels[m.group(1)], template)
        rendered[key] = literal.get(key, text)
        assert "{{" not in rendered[key], f"{alert}.{key}: give the rendered text literally"
    return rendered


def alert_case(alert, eval_time, fired_labels=None, **literal) -> dict:
    case = {"eval_time": eval_time, "alertname": alert, "exp_alerts": []}
    for labels in fired_labels or []:
        case["exp_alerts"].append(
            {
                "exp_labels": labels,
                "exp_annotations": expected_annotations(alert, labels, **literal),
            }
        )
    return case


def test_alerts_fire_on_exporter_series_and_stay_quiet_otherwise(tmp_path):
    job = {"dagster_job": JOB}
    gate = {"asset": "validated_transactions", "check": "quarantine_rate", "severity": "ERROR",
            "partition": "2026-03-03"}  # fmt: skip
    warning = {"asset": "trained_model", "check": "recall", "severity": "WARN",
               "partition": "2026-03-03"}  # fmt: skip
    drift = {"asset": "features", "check": "drift", "severity": "WARN", "partition": "2026-03-05"}
    model = {"model": "card_transactions_classifier", "version": "3"}
    active = {"dagster_job": JOB, "run_id": "r1", "partition": "2026-03-03"}
    # Finished runs in the exporter's window: over budget and ended 5 minutes into the test's
    # clock; over budget but ended two hours before it; within budget.
    over_budget = {"dagster_job": JOB, "status": "SUCCESS", "run_id": "r2",
                   "partition": "2026-03-02"}  # fmt: skip
    ended_long_ago = {**over_budget, "run_id": "r3"}
    within_budget = {**over_budget, "run_id": "r4"}

    def series(name: str, labels: dict[str, str], values: str) -> dict:
        inner = ",".join(f'{k}="{v}"' for k, v in labels.items())
        return {"series": f"{name}{{{inner}}}", "values": values}

    test = {
        "interval": "1m",
        "input_series": [
            # 9 successes and 1 failure a minute: 90% success.
            series("mlplatform_runs_total", {**job, "status": "SUCCESS"}, "0+9x30"),
            series("mlplatform_runs_total", {**job, "status": "FAILURE"}, "0+1x30"),
            series("mlplatform_active_run_duration_seconds", active, "14000+60x30"),
            series("mlplatform_window_run_duration_seconds", over_budget, "15000x90"),
            series("mlplatform_window_run_end_timestamp_seconds", over_budget, "300x90"),
            series("mlplatform_window_run_duration_seconds", ended_long_ago, "15000x30"),
            series("mlplatform_window_run_end_timestamp_seconds", ended_long_ago, "-7200x30"),
            series("mlplatform_window_run_duration_seconds", within_budget, "3600x30"),
            series("mlplatform_window_run_end_timestamp_seconds", within_budget, "300x30"),
            series("mlplatform_asset_check_passed", gate, "0x30"),
            series("mlplatform_asset_check_passed", warning, "0x30"),
            series("mlplatform_asset_check_passed", drift, "0x30"),
            # Registered long before the test's clock starts (time() is 0 at its start).
            series(
                "mlplatform_model_version_created_timestamp_seconds",
                {**model, "alias": "champion"},
                "-1300000x30",
            ),
            series(
                "mlplatform_model_version_created_timestamp_seconds",
                {**model, "alias": "challenger"},
                "-1300000x30",
            ),
        ],
        "alert_rule_test": [
            alert_case(
                "MlplatformRunFailed", "5m", [{**job, "status": "FAILURE", "severity": "critical"}]
            ),
            alert_case("MlplatformSuccessRateBelowTarget", "5m"),  # not yet: `for: 10m`
            alert_case(
                "MlplatformSuccessRateBelowTarget",
                "15m",
                [{**job, "severity": "warning"}],
                summary=f"{JOB} success rate 90% over the last day (target > 95%)",
            ),
            alert_case("MlplatformRunTooLong", "5m"),  # 14300 s: within the budget
            alert_case(
                "MlplatformRunTooLong",
                "10m",
                [{**active, "severity": "warning"}],
                summary=f"{JOB} run r1 has been running for 4h 3m 20s",
            ),
            alert_case(
                "MlplatformRunFinishedOverBudget", "10m", [{**over_budget, "severity": "warning"}]
            ),
            # More than an hour after it ended (the series still served), it no longer fires.
            alert_case("MlplatformRunFinishedOverBudget", "66m"),
            alert_case("MlplatformBlockingGateFailed", "1m", [{**gate, "severity": "critical"}]),
            alert_case("MlplatformDrift", "1m", [{**drift, "severity": "warning"}]),
            alert_case(
                "MlplatformChampionStale",
                "1m",
                [{**model, "alias": "champion", "severity": "warning"}],
            ),
        ],
    }
    tests_file = tmp_path / "alert_tests.yml"
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


# --- A real Prometheus scraping the real exporter ---------------------------------------------


@pytest.mark.slow
def test_prometheus_scrapes_the_exporter_and_evaluates_the_rules(history, tmp_path):
    from mlplatform_tests.conftest import platform_environment
    from mlplatform_tests.servers import (
        free_port,
        http_ok,
        require_executable,
        start_process,
        stop_process_group,
        wait_until,
    )

    prometheus = require_executable("prometheus", "prometheus")
    exporter_port, prometheus_port = free_port(), free_port()
    env = {
        **os.environ,
        **platform_environment(history.platform.root),
        "DAGSTER_HOME": str(history.home),
    }
    exporter_log = tmp_path / "exporter.log"
    exporter = start_process(
        [str(Path(sys.executable).with_name("mlplatform")), "exporter",
         "--host", "127.0.0.1", "--port", str(exporter_port)],
        exporter_log, env=env,
    )  # fmt: skip
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    config["rule_files"] = [str(PROMETHEUS_DIR / "alert_rules.yml")]
    config["scrape_configs"][0].update(scrape_timeout="1s")
    config["scrape_configs"][0]["static_configs"][0]["targets"] = [f"127.0.0.1:{exporter_port}"]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    prometheus_log = tmp_path / "prometheus.log"
    server = None
    try:
        wait_until(lambda: http_ok(f"http://127.0.0.1:{exporter_port}/metrics"), 60,
                   "the exporter", exporter, exporter_log)  # fmt: skip
        server = start_process(
            [prometheus, f"--config.file={tmp_path / 'prometheus.yml'}",
             f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{prometheus_port}"],
            prometheus_log,
        )  # fmt: skip
        api = f"http://127.0.0.1:{prometheus_port}/api/v1"

        def query(promql: str) -> list:
            url = f"{api}/query?" + urllib.parse.urlencode({"query": promql})
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    return json.load(response)["data"]["result"]
            except (urllib.error.URLError, ConnectionError, OSError):
                return []

        successes = wait_until(
            lambda: query(f'mlplatform_runs_total{{dagster_job="{JOB}",status="SUCCESS"}}'),
            90, "Prometheus to scrape the run counts", server, prometheus_log,
        )  # fmt: skip
        assert successes[0]["value"][1] == "2"
        # The Dagster job is its own label: Prometheus' `job` (the scrape job) stays untouched.
        assert successes[0]["metric"]["job"] == "mlplatform"
        assert "exported_job" not in successes[0]["metric"]
        (gate_failures,) = query(
            'mlplatform_window_asset_check_evaluations{check="quarantine_rate",outcome="failed"}'
        )
        assert gate_failures["value"][1] == "1"
        (target,) = query('up{job="mlplatform"}')
        assert target["value"][1] == "1"

        def rules_evaluated():
            with urllib.request.urlopen(f"{api}/rules", timeout=5) as response:
                groups = json.load(response)["data"]["groups"]
            rules = [r for g in groups for r in g["rules"]]
            return rules if rules and all(r.get("lastEvaluation", "").startswith("2") and
                                          not r["lastEvaluation"].startswith("0001")
                                          for r in rules) else None  # fmt: skip

        rules = wait_until(rules_evaluated, 60, "every rule to be evaluated", server,
                           prometheus_log)  # fmt: skip
        assert len(rules) == len(
            [r for g in yaml.safe_load((PROMETHEUS_DIR / "alert_rules.yml").read_text())["groups"]
             for r in g["rules"]]
        )  # fmt: skip
        assert {r["name"]: r["health"] for r in rules if r["health"] != "ok"} == {}

        # Every dashboard query is PromQL that Prometheus accepts.
        dashboard = json.loads((MONITORING / "grafana" / "dashboard.json").read_text())
        for panel in dashboard["panels"]:
            for target in panel["targets"]:
                url = f"{api}/query?" + urllib.parse.urlencode({"query": target["expr"]})
                with urllib.request.urlopen(url, timeout=5) as response:
                    assert json.load(response)["status"] == "success", target["expr"]
    finally:
        if server is not None:
            stop_process_group(server)
        stop_process_group(exporter)


# --- Structured logs ----------------------------------------------------------------------------


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def raw_transactions_job(tmp_path: Path) -> dg.JobDefinition:
    """One small asset in Definitions that offer the platform's loggers."""
    from mlplatform.assets.raw_transactions import raw_transactions
    from mlplatform.monitoring.logs import platform_loggers

    platform = make_platform(tmp_path, rows_per_day=300)
    return dg.Definitions(
        assets=[raw_transactions], resources=platform.resources, loggers=platform_loggers()
    ).resolve_implicit_global_asset_job_def()


def test_a_run_that_asks_for_the_json_logger_logs_json_with_run_asset_and_partition(
    tmp_path, capfd
):
    job = raw_transactions_job(tmp_path)
    with dg.instance_for_test() as instance:
        capfd.readouterr()
        result = job.execute_in_process(
            partition_key="2026-03-02",
            instance=instance,
            run_config={"loggers": {"json": {"config": {"log_level": "DEBUG"}}}},
        )
    lines = json_lines(capfd.readouterr().err)
    assert result.success and lines
    assert {line["run_id"] for line in lines} == {result.run_id}
    assert {line["partition"] for line in lines} == {"2026-03-02"}
    (materialized,) = [line for line in lines if line["event_type"] == "ASSET_MATERIALIZATION"]
    assert materialized["asset"] == "raw_transactions"
    # A step's own lines name the asset the step materializes.
    (started,) = [line for line in lines if line["event_type"] == "STEP_START"]
    assert (started["step_key"], started["asset"]) == ("raw_transactions", "raw_transactions")


def test_without_asking_a_run_keeps_dagsters_console_logger(tmp_path, capfd):
    job = raw_transactions_job(tmp_path)
    with dg.instance_for_test() as instance:
        capfd.readouterr()
        result = job.execute_in_process(partition_key="2026-03-02", instance=instance)
    err = capfd.readouterr().err
    assert result.success
    assert json_lines(err) == []
    assert f"{result.run_id} - " in err and "STEP_START" in err


def test_instance_wide_json_logs_from_dagster_yaml(tmp_path, capfd):
    """The production switch: dagster.yaml's python_logs handler with the JSON formatter, for
    every run of the instance whatever its run config."""
    from mlplatform.assets.raw_transactions import raw_transactions
    from mlplatform.monitoring.logs import __doc__ as logs_doc

    # The snippet shown in the module's documentation, as a user would paste it.
    snippet = logs_doc.split("dagster.yaml` (what production wants):", 1)[1].split("\n\n")[1]
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n" + textwrap.dedent(snippet))
    platform = make_platform(tmp_path, rows_per_day=300)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        capfd.readouterr()
        result = dg.materialize(
            [raw_transactions],
            partition_key="2026-03-02",
            resources=platform.resources,
            instance=instance,
        )
    err = capfd.readouterr().err
    lines = json_lines(err)
    assert result.success and lines
    assert {line["run_id"] for line in lines} == {result.run_id}
    (materialized,) = [line for line in lines if line["event_type"] == "ASSET_MATERIALIZATION"]
    assert (materialized["asset"], materialized["partition"]) == ("raw_transactions", "2026-03-02")

    # An asset's own message goes to the JSON stream and stays in the event log (a level above
    # INFO in python_logs would drop it from both).
    @dg.asset
    def says_hello(context: dg.AssetExecutionContext) -> None:
        context.log.info("hello from an asset")

    with dg.DagsterInstance.from_config(str(home)) as instance:
        capfd.readouterr()
        hello = dg.materialize([says_hello], instance=instance)
        stored = [record.user_message for record in instance.all_logs(hello.run_id)]
    said = [line["message"] for line in json_lines(capfd.readouterr().err)]
    assert "hello from an asset" in said
    assert "hello from an asset" in stored
