"""How long a cold exporter scrape and the 7-day report take as the instance's history grows.

    python -m mlplatform_tests.benchmarks.monitoring --runs 63,500,2000 --repeats 3
    python -m mlplatform_tests.benchmarks.monitoring --build-only DIR   # write the instances once
    python -m mlplatform_tests.benchmarks.monitoring --built DIR --before CHECKOUT

One history of platform-like runs (about 10 a day, ending now) is written oldest first into a
SQLite instance (the storage `make dev` uses) through the instance's storage and event APIs, with
their historical timestamps: the jobs' real steps and partitions, successes, gate failures, step
failures and cancellations with a retry of the day, step events, materializations with the
metadata the exporter reads and check evaluations. When it holds 63, 500 (...) runs, the instance is
copied: the instance as it was then, measured with its clock. Writing 2,000 runs took 45 minutes on
the shared 2-core machine. Each measurement runs in a new process (a cold instance object, nothing
cached) on a copy on disk: one scrape of the exporter's collector (the MLflow registry left out)
and `build_report(..., since=now - 7 days)`, wall and CPU time; `--before` measures another
checkout's mlplatform package the same way. Writes JSON and a Markdown table into results/.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"
DAY = 86400.0

# The platform's jobs as their runs show them: each step, what it materializes and which checks it
# evaluates (check name, severity), in execution order.
RAW_CHECKS = (("schema_matches_contract", "ERROR"), ("not_empty", "ERROR"), ("fresh", "WARN"),
              ("volume_in_band", "WARN"))  # fmt: skip
VALIDATED_CHECKS = (("quarantine_rate", "ERROR"), ("unique_ids", "ERROR"), ("null_rate", "ERROR"),
                    ("value_ranges", "ERROR"), ("label_rate", "WARN"))  # fmt: skip
FEATURE_CHECKS = (("finite_values", "ERROR"), ("no_target_leakage", "ERROR"), ("drift", "WARN"))
MODEL_CHECKS = (("roc_auc", "ERROR"), ("pr_auc", "ERROR"), ("not_worse_than_champion", "ERROR"),
                ("recall", "WARN"), ("accuracy", "WARN"))  # fmt: skip
REGISTERED_CHECKS = (("reproduces_test_metrics", "ERROR"), ("signature_matches_features", "ERROR"))


@dataclass(frozen=True)
class Step:
    key: str
    assets: tuple[str, ...] = ()
    # The asset its checks are on, and the checks.
    checked: str | None = None
    checks: tuple[tuple[str, str], ...] = ()
    # Typical seconds, low and high.
    seconds: tuple[float, float] = (1.0, 3.0)


TRAINING_STEPS = (
    Step("raw_transactions", ("raw_transactions",), seconds=(3, 9)),
    Step("raw_transactions_checks", checked="raw_transactions", checks=RAW_CHECKS),
    Step("validated_transactions", ("validated_transactions", "quarantined_transactions"),
         seconds=(5, 15)),
    Step("validated_transactions_checks", checked="validated_transactions",
         checks=VALIDATED_CHECKS),
    Step("features", ("features",), seconds=(6, 20)),
    Step("features_checks", checked="features", checks=FEATURE_CHECKS, seconds=(2, 6)),
    Step("trained_model", ("trained_model",), seconds=(60, 600)),
    Step("trained_model_checks", checked="trained_model", checks=MODEL_CHECKS),
    Step("registered_model_version", ("registered_model_version",),
         checked="registered_model_version", checks=REGISTERED_CHECKS, seconds=(4, 12)),
    Step("batch_scores", ("batch_scores",), seconds=(5, 30)),
)  # fmt: skip
JOBS = {
    "training_pipeline": TRAINING_STEPS,
    "retraining": TRAINING_STEPS[4:],
    "__ASSET_JOB": TRAINING_STEPS[:2],
}


@dataclass(frozen=True)
class RunSpec:
    job: str
    partition: str
    created: float
    # SUCCESS; FAILURE at a failed blocking gate or a failed step; CANCELED; STARTED (never
    # ended: going, or its worker died).
    outcome: str
    # The step that fails (a failed gate fails its checks step), or where a cancel lands.
    stop_at: int | None = None
    failed_check: str | None = None


def plan_history(
    runs: int, end: float, runs_per_day: float = 10.0, seed: int = 16
) -> list[RunSpec]:
    """`runs` runs over the days before `end`, oldest first: mostly the daily training run of the
    day before, some retraining and single-asset runs, a backfill of older days now and then; 10%
    stopped by a gate, 4% by a failed step (each followed by a retry of that day), 2% canceled."""
    rng = random.Random(seed)
    start = end - runs / runs_per_day * DAY
    specs: list[RunSpec] = []
    created = start
    while len(specs) < runs:
        created += rng.expovariate(runs_per_day / DAY)
        if created >= end:
            created = end - rng.uniform(60, 3600)
        day = dt.datetime.fromtimestamp(created, tz=dt.UTC).date() - dt.timedelta(days=1)
        if rng.random() < 0.05:
            day -= dt.timedelta(days=rng.randint(1, 60))  # a backfilled day
        job = rng.choices(list(JOBS), weights=(80, 15, 5))[0]
        steps = JOBS[job]
        draw = rng.random()
        if draw < 0.10 and job != "__ASSET_JOB":
            gated = [i for i, s in enumerate(steps) if s.checks and s.key.endswith("_checks")]
            stop_at = rng.choice(gated)
            failed = next(c for c, severity in steps[stop_at].checks if severity == "ERROR")
            spec = RunSpec(job, day.isoformat(), created, "FAILURE", stop_at, failed)
        elif draw < 0.14:
            spec = RunSpec(job, day.isoformat(), created, "FAILURE", rng.randrange(len(steps)))
        elif draw < 0.16:
            spec = RunSpec(job, day.isoformat(), created, "CANCELED", rng.randrange(len(steps)))
        else:
            spec = RunSpec(job, day.isoformat(), created, "SUCCESS")
        specs.append(spec)
        if spec.outcome != "SUCCESS" and len(specs) < runs:
            # The retry of that day, some minutes later.
            created = min(created + rng.uniform(300, 3600), end - 1)
            specs.append(RunSpec(job, spec.partition, created, "SUCCESS"))
    return sorted(specs[:runs], key=lambda s: s.created)


def _metadata(asset: str, rng: random.Random, bad: bool) -> dict[str, Any]:
    rows = rng.randint(45000, 55000)
    if asset == "raw_transactions":
        return {"dagster/row_count": rows, "source": "generator"}
    if asset == "validated_transactions":
        rate = rng.uniform(0.06, 0.2) if bad else rng.uniform(0.001, 0.01)
        quarantined = int(rows * rate)
        return {"dagster/row_count": rows - quarantined, "quarantined_rows": quarantined,
                "quarantine_rate": quarantined / rows}  # fmt: skip
    if asset == "quarantined_transactions":
        return {"dagster/row_count": rng.randint(50, 500)}
    if asset == "features":
        return {"dagster/row_count": rows * 7, "window_days_found": 7}
    if asset == "trained_model":
        return {"roc_auc": rng.uniform(0.85, 0.95), "pr_auc": rng.uniform(0.3, 0.6)}
    if asset == "registered_model_version":
        return {"version": str(rng.randint(1, 200)), "promoted": rng.random() < 0.3}
    return {"dagster/row_count": rows}


def write_run(instance, spec: RunSpec, rng: random.Random) -> str:
    """One run as the platform's would leave it in storage, with `spec.created`'s timestamps."""
    import dagster as dg
    from dagster._core.events import (
        DagsterEvent,
        DagsterEventType,
        JobFailureData,
        StepMaterializationData,
    )
    from dagster._core.execution.plan.objects import StepFailureData, StepSuccessData
    from dagster._utils.error import SerializableErrorInfo

    run_id = str(uuid.UUID(int=rng.getrandbits(128)))
    partition = spec.partition
    instance.run_storage.add_historical_run(
        dg.DagsterRun(job_name=spec.job, run_id=run_id, status=dg.DagsterRunStatus.NOT_STARTED,
                      tags={"dagster/partition": partition}),
        dt.datetime.fromtimestamp(spec.created, tz=dt.UTC),
    )  # fmt: skip
    clock = spec.created + rng.uniform(2, 30)

    def emit(event_type: DagsterEventType, step: str | None = None, data=None, at=None) -> None:
        event = DagsterEvent(event_type.value, spec.job, event_specific_data=data, step_key=step,
                             step_kind_value="COMPUTE" if step else None)  # fmt: skip
        instance.handle_new_event(
            dg.EventLogEntry(error_info=None, level="DEBUG", user_message="", run_id=run_id,
                             timestamp=at if at is not None else clock, step_key=step,
                             job_name=spec.job, dagster_event=event)
        )  # fmt: skip

    steps = JOBS[spec.job]
    emit(DagsterEventType.RUN_START)
    error = SerializableErrorInfo("Failure: stopped here", [], "Failure")
    for index, step in enumerate(steps):
        if spec.stop_at is not None and index > spec.stop_at:
            break
        emit(DagsterEventType.STEP_START, step.key)
        began = clock
        clock += rng.uniform(*step.seconds)
        if spec.outcome in ("CANCELED", "STARTED") and index == spec.stop_at:
            break
        fails_here = spec.outcome == "FAILURE" and index == spec.stop_at
        step_fails = fails_here and spec.failed_check is None
        if not step_fails:
            for asset in step.assets:
                bad = spec.failed_check == "quarantine_rate" and asset == "validated_transactions"
                materialization = dg.AssetMaterialization(
                    asset, partition=partition, metadata=_metadata(asset, rng, bad)
                )
                emit(DagsterEventType.ASSET_MATERIALIZATION,
                     step.key, StepMaterializationData(materialization))  # fmt: skip
            for check, severity in step.checks:
                passed = check != spec.failed_check or not fails_here
                emit(DagsterEventType.ASSET_CHECK_EVALUATION, step.key,
                     dg.AssetCheckEvaluation(
                         dg.AssetKey(step.checked), check, passed,
                         metadata={"observed": rng.uniform(0, 1), "threshold": 0.5},
                         severity=dg.AssetCheckSeverity(severity),
                         partition=partition))  # fmt: skip
        if fails_here:
            emit(DagsterEventType.STEP_FAILURE, step.key, StepFailureData(error, None))
        else:
            emit(DagsterEventType.STEP_SUCCESS, step.key,
                 StepSuccessData(duration_ms=(clock - began) * 1000.0))  # fmt: skip
        clock += rng.uniform(0.2, 2.0)
    if spec.outcome == "SUCCESS":
        emit(DagsterEventType.RUN_SUCCESS)
    elif spec.outcome == "STARTED":
        pass  # still going (or its worker died): no end event
    elif spec.outcome == "CANCELED":
        emit(DagsterEventType.RUN_CANCELED)
    else:
        emit(DagsterEventType.RUN_FAILURE, data=JobFailureData(error=error))
    return run_id


def write_history(instance, specs: Sequence[RunSpec], seed: int = 16) -> list[str]:
    rng = random.Random(seed)
    return [write_run(instance, spec, rng) for spec in specs]


@contextlib.contextmanager
def reused_sqlite_engines():
    """Dagster's SQLite storages create an SQLAlchemy engine (and compile every statement anew)
    for each event they write; reusing one engine per database file makes writing a history of
    100,000 events take minutes instead of an hour. What is written is the same."""
    from dagster._core.storage.event_log.sqlite import sqlite_event_log
    from dagster._core.storage.runs.sqlite import sqlite_run_storage

    engines: dict[tuple, Any] = {}
    originals = {m: m.create_engine for m in (sqlite_event_log, sqlite_run_storage)}

    def reused(original):
        def create_engine(url, **kwargs):
            key = (str(url), tuple(sorted((k, repr(v)) for k, v in kwargs.items())))
            if key not in engines:
                engines[key] = original(url, **kwargs)
            return engines[key]

        return create_engine

    for module, original in originals.items():
        module.create_engine = reused(original)
    try:
        yield
    finally:
        for module, original in originals.items():
            module.create_engine = original
        for engine in engines.values():
            engine.dispose()


def build_instances(folder: Path, sizes: Sequence[int], end: float) -> dict[int, dict[str, Any]]:
    """One history of max(sizes) runs ending at `end`, written oldest first into a SQLite
    instance; when `n` runs are written (n in sizes) the instance is copied to folder/<n>, its
    clock the end of its newest run: the instance as it was when it held n runs."""
    import dagster as dg

    sizes = sorted(set(sizes))
    specs = plan_history(sizes[-1], end)
    home = folder / "building"
    home.mkdir(parents=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    built: dict[int, dict[str, Any]] = {}
    rng = random.Random(16)
    began = time.monotonic()
    with reused_sqlite_engines(), dg.DagsterInstance.from_config(str(home)) as instance:
        for written, spec in enumerate(specs, start=1):
            write_run(instance, spec, rng)
            if written in sizes:
                newest = instance.get_run_records(limit=1, order_by="update_timestamp")[0]
                meta = {
                    "runs": written,
                    "now": max(newest.update_timestamp.timestamp(), spec.created) + 1.0,
                    "first_run_created": specs[0].created,
                    "write_seconds": round(time.monotonic() - began, 1),
                }
                shutil.copytree(home, folder / str(written) / "home")
                (folder / str(written) / "meta.json").write_text(json.dumps(meta))
                built[written] = meta
                print(f"{written} runs written ({meta['write_seconds']:.0f} s)", flush=True)
    shutil.rmtree(home)
    return built


# One measurement in a new process: a cold instance object, nothing read before.
MEASURE = """
import json, sys, time
began = time.perf_counter()
import dagster as dg
from mlplatform.monitoring.instance_reader import InstanceHistory
imported = time.perf_counter()
home, now, what = sys.argv[1], float(sys.argv[2]), sys.argv[3]
with dg.DagsterInstance.from_config(home) as instance:
    opened = time.perf_counter()
    if what == "scrape":
        from prometheus_client import generate_latest
        from mlplatform.monitoring.exporter import PlatformCollector, build_collector_registry
        collector = PlatformCollector(InstanceHistory(instance), clock=lambda: now)
        started, cpu_started = time.perf_counter(), time.process_time()
        text = generate_latest(build_collector_registry(collector)).decode()
        detail = {"samples": sum(1 for line in text.splitlines() if not line.startswith("#"))}
    else:
        from mlplatform.monitoring.report import build_report
        started, cpu_started = time.perf_counter(), time.process_time()
        report = build_report(instance, since=now - 7 * 86400, now=now)
        detail = {"runs_finished": report.runs_finished, "steps": len(report.steps)}
    done, cpu_done = time.perf_counter(), time.process_time()
