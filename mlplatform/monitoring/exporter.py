"""`mlplatform exporter`: Prometheus metrics read from the Dagster instance on every scrape.

Run counts and durations, step durations, queued and active runs, asset check outcomes, rows and
quarantine rate per partition and the age of each asset come from the instance's run and event
storage; the latest model metrics per alias come from the MLflow registry. A source that cannot be
read is reported by `mlplatform_exporter_source_up{source=...} 0`, not by a failed scrape.
"""

import argparse
import logging
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
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from mlplatform.cli import add_instance_argument, open_instance_for
from mlplatform.monitoring.history import (
    ACTIVE_STATUSES,
    FINISHED_STATUSES,
    QUEUED_STATUSES,
    CheckEvaluation,
    Materialization,
    RunEvents,
    RunRecord,
    cumulative_buckets,
)

log = logging.getLogger("mlplatform.exporter")

DEFAULT_PORT = 9464
# Seconds. Runs: a minute to past the protocol's 4-hour budget (14400 is a bound, so the alert on
# finished runs can tell "over budget" apart). Steps: from a second to the longest step limit.
RUN_DURATION_BUCKETS = (5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 28800)
STEP_DURATION_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200)
# Per-partition gauges keep the newest days only, so the number of series stays bounded.
DEFAULT_PARTITIONS_KEPT = 31
# Numeric materialization metadata served per partition: metadata key -> metric name.
PARTITION_VALUES = {
    "dagster/row_count": "mlplatform_partition_rows",
    "quarantined_rows": "mlplatform_partition_quarantined_rows",
    "quarantine_rate": "mlplatform_partition_quarantine_rate",
}


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
    """Everything one scrape reads; `None` for a source that could not be read."""

    runs: list[RunRecord] | None
    events: dict[str, RunEvents]
    last_materialized: dict[str, float]
    models: list[ModelAlias] | None
    now: float


def _label(value: str | None) -> str:
    return value if value is not None else ""


def run_metrics(runs: Sequence[RunRecord], now: float) -> Iterator[Metric]:
    jobs = sorted({r.job for r in runs})
    finished = CounterMetricFamily(
        "mlplatform_runs",
        "Finished runs in the instance, by job and final status (SUCCESS, FAILURE, CANCELED).",
        labels=["dagster_job", "status"],
    )
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for run in runs:
        counts[(run.job, run.status)] += 1
    # Every job gets every final status, at zero too: `increase()` sees the first failure.
    for job in jobs:
        for status in FINISHED_STATUSES:
            finished.add_metric([job, status], counts[(job, status)])
    yield finished

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

    durations = HistogramMetricFamily(
        "mlplatform_run_duration_seconds",
        "Duration of finished runs (start to end), by job and final status.",
        labels=["dagster_job", "status"],
    )
    by_label: dict[tuple[str, str], list[float]] = defaultdict(list)
    for run in runs:
        if run.finished and run.duration is not None:
            by_label[(run.job, run.status)].append(run.duration)
    for (job, status), values in sorted(by_label.items()):
        durations.add_metric([job, status], _buckets(values, RUN_DURATION_BUCKETS), sum(values))
    yield durations


def _buckets(values: Sequence[float], bounds: Sequence[float]) -> list[tuple[str, float]]:
    counts = cumulative_buckets(values, bounds)
    return [(str(float(b)), c) for b, c in zip(bounds, counts, strict=False)] + [
        ("+Inf", counts[-1])
    ]


def step_metrics(events: dict[str, RunEvents]) -> Iterator[Metric]:
    durations = HistogramMetricFamily(
        "mlplatform_step_duration_seconds",
        "Duration of finished steps (an asset, a multi-asset or a checks step), by job, step and "
        "status.",
        labels=["dagster_job", "step", "status"],
    )
    by_label: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    for run_events in events.values():
        for step in run_events.steps:
            if step.status in ("SUCCESS", "FAILURE") and step.duration is not None:
                by_label[(step.job, step.step, step.status)].append(step.duration)
    for labels, values in sorted(by_label.items()):
        durations.add_metric(list(labels), _buckets(values, STEP_DURATION_BUCKETS), sum(values))
    yield durations


