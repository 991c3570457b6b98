"""`mlplatform exporter`: Prometheus metrics read from the Dagster instance on every scrape.

Run totals, queued and active runs, run and step durations, asset check outcomes, rows and
quarantine rate per partition and the age of each asset come from the instance's run and event
storage; the latest model metrics per alias come from the MLflow registry. A source that cannot be
read is reported by `mlplatform_exporter_source_up{source=...} 0`, not by a failed scrape.

A scrape costs what it shows, not the instance's history: run totals are counted by the run
storage; run durations cover the runs that ended in the last `--window-days` days and check
evaluations those made in them (served as gauges named `mlplatform_window_*`, from the run table and
the check index); step durations the newest `--step-runs` of those runs and the runs still going
(each run's own event log is read once: on SQLite that is the dear read); the per-partition gauges
the newest `--partitions` partitions; the latest check outcomes come from the check index.

After deployment, from the newest `--partitions` scored days of `model_performance`: per model
version (the champion that scored the day), its realized metrics and coverage on the newest day
that has a realized figure, its estimate on the newest day that has one, its backtest, realized
minus backtest, and the live comparisons of the versions in shadow; one day per version and figure,
so the series stay bounded however long the history (the day is a label; Prometheus keeps the
history). The decay checks' outcome is served per check as its newest judged day
(`mlplatform_window_asset_check_judged_passed`): a check too thin to judge is a warning that
judges nothing, as the performance_decay sensor reads it.
"""