print(json.dumps({"seconds": done - started, "cpu_seconds": cpu_done - cpu_started,
                  "open_seconds": opened - imported,
                  "import_seconds": imported - began, **detail}))
"""


def measure(home: Path, now: float, what: str, code: Path | None) -> dict[str, Any]:
    """One cold scrape or 7-day report of the instance in `home`, in a new process; `code` is a
    checkout whose mlplatform package is measured instead of this one."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    if code is not None:
        env["PYTHONPATH"] = str(code)
    load_before = os.getloadavg()[0]
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, str(home), repr(now), what],
        env=env, capture_output=True, text=True, check=True, cwd=code or Path.cwd(),
    )  # fmt: skip
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["load_average_1m"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    return result


def machine() -> dict[str, Any]:
    import dagster

    return {
        "python": platform.python_version(),
        "dagster": dagster.__version__,
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "load_average_1m_5m_15m_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def benchmark(
    folder: Path,
    sizes: Sequence[int],
    repeats: int,
    before: Path | None,
    before_sizes: Sequence[int] | None = None,
) -> dict:
    rows = []
    for runs in sorted(sizes):
        meta = json.loads((folder / str(runs) / "meta.json").read_text())
        # Measured from a copy on disk, as `make dev` keeps its instance.
        with tempfile.TemporaryDirectory() as scratch:
            home = Path(scratch) / "home"
            shutil.copytree(folder / str(runs) / "home", home)
            for code, label, times in ((None, "after", repeats), (before, "before", 1)):
                if label == "before" and (
                    code is None or (before_sizes is not None and runs not in before_sizes)
                ):
                    continue
                for what in ("scrape", "report"):
                    samples = [measure(home, meta["now"], what, code) for _ in range(times)]
                    seconds = [s["seconds"] for s in samples]
                    cpu = [s["cpu_seconds"] for s in samples]
                    rows.append({
                        "runs": runs, "code": label, "what": what,
                        "median_seconds": round(statistics.median(seconds), 3),
                        "min_seconds": round(min(seconds), 3),
                        "max_seconds": round(max(seconds), 3),
                        "median_cpu_seconds": round(statistics.median(cpu), 3),
                        "samples": samples,
                    })  # fmt: skip
                    print(f"{runs} runs, {label}, {what}: {statistics.median(seconds):.2f} s, "
                          f"CPU {statistics.median(cpu):.2f} s "
                          f"(load {samples[-1]['load_average_1m']})", flush=True)  # fmt: skip
    return {"machine": machine(), "instances": {
        str(r): json.loads((folder / str(r) / "meta.json").read_text()) for r in sizes
    }, "results": rows}  # fmt: skip


def markdown(result: dict) -> str:
    lines = [
        "# Monitoring cost against the instance's history",
        "",
        "Cold measurements, each in a new process (`python -m mlplatform_tests.benchmarks."
        "monitoring`): one scrape of the exporter's collector (MLflow left out) and the 7-day "
        "`build_report`, on SQLite instances holding the given number of platform-like runs "
        "(about 10 a day, so 7 days hold about 70 runs). `before` is the code before issue 16. "
        "CPU s is the measuring process's CPU time: on a loaded machine, closer to what the "
        "work costs than the wall time.",
        "",
        "| runs in the instance | code | what | median s | min s | max s | median CPU s | repeats "
        "| load (1 min) |",
        "| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for row in result["results"]:
        loads = ", ".join(str(s["load_average_1m"][0]) for s in row["samples"])
        lines.append(
            f"| {row['runs']} | {row['code']} | {row['what']} | {row['median_seconds']:.2f} | "
            f"{row['min_seconds']:.2f} | {row['max_seconds']:.2f} | "
            f"{row['median_cpu_seconds']:.2f} | {len(row['samples'])} | {loads} |"
        )
    m = result["machine"]
    lines += ["", f"Machine: {m['cpus']} CPUs, {m['memory_gb']} GB, {m['platform']}, Python "
              f"{m['python']}, Dagster {m['dagster']}; load average at start "
              f"{m['load_average_1m_5m_15m_at_start']} (the machine is shared).", ""]  # fmt: skip
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", default="63,500,2000", help="instance sizes, comma-separated")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--build-only", type=Path, default=None,
                        help="only build the instances into this (new) folder")  # fmt: skip
    parser.add_argument("--built", type=Path, default=None,
                        help="measure the instances built earlier into this folder")  # fmt: skip
    parser.add_argument("--before", type=Path, default=None,
                        help="also measure (once) this checkout's mlplatform package")  # fmt: skip
    parser.add_argument("--before-runs", default=None,
                        help="sizes measured with --before too (default: all)")  # fmt: skip
    parser.add_argument("--name", default="monitoring", help="results file name, after the date")
    args = parser.parse_args(argv)
    sizes = [int(n) for n in args.runs.split(",")]
    if args.build_only is not None:
        build_instances(args.build_only, sizes, time.time())
        return 0
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.built
        if folder is None:
            folder = Path(scratch) / "built"
            build_instances(folder, sizes, time.time())
        before_sizes = [int(n) for n in args.before_runs.split(",")] if args.before_runs else None
        result = benchmark(folder, sizes, args.repeats, args.before, before_sizes)
    stem = RESULTS / f"{dt.date.today().isoformat()}-{args.name}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    stem.with_suffix(".md").write_text(markdown(result))
    print(f"wrote {stem}.json and .md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
