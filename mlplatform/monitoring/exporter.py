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

Here: the collector that reads the sources on each scrape, and the command. What was read becomes
metrics in metric_families.py and performance_families.py; registry_reader.py reads MLflow.
"""

import argparse
import logging
import math
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from prometheus_client.core import CollectorRegistry, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from mlplatform.commands.instance_option import add_instance_argument, open_instance_for
from mlplatform.monitoring.history import (
    CheckEvaluation,
    Materialization,
    RunRecord,
    ScoredDayPerformance,
    StepRecord,
)
from mlplatform.monitoring.metric_families import Snapshot, ended_in_window, metric_families
from mlplatform.monitoring.performance_families import PERFORMANCE_ASSET
from mlplatform.monitoring.registry_reader import MlflowRegistryReader, ModelAlias

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