import argparse
import logging
import math
import os
import signal
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from prometheus_client.core import (
    CollectorRegistry,
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from mlplatform.commands.instance_option import add_instance_argument, open_instance_for
from mlplatform.monitoring.history import (
    ACTIVE_STATUSES,
    FINISHED_STATUSES,
    QUEUED_STATUSES,
    CheckEvaluation,
    Materialization,
    RunRecord,
    ScoredDayPerformance,
    StepRecord,
    percentile,
)

log = logging.getLogger("mlplatform.exporter")

DEFAULT_PORT = 9464
# Per-partition gauges keep the newest days only, so the number of series stays bounded.
DEFAULT_PARTITIONS_KEPT = 31
# Durations and check outcomes cover the runs that ended in this many days (or are still going):
# the dashboard's widest range, and what a scrape reads from the runs' own event logs.
DEFAULT_WINDOW_DAYS = 7.0
# Step durations come from the newest this many finished runs in the window (and the runs going):
# a run's steps are only in its own event log, one read per run.
DEFAULT_STEP_RUNS = 20
# Quantiles served for step durations (1 is the longest).
STEP_QUANTILES = (0.5, 0.95, 1.0)
# Numeric materialization metadata served per partition: metadata key -> metric name.
PARTITION_VALUES = {
    "dagster/row_count": "mlplatform_partition_rows",
    "quarantined_rows": "mlplatform_partition_quarantined_rows",
    "quarantine_rate": "mlplatform_partition_quarantine_rate",
}
# The realized-performance asset: one partition per scored day.
PERFORMANCE_ASSET = "model_performance"
# Realized on the labelled rows of a scored day (core/realized_performance.py: PERFORMANCE_METRICS
# and the Brier score), each with a 95% interval; the estimate has the first four.
REALIZED_METRICS = ("roc_auc", "pr_auc", "precision", "recall", "brier")
ESTIMATED_METRICS = ("roc_auc", "pr_auc", "precision", "recall")
# Row counts behind a realized figure: metadata name -> `rows` label.
REALIZED_ROWS = {"scored_rows": "scored", "labelled_rows": "labelled", "positives": "positives"}


@dataclass(frozen=True)
class ModelAlias:
    """A registered model version holding an alias, with its test metrics."""

    model: str
    version: str
    alias: str
    created: float
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class Snapshot:
    """Everything one scrape reads; `runs` is None when the instance could not be read."""

    # The runs that ended in the window, and those queued or going whatever their age.
    runs: list[RunRecord] | None
    # (job, final status) -> finished runs in the whole instance.
    run_totals: dict[tuple[str, str], int]
    # The steps of the newest finished runs in the window and of the runs going.
    steps: list[StepRecord]
    # Check evaluations made in the window.
    checks: list[CheckEvaluation]
    # (asset, check) -> its latest evaluation, however old.
    latest_checks: dict[tuple[str, str], CheckEvaluation]
    # The latest materialization of each asset's newest partitions.
    partitions: list[Materialization]
    last_materialized: dict[str, float]
    models: list[ModelAlias] | None
    now: float
    window_start: float
    # The latest materialization of the newest scored days of model_performance.
    performance: list[ScoredDayPerformance] = field(default_factory=list)


def _label(value: str | None) -> str:
    return value if value is not None else ""


def _quantile(q: float) -> str:
    return f"{q:g}"


def run_metrics(
    runs: Sequence[RunRecord],
    totals: dict[tuple[str, str], int],
    now: float,
    window_start: float,
) -> Iterator[Metric]:
    finished = CounterMetricFamily(
        "mlplatform_runs",
        "Finished runs in the instance, by job and final status (SUCCESS, FAILURE, CANCELED).",
        labels=["dagster_job", "status"],
    )
    # Every job gets every final status, at zero too: `increase()` sees the first failure.
    for (job, status), count in sorted(totals.items()):
        finished.add_metric([job, status], count)
    yield finished

    jobs = sorted({job for job, _ in totals} | {r.job for r in runs})
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for run in runs:
        counts[(run.job, run.status)] += 1
    for name, statuses, text in (
        ("mlplatform_queued_runs", QUEUED_STATUSES, "Runs waiting to start (QUEUED, NOT_STARTED)."),
        ("mlplatform_active_runs", ACTIVE_STATUSES, "Runs going (STARTING, STARTED, CANCELING)."),
    ):
        gauge = GaugeMetricFamily(name, text, labels=["dagster_job"])
        for job in jobs:
            gauge.add_metric([job], sum(counts[(job, status)] for status in statuses))
        yield gauge

    active = GaugeMetricFamily(
        "mlplatform_active_run_duration_seconds",
        "Seconds since each active run started.",
        labels=["dagster_job", "run_id", "partition"],
    )
    for run in runs:
        if run.status in ACTIVE_STATUSES and run.started is not None:
            active.add_metric(
                [run.job, run.run_id, _label(run.partition)], max(0.0, now - run.started)
            )
    yield active

    ended = [r for r in runs if r.finished and ended_in_window(r, window_start)]
    window_counts = GaugeMetricFamily(
        "mlplatform_window_runs",
        "Finished runs that ended in the exporter's window (mlplatform_exporter_window_seconds), "
        "by job and final status.",
        labels=["dagster_job", "status"],
    )
    in_window: dict[tuple[str, str], int] = defaultdict(int)
    for run in ended:
        in_window[(run.job, run.status)] += 1
    for job in jobs:
        for status in FINISHED_STATUSES:
            window_counts.add_metric([job, status], in_window[(job, status)])
    yield window_counts

    labels = ["dagster_job", "status", "run_id", "partition"]
    durations = GaugeMetricFamily(
        "mlplatform_window_run_duration_seconds",
        "Start to end of each finished run that ended in the exporter's window.",
        labels=labels,
    )
    end_times = GaugeMetricFamily(
        "mlplatform_window_run_end_timestamp_seconds",
        "Unix time each finished run in the exporter's window ended.",
        labels=labels,
    )
    for run in sorted(ended, key=lambda r: (r.job, r.ended or 0.0)):
        values = [run.job, run.status, run.run_id, _label(run.partition)]
        if run.duration is not None:
            durations.add_metric(values, run.duration)
        if run.ended is not None:
            end_times.add_metric(values, run.ended)
    yield from (durations, end_times)


def ended_in_window(run: RunRecord, window_start: float) -> bool:
    """A finished run ended at or after the window's start (one canceled before it started has
    only its creation time)."""
    when = run.ended if run.ended is not None else run.created
    return when >= window_start


def step_metrics(steps: Sequence[StepRecord]) -> Iterator[Metric]:
    by_label: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    for step in steps:
        if step.status in ("SUCCESS", "FAILURE") and step.duration is not None:
            by_label[(step.job, step.step, step.status)].append(step.duration)
    labels = ["dagster_job", "step", "status"]
    counts = GaugeMetricFamily(
        "mlplatform_window_steps",
        "Finished steps (an asset, a multi-asset or a checks step) of the newest finished runs in "
        "the exporter's window (--step-runs) and of the runs going, by job, step and status.",
        labels=labels,
    )
    durations = GaugeMetricFamily(
        "mlplatform_window_step_duration_seconds",
        "Quantiles (0.5, 0.95 and 1, the longest) of the durations of the steps counted in "
        "mlplatform_window_steps, by job, step and status.",
        labels=[*labels, "quantile"],
    )
    for key, values in sorted(by_label.items()):
        counts.add_metric(list(key), len(values))
        for q in STEP_QUANTILES:
            durations.add_metric([*key, _quantile(q)], percentile(values, q))
    yield from (counts, durations)


def check_metrics(
    evaluations: Sequence[CheckEvaluation], latest: dict[tuple[str, str], CheckEvaluation]
) -> Iterator[Metric]:
    window = GaugeMetricFamily(
        "mlplatform_window_asset_check_evaluations",
        "Asset check evaluations made in the exporter's window, by asset, check, severity "
        "(ERROR blocks what follows) and outcome (passed, failed).",
        labels=["asset", "check", "severity", "outcome"],
    )
    counts: dict[tuple[str, str, str, str], int] = defaultdict(int)
    for c in evaluations:
        counts[(c.asset, c.check, c.severity, "passed" if c.passed else "failed")] += 1
    for asset, check, severity in sorted({(c.asset, c.check, c.severity) for c in evaluations}):
        for outcome in ("passed", "failed"):
            window.add_metric(
                [asset, check, severity, outcome], counts[(asset, check, severity, outcome)]
            )
    yield window

    passed = GaugeMetricFamily(
        "mlplatform_asset_check_passed",
        "The latest evaluation of each check: 1 passed, 0 failed (with its partition).",
        labels=["asset", "check", "severity", "partition"],
    )
    observed = GaugeMetricFamily(
        "mlplatform_asset_check_observed",
        "The value the latest evaluation of each check measured (e.g. the highest PSI for drift).",
        labels=["asset", "check"],
    )
    timestamp = GaugeMetricFamily(
        "mlplatform_asset_check_timestamp_seconds",
        "Unix time of the latest evaluation of each check.",
        labels=["asset", "check"],
    )
    for (asset, check), c in sorted(latest.items()):
        passed.add_metric([asset, check, c.severity, _label(c.partition)], 1.0 if c.passed else 0.0)
        timestamp.add_metric([asset, check], c.timestamp)
        if c.observed is not None:
            observed.add_metric([asset, check], c.observed)
    yield from (passed, observed, timestamp)

    judged = GaugeMetricFamily(
        "mlplatform_window_asset_check_judged_passed",
        "Of each check's evaluations in the exporter's window that judged (not inconclusive: too "
        "little evidence yet, e.g. outcomes still to come), the latest on the newest partition: "
        "1 passed, 0 failed.",
        labels=["asset", "check", "severity", "partition"],
    )
    for (asset, check), c in sorted(newest_judged(evaluations).items()):
        judged.add_metric([asset, check, c.severity, _label(c.partition)], 1.0 if c.passed else 0.0)
    yield judged


def newest_judged(
    evaluations: Sequence[CheckEvaluation],
) -> dict[tuple[str, str], CheckEvaluation]:
    """(asset, check) -> its evaluation that judged on the newest partition (the latest of that
    partition's): a scored day is judged again as its outcomes arrive, and the newest day that
    could be judged says where performance stands, as the performance_decay sensor reads it."""
    chosen: dict[tuple[str, str], CheckEvaluation] = {}
    for c in evaluations:
        if c.inconclusive:
            continue
        current = chosen.get((c.asset, c.check))
        if current is None or (_label(c.partition), c.timestamp) > (
            _label(current.partition),
            current.timestamp,
        ):
            chosen[(c.asset, c.check)] = c
    return chosen


def partition_metrics(latest: Sequence[Materialization]) -> Iterator[Metric]:
    """From the latest materialization of each asset partition served (the newest ones)."""
    help_texts = {
        "mlplatform_partition_rows": "Rows in the latest materialization of each asset partition.",
        "mlplatform_partition_quarantined_rows": "Rows rejected into quarantine, per partition.",
        "mlplatform_partition_quarantine_rate": "Share of a partition's rows rejected (0..1).",
    }
    families = {
        name: GaugeMetricFamily(name, help_texts[name], labels=["asset", "partition"])
        for name in PARTITION_VALUES.values()
    }
    for m in sorted(latest, key=lambda m: (m.asset, m.partition or "")):
        for key, name in PARTITION_VALUES.items():
            if key in m.values:
                families[name].add_metric([m.asset, _label(m.partition)], m.values[key])
    yield from families.values()


def asset_age_metrics(last_materialized: dict[str, float], now: float) -> Iterator[Metric]:
    timestamp = GaugeMetricFamily(
        "mlplatform_asset_last_materialization_timestamp_seconds",
        "Unix time of each asset's newest materialization.",
        labels=["asset"],
    )
    age = GaugeMetricFamily(
        "mlplatform_asset_seconds_since_last_materialization",
        "Seconds since each asset was last materialized.",
        labels=["asset"],
    )
    for asset, when in sorted(last_materialized.items()):
        timestamp.add_metric([asset], when)
        age.add_metric([asset], max(0.0, now - when))
    yield from (timestamp, age)


def model_metrics(models: Sequence[ModelAlias]) -> Iterator[Metric]:
    metric = GaugeMetricFamily(
        "mlplatform_model_metric",
        "Test metrics of the model version holding each alias (champion, challenger).",
        labels=["model", "version", "alias", "metric"],
    )
    created = GaugeMetricFamily(
        "mlplatform_model_version_created_timestamp_seconds",
        "Unix time the model version holding each alias was registered.",
        labels=["model", "version", "alias"],
    )
    for m in models:
        created.add_metric([m.model, m.version, m.alias], m.created)
        for name, value in sorted(m.metrics.items()):
            metric.add_metric([m.model, m.version, m.alias, name], value)
    yield from (metric, created)


def _newest(
    days: Sequence[ScoredDayPerformance], has: Callable[[ScoredDayPerformance], bool]
) -> dict[tuple[str, str], ScoredDayPerformance]:
    """(model, version) -> its newest scored day for which `has` holds (the latest materialization
    of that day)."""
    chosen: dict[tuple[str, str], ScoredDayPerformance] = {}
    for day in days:
        if not has(day):
            continue
        current = chosen.get((day.model, day.version))
        if current is None or (day.day, day.timestamp) > (current.day, current.timestamp):
            chosen[(day.model, day.version)] = day
    return chosen


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def performance_metrics(days: Sequence[ScoredDayPerformance]) -> Iterator[Metric]:
    """Per model version, from the newest scored days served: realized figures and coverage on
    its newest day with a realized figure, the estimate on its newest day with one, its backtest;
    the live comparisons on the newest day each pair of versions was compared with a result."""
    version_labels = ["model", "version", "day"]

    def interval_families(name: str, text: str, labels: list[str]) -> list[GaugeMetricFamily]:
        return [
            GaugeMetricFamily(name, text, labels=labels),
            GaugeMetricFamily(
                f"{name}_low", f"Lower end of the 95% interval of {name}.", labels=labels
            ),
            GaugeMetricFamily(
                f"{name}_high", f"Upper end of the 95% interval of {name}.", labels=labels
            ),
        ]

    realized = interval_families(
        "mlplatform_realized_metric",
        "Realized metric of each model version (as champion) on the rows of its newest scored day "
        "with a realized figure whose outcomes are known so far (`day`; the figure is recomputed "
        "as late outcomes arrive, and its interval narrows).",
        [*version_labels, "metric"],
    )
    coverage = interval_families(
        "mlplatform_realized_coverage",
        "Share of the rows scored on that day (as in mlplatform_realized_metric) whose outcome is "
        "known yet.",
        version_labels,
    )
    rows = GaugeMetricFamily(
        "mlplatform_realized_rows",
        "Rows behind mlplatform_realized_metric: scored that day, labelled (outcome known) and "
        "positive among the labelled.",
        labels=[*version_labels, "rows"],
    )
    backtest = GaugeMetricFamily(
        "mlplatform_backtest_metric",
        "Each model version's backtest: the metric on its test split at training, which its "
        "realized figure is held to (the realized_vs_backtest check).",
        labels=["model", "version", "metric"],
    )
    gap = GaugeMetricFamily(
        "mlplatform_realized_minus_backtest",
        "mlplatform_realized_metric minus mlplatform_backtest_metric, on the same day as the "
        "realized figure (the realized_vs_backtest check judges it with its interval).",
        labels=[*version_labels, "metric"],
    )
    estimated = interval_families(
        "mlplatform_estimated_metric",
        "Each model version's estimate from its calibrated probabilities alone (CBPE), on its "
        "newest scored day with an estimate: what the realized figure should be once the outcomes "
        "are in (it cannot see concept drift).",
        [*version_labels, "metric"],
    )
    verdict_labels = ["model", "day", "role", "version", "champion_version"]
    live = interval_families(
        "mlplatform_live_difference",
        "Live comparison on the same labelled rows of a scored day, newest day with a result per "
        "pair of versions: challenger - champion (role challenger) or champion - the version it "
        "replaced (role previous_champion).",
        [*verdict_labels, "metric"],
    )
    verdict = GaugeMetricFamily(
        "mlplatform_live_verdict",
        "1 for the action the live comparison called for on its newest day per pair of versions "
        "(promote, keep, rollback, inconclusive).",
        labels=[*verdict_labels, "action"],
    )

    def has_realized(d: ScoredDayPerformance) -> bool:
        return any(f"realized_{m}" in d.values for m in REALIZED_METRICS)

    def has_estimate(d: ScoredDayPerformance) -> bool:
        return any(f"estimated_{m}" in d.values for m in ESTIMATED_METRICS)

    def has_backtest(d: ScoredDayPerformance) -> bool:
        return any(k.startswith("backtest_") for k in d.values)

    suffixes = ("", "_low", "_high")
    for (model, version), d in sorted(_newest(days, has_realized).items()):
        labels = [model, version, d.day]
        for metric in REALIZED_METRICS:
            for family, suffix in zip(realized, suffixes, strict=True):
                if (value := d.values.get(f"realized_{metric}{suffix}")) is not None:
                    family.add_metric([*labels, metric], value)
            base = d.values.get(f"backtest_{metric}")
            if base is not None and f"realized_{metric}" in d.values:
                gap.add_metric([*labels, metric], d.values[f"realized_{metric}"] - base)
        for family, suffix in zip(coverage, suffixes, strict=True):
            if (value := d.values.get(f"realized_coverage{suffix}")) is not None:
                family.add_metric(labels, value)
        for key, name in REALIZED_ROWS.items():
            if (value := d.values.get(f"realized_{key}")) is not None:
                rows.add_metric([*labels, name], value)
    for (model, version), d in sorted(_newest(days, has_backtest).items()):
        for key, value in sorted(d.values.items()):
            if key.startswith("backtest_"):
                backtest.add_metric([model, version, key.removeprefix("backtest_")], value)
    for (model, version), d in sorted(_newest(days, has_estimate).items()):
        for metric in ESTIMATED_METRICS:
            for family, suffix in zip(estimated, suffixes, strict=True):
                if (value := d.values.get(f"estimated_{metric}{suffix}")) is not None:
                    family.add_metric([model, version, d.day, metric], value)

    # Per (model, role, version, champion version): the newest day whose comparison had a result,
    # else the newest day it was made (inconclusive: too few positives yet).
    comparisons: dict[tuple[str, str, str, str], tuple[bool, str, float, dict[str, str]]] = {}
    for d in days:
        for role, evidence in d.verdicts.items():
            key = (
                d.model,
                role,
                evidence.get("version", ""),
                evidence.get("champion_version", d.version),
            )
            rank = ("difference" in evidence, d.day, d.timestamp, evidence)
            if key not in comparisons or rank[:3] > comparisons[key][:3]:
                comparisons[key] = rank
    for (model, role, version, champion), (_, day, _, evidence) in sorted(comparisons.items()):
        labels = [model, day, role, version, champion]
        verdict.add_metric([*labels, evidence.get("action", "")], 1.0)
        for family, suffix in zip(live, suffixes, strict=True):
            if (value := _float(evidence.get(f"difference{suffix}"))) is not None:
                family.add_metric([*labels, evidence.get("metric", "")], value)

    yield from (*realized, *coverage, rows, backtest, gap, *estimated, *live, verdict)


def metric_families(snapshot: Snapshot) -> Iterator[Metric]:
    """Every metric of one scrape, from what was read (pure: no storage access here)."""
    up = GaugeMetricFamily(
        "mlplatform_exporter_source_up",
        "1 when the exporter could read the source on this scrape, 0 when it could not.",
        labels=["source"],
    )
    up.add_metric(["dagster"], 0.0 if snapshot.runs is None else 1.0)
    up.add_metric(["mlflow"], 0.0 if snapshot.models is None else 1.0)
    yield up
    window = GaugeMetricFamily(
        "mlplatform_exporter_window_seconds",
        "How far back the mlplatform_window_* metrics reach (--window-days).",
    )
    window.add_metric([], snapshot.now - snapshot.window_start)
    yield window
    if snapshot.runs is not None:
        yield from run_metrics(
            snapshot.runs, snapshot.run_totals, snapshot.now, snapshot.window_start
        )
        yield from step_metrics(snapshot.steps)
        yield from check_metrics(snapshot.checks, snapshot.latest_checks)
        yield from partition_metrics(snapshot.partitions)
        yield from asset_age_metrics(snapshot.last_materialized, snapshot.now)
        yield from performance_metrics(snapshot.performance)
    if snapshot.models is not None:
        yield from model_metrics(snapshot.models)


class MlflowRegistryReader:
    """The versions holding an alias in every registered model, with their test metrics."""

    def __init__(self, tracking_uri: str, registry_uri: str | None = None) -> None:
        self.tracking_uri = tracking_uri
        self.registry_uri = registry_uri or tracking_uri
        self._client = None

    def client(self):
        if self._client is None:
            # Imported here: mlflow costs seconds to import, and only this source needs it.
            from mlflow.tracking import MlflowClient

            self._client = MlflowClient(
                tracking_uri=self.tracking_uri, registry_uri=self.registry_uri
            )
        return self._client

    def __call__(self) -> list[ModelAlias]:
        client = self.client()
        found: list[ModelAlias] = []
        for model in client.search_registered_models(max_results=200):
            for alias, version in sorted((model.aliases or {}).items()):
                model_version = client.get_model_version(model.name, str(version))
                # Registration tags carry the test metrics (`test_<metric>`); older versions may
                # only have them on their MLflow run.
                metrics = _prefixed(model_version.tags, "test_")
                if not metrics and model_version.run_id:
                    metrics = _prefixed(client.get_run(model_version.run_id).data.metrics, "test_")
                found.append(
                    ModelAlias(
                        model=model.name,
                        version=str(model_version.version),
                        alias=alias,
                        created=model_version.creation_timestamp / 1000.0,
                        metrics=metrics,
                    )
                )
        return found


def _prefixed(values: dict, prefix: str) -> dict[str, float]:
    metrics = {}
    for key, value in values.items():
        if key.startswith(prefix):
            try:
                metrics[key[len(prefix) :]] = float(value)
            except (TypeError, ValueError):
                continue
    return metrics


@dataclass
class InstanceReading:
    """What one scrape read from the Dagster instance."""

    runs: list[RunRecord]
    run_totals: dict[tuple[str, str], int]
    steps: list[StepRecord]
    checks: list[CheckEvaluation]
    latest_checks: dict[tuple[str, str], CheckEvaluation]
    partitions: list[Materialization]
    last_materialized: dict[str, float]
    performance: list[ScoredDayPerformance]


def newest_finished(runs: Sequence[RunRecord], count: int) -> list[RunRecord]:
    finished = [r for r in runs if r.finished]
    return sorted(finished, key=lambda r: r.ended or r.created, reverse=True)[:count]


def check_sample_runs(runs: Sequence[RunRecord]) -> list[RunRecord]:
    """One run per job whose check evaluations name the job's checks: its newest successful run
    (a run that succeeded evaluated every check of its job), else its newest finished run."""
    chosen: dict[str, RunRecord] = {}
    for run in newest_finished(runs, len(runs)):
        current = chosen.get(run.job)
        if current is None or (current.status != "SUCCESS" and run.status == "SUCCESS"):
            chosen[run.job] = run
    return list(chosen.values())


class PlatformCollector(Collector):
    """Reads the instance (and the MLflow registry) on every scrape."""

    def __init__(
        self,
        history,  # instance_reader.InstanceHistory
        models: Callable[[], list[ModelAlias]] | None = None,
        partitions_kept: int = DEFAULT_PARTITIONS_KEPT,
        clock: Callable[[], float] = time.time,
        window_days: float = DEFAULT_WINDOW_DAYS,
        step_runs: int = DEFAULT_STEP_RUNS,
    ) -> None:
        if not (math.isfinite(window_days) and window_days > 0):
            raise ValueError(f"window_days must be a positive number of days, got {window_days}")
        if partitions_kept < 1:
            raise ValueError(f"partitions_kept must be at least 1, got {partitions_kept}")
        if step_runs < 0:
            raise ValueError(f"step_runs must be at least 0, got {step_runs}")
        self.history = history
        self.models = models
        self.partitions_kept = partitions_kept
        self.clock = clock
        self.window_seconds = window_days * 86400.0
        self.step_runs = step_runs
        # Jobs and checks seen by this process keep their series after their runs leave the
        # window: a job's zero counters and a check's latest outcome do not vanish.
        self._jobs: set[str] = set()
        self._checks: set[tuple[str, str]] = set()
        # Runs whose check evaluations were read for the names of the checks.
        self._sampled_runs: set[str] = set()
        self._down: set[str] = set()

    def describe(self) -> list[Metric]:
        # Registering must not read the instance; the names are only known from a scrape.
        return []

    def _read(self, source: str, read: Callable[[], object]) -> object | None:
        """`read()`, or None when it fails. The error is logged when the source goes down (with
        its traceback) and when it is back, not on every scrape in between."""
        try:
            value = read()
        except Exception:
            if source not in self._down:
                log.exception("cannot read the %s source; it is reported as down", source)
            self._down.add(source)
            return None
        if source in self._down:
            log.info("the %s source can be read again", source)
            self._down.discard(source)
        return value

    def _read_instance(self, window_start: float) -> InstanceReading:
        from mlplatform.monitoring import instance_reader as reader

        instance = self.history.instance
        by_id = {r.run_id: r for r in reader.read_runs_updated_since(instance, window_start)}
        by_id.update({r.run_id: r for r in reader.read_unfinished_runs(instance)})
        # A run updated in the window (a tag added) may have ended before it.
        runs = [r for r in by_id.values() if not r.finished or ended_in_window(r, window_start)]
        going = [r for r in runs if not r.finished]
        steps = self.history.steps([*newest_finished(runs, self.step_runs), *going])
        self._jobs |= {r.job for r in runs}
        # The check index is read by check: which checks there are comes from the checks this
        # process has seen, and one run of each job in the window.
        for run in check_sample_runs(runs):
            if run.run_id not in self._sampled_runs:
                evaluations = reader.read_check_evaluations(instance, run)
                self._checks |= {(c.asset, c.check) for c in evaluations}
                self._sampled_runs.add(run.run_id)
        checks, latest = reader.check_history(instance, self._checks, window_start)
        return InstanceReading(
            runs=runs,
            run_totals=reader.count_finished_runs(instance, self._jobs),
            steps=[step for run_steps in steps.values() for step in run_steps],
            checks=checks,
            latest_checks=latest,
            partitions=reader.newest_partition_materializations(instance, self.partitions_kept),
            last_materialized=reader.last_materializations(instance),
            performance=reader.newest_scored_day_performance(
                instance, self.partitions_kept, PERFORMANCE_ASSET
            ),
        )

    def snapshot(self) -> Snapshot:
        now = self.clock()
        window_start = now - self.window_seconds
        read = self._read("dagster", lambda: self._read_instance(window_start))
        models = self._read("mlflow", self.models) if self.models is not None else None
        if not isinstance(read, InstanceReading):
            return Snapshot(None, {}, [], [], {}, [], {}, models, now, window_start)  # type: ignore[arg-type]
        return Snapshot(
            runs=read.runs,
            run_totals=read.run_totals,
            steps=read.steps,
            checks=read.checks,
            latest_checks=read.latest_checks,
            partitions=read.partitions,
            last_materialized=read.last_materialized,
            models=models,  # type: ignore[arg-type]
            now=now,
            window_start=window_start,
            performance=read.performance,
        )

    def collect(self) -> Iterator[Metric]:
        started = time.monotonic()
        yield from metric_families(self.snapshot())
        took = GaugeMetricFamily(
            "mlplatform_exporter_scrape_duration_seconds",
            "How long this scrape took to read the sources.",
        )
        took.add_metric([], time.monotonic() - started)
        yield took


def build_collector_registry(collector: PlatformCollector) -> CollectorRegistry:
    """Prometheus' set of collectors to serve: here only the platform's."""
    metrics = CollectorRegistry(auto_describe=False)
    metrics.register(collector)
    return metrics


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (0.0.0.0 inside a container)"
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port to listen on")
    add_instance_argument(parser)
    parser.add_argument(
        "--partitions",
        type=int,
        default=DEFAULT_PARTITIONS_KEPT,
        help="newest partitions per asset served by the per-partition gauges",
    )
    parser.add_argument(
        "--window-days",
        type=float,
        default=DEFAULT_WINDOW_DAYS,
        help="runs that ended in this many days feed the mlplatform_window_* metrics (durations, "
        "check outcomes); what a scrape reads follows it, not the instance's history",
    )
    parser.add_argument(
        "--step-runs",
        type=int,
        default=DEFAULT_STEP_RUNS,
        help="step durations come from the newest N finished runs in the window (and the runs "
        "going): each is one read of that run's own event log",
    )
    parser.add_argument(
        "--no-mlflow",
        action="store_true",
        help="do not read the MLflow registry (no model metrics)",
    )
    parser.add_argument(
        "--once",
        action="store_true",
        help="print one scrape to stdout and exit, instead of serving",
    )


def run(args: argparse.Namespace) -> int:
    import sys

    from prometheus_client import start_http_server

    from mlplatform.monitoring.instance_reader import InstanceHistory

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    # MLflow's SQL store logs its schema checks at INFO on the first scrape: not news.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    if not 0 < args.port < 65536:
        print(f"mlplatform exporter: --port {args.port} is not a TCP port", file=sys.stderr)
        return 2
    if args.partitions < 1:
        print("mlplatform exporter: --partitions must be at least 1", file=sys.stderr)
        return 2
    if args.step_runs < 0:
        print("mlplatform exporter: --step-runs must be at least 0", file=sys.stderr)
        return 2
    if not (math.isfinite(args.window_days) and args.window_days > 0):
        print(f"mlplatform exporter: --window-days must be positive, got {args.window_days}",
              file=sys.stderr)  # fmt: skip
        return 2
    instance = open_instance_for("exporter", args)
    if instance is None:
        return 2
    models = None
    if not args.no_mlflow:
        # A registry that does not answer must not hold a scrape past Prometheus' timeout, and
        # MLflow's HTTP client retries for minutes by default. An operator's values are kept.
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
        from mlplatform.config.settings import SettingsError, load_settings

        try:
            # The settings as this process's environment has them (MLFLOW_TRACKING_URI...).
            mlflow_settings = load_settings().mlflow
        except SettingsError as error:
            print(f"mlplatform exporter: {error}", file=sys.stderr)
            return 2
        models = MlflowRegistryReader(mlflow_settings.tracking_uri, mlflow_settings.registry_uri)
    collector = PlatformCollector(
        InstanceHistory(instance),
        models,
        args.partitions,
        window_days=args.window_days,
        step_runs=args.step_runs,
    )
    if args.once:
        from prometheus_client import generate_latest

        sys.stdout.write(generate_latest(build_collector_registry(collector)).decode())
        instance.dispose()
        return 0
    try:
        server, _thread = start_http_server(
            args.port, args.host, build_collector_registry(collector)
        )
    except OSError as error:
        where = f"{args.host}:{args.port}"
        print(f"mlplatform exporter: cannot listen on {where}: {error}", file=sys.stderr)
        return 2
    log.info("serving metrics of %s on http://%s:%s/metrics", instance.root_directory, args.host,
             args.port)  # fmt: skip
    stop = threading.Event()
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, lambda *_: stop.set())
    # Woken every second: a signal handler only runs once the main thread is back in Python.
    while not stop.wait(1.0):
        pass
    server.shutdown()
    instance.dispose()
    return 0
