"""What one scrape read, as Prometheus metric families (pure: no storage access here): run
totals, queued and active runs, run and step durations, check outcomes, per-partition values, the
age of each asset, the registry's model metrics, and the scored days' performance
(performance_families.py)."""

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

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
from mlplatform.monitoring.performance_families import performance_metrics
from mlplatform.monitoring.registry_reader import ModelAlias

# Quantiles served for step durations (1 is the longest).
STEP_QUANTILES = (0.5, 0.95, 1.0)
# Numeric materialization metadata served per partition: metadata key -> metric name.
PARTITION_VALUES = {
    "dagster/row_count": "mlplatform_partition_rows",
    "quarantined_rows": "mlplatform_partition_quarantined_rows",
    "quarantine_rate": "mlplatform_partition_quarantine_rate",
}


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