def check_metrics(events: dict[str, RunEvents]) -> Iterator[Metric]:
    evaluations: list[CheckEvaluation] = [c for e in events.values() for c in e.checks]
    totals = CounterMetricFamily(
        "mlplatform_asset_check_evaluations",
        "Asset check evaluations, by asset, check, severity (ERROR blocks what follows) and "
        "outcome (passed, failed).",
        labels=["asset", "check", "severity", "outcome"],
    )
    counts: dict[tuple[str, str, str, str], int] = defaultdict(int)
    for c in evaluations:
        counts[(c.asset, c.check, c.severity, "passed" if c.passed else "failed")] += 1
    for asset, check, severity in sorted({(c.asset, c.check, c.severity) for c in evaluations}):
        for outcome in ("passed", "failed"):
            totals.add_metric(
                [asset, check, severity, outcome], counts[(asset, check, severity, outcome)]
            )
    yield totals

    latest: dict[tuple[str, str], CheckEvaluation] = {}
    for c in sorted(evaluations, key=lambda c: c.timestamp):
        latest[(c.asset, c.check)] = c
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


def partition_metrics(events: dict[str, RunEvents], partitions_kept: int) -> Iterator[Metric]:
    latest: dict[tuple[str, str], Materialization] = {}
    for m in sorted(
        (m for e in events.values() for m in e.materializations if m.partition is not None),
        key=lambda m: m.timestamp,
    ):
        latest[(m.asset, m.partition or "")] = m
    newest_partitions: dict[str, set[str]] = defaultdict(set)
    for asset in {asset for asset, _ in latest}:
        keys = sorted((p for a, p in latest if a == asset), reverse=True)[:partitions_kept]
        newest_partitions[asset] = set(keys)
    help_texts = {
        "mlplatform_partition_rows": "Rows in the latest materialization of each asset partition.",
        "mlplatform_partition_quarantined_rows": "Rows rejected into quarantine, per partition.",
        "mlplatform_partition_quarantine_rate": "Share of a partition's rows rejected (0..1).",
    }
    families = {
        name: GaugeMetricFamily(name, help_texts[name], labels=["asset", "partition"])
        for name in PARTITION_VALUES.values()
    }
    for (asset, partition), m in sorted(latest.items()):
        if partition not in newest_partitions[asset]:
            continue
        for key, name in PARTITION_VALUES.items():
            if key in m.values:
                families[name].add_metric([asset, partition], m.values[key])
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


def metric_families(
    snapshot: Snapshot, partitions_kept: int = DEFAULT_PARTITIONS_KEPT
) -> Iterator[Metric]:
    """Every metric of one scrape, from what was read (pure: no storage access here)."""
    up = GaugeMetricFamily(
        "mlplatform_exporter_source_up",
        "1 when the exporter could read the source on this scrape, 0 when it could not.",
        labels=["source"],
    )
    up.add_metric(["dagster"], 0.0 if snapshot.runs is None else 1.0)
    up.add_metric(["mlflow"], 0.0 if snapshot.models is None else 1.0)
    yield up
    if snapshot.runs is not None:
        yield from run_metrics(snapshot.runs, snapshot.now)
        yield from step_metrics(snapshot.events)
        yield from check_metrics(snapshot.events)
        yield from partition_metrics(snapshot.events, partitions_kept)
        yield from asset_age_metrics(snapshot.last_materialized, snapshot.now)
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


class PlatformCollector(Collector):
    """Reads the instance (and the MLflow registry) on every scrape."""

    def __init__(
        self,
        history,  # instance_reader.InstanceHistory
        models: Callable[[], list[ModelAlias]] | None = None,
        partitions_kept: int = DEFAULT_PARTITIONS_KEPT,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.history = history
        self.models = models
        self.partitions_kept = partitions_kept
        self.clock = clock
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

    def _read_instance(self) -> tuple[list[RunRecord], dict[str, RunEvents], dict[str, float]]:
        from mlplatform.monitoring.instance_reader import last_materializations

        runs = self.history.runs()
        return runs, self.history.events(runs), last_materializations(self.history.instance)

    def snapshot(self) -> Snapshot:
        instance = self._read("dagster", self._read_instance)
        runs, events, last_materialized = instance if instance is not None else (None, {}, {})
        models = self._read("mlflow", self.models) if self.models is not None else None
        return Snapshot(runs, events, last_materialized, models, self.clock())  # type: ignore[arg-type]

    def collect(self) -> Iterator[Metric]:
        started = time.monotonic()
        yield from metric_families(self.snapshot(), self.partitions_kept)
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
    collector = PlatformCollector(InstanceHistory(instance), models, args.partitions)
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
