"""`make bench`: the pipeline as a Dagster run against the bare computation it orchestrates.

For each training-window size it runs, alternating and repeated:
  bare        the core functions in one plain Python process (benchmarks/bare.py)
  dagster     `dagster asset materialize` of the whole graph for one day, default settings
  in_process  the same with Dagster's in-process executor
and reports wall time and peak memory (RSS summed over the whole process tree, sampled), the
ratios to bare, the time per asset, and the scaling from one size to the next. It also measures
the code location's import time, the per-step overhead of the default executor and the time until
`dagster dev` answers. Results go to stdout as a table and to a JSON file.
"""

import argparse
import contextlib
import datetime as dt
import itertools
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil
import yaml

PROJECT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
DAY = dt.date(2026, 3, 2)
MODES = ("bare", "dagster", "in_process")
# The computation the bare script does too: the day from raw data to its scores. Outcomes, shadow
# scoring and realized performance (after deployment) have no counterpart there.
TRAINING_PATH = ",".join(
    ("raw_transactions", "validated_transactions", "quarantined_transactions", "features",
     "trained_model", "registered_model_version", "batch_scores")
)  # fmt: skip


@dataclass
class Measurement:
    mode: str
    rows: int
    seconds: float
    peak_rss_bytes: int
    ok: bool
    # Forked steps share the forkserver's pages, which a sum of RSS counts once per process; the
    # sum of PSS (proportional set size) counts each page once.
    peak_pss_bytes: int = 0
    # The step (or stage, for bare) that was running when the tree's RSS peaked.
    peak_during: str | None = None
    step_seconds: dict[str, float] = field(default_factory=dict)
    outside_steps: dict[str, float] = field(default_factory=dict)
    detail: dict[str, Any] = field(default_factory=dict)


def _tree_members(process: psutil.Process) -> list[psutil.Process]:
    return [process, *process.children(recursive=True)]


def _tree_sum(members: list[psutil.Process], amount: Callable[[psutil.Process], int]) -> int:
    """`amount` (a memory figure) summed over the processes that still exist."""
    total = 0
    for member in members:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            total += amount(member)
    return total


def _rss(process: psutil.Process) -> int:
    return process.memory_info().rss


def _pss(process: psutil.Process) -> int:
    return process.memory_full_info().pss


@dataclass
class Measured:
    seconds: float
    peak_rss_bytes: int
    peak_pss_bytes: int
    # Wall-clock times (epoch seconds): the RSS peak, to find the step that caused it, and the
    # process's start and end, to split the time outside steps into start-up, launches and exit.
    peak_at: float
    started_at: float
    stdout: str
    returncode: int

    @property
    def ended_at(self) -> float:
        return self.started_at + self.seconds


def run_measured(command: list[str], env: dict[str, str], cwd: Path) -> Measured:
    """Wall seconds, peak memory of the process tree, stdout and the exit code of `command`."""
    started = time.perf_counter()
    started_at = time.time()
    process = subprocess.Popen(
        command, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    peak_rss = peak_pss = 0
    peak_at = time.time()
    done = threading.Event()

    def sample() -> None:
        nonlocal peak_rss, peak_pss, peak_at
        watched = psutil.Process(process.pid)
        pss_read_at = 0.0
        while not done.is_set():
            try:
                members = _tree_members(watched)
            except psutil.NoSuchProcess:
                return
            rss = _tree_sum(members, _rss)
            if rss > peak_rss:
                peak_rss, peak_at = rss, time.time()
            # PSS costs milliseconds per process (RSS microseconds), which on two cores would slow
            # what is measured: it is read only near the RSS peak, at most four times a second.
            if rss >= 0.9 * peak_rss and time.monotonic() - pss_read_at >= 0.25:
                peak_pss = max(peak_pss, _tree_sum(members, _pss))
                pss_read_at = time.monotonic()
            done.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, stderr = process.communicate()
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    if process.returncode != 0:
        sys.stderr.write(stderr[-4000:])
    return Measured(seconds, peak_rss, peak_pss, peak_at, started_at, stdout, process.returncode)


def time_outside_steps(
    spans: dict[str, tuple[float, float]], started_at: float, ended_at: float
) -> dict[str, float]:
    """Where the time no step accounts for goes: from the process's start to the first step
    (interpreter, CLI, run creation, for Dagster the forkserver's preloads), the median gap
    between one step's end and the next one's start (a step launch), and from the last step's
    end to the process's exit."""
    ordered = sorted(spans.values())
    if not ordered:
        return {}
    # The latest end among the steps started so far: a step waits for that one (or is parallel).
    latest_end = list(itertools.accumulate((end for _, end in ordered), max))
    gaps = [max(0.0, start - latest_end[i]) for i, (start, _) in enumerate(ordered[1:])]
    return {
        "before_first_step": ordered[0][0] - started_at,
        "median_step_launch": statistics.median(gaps) if gaps else 0.0,
        "after_last_step": ended_at - latest_end[-1],
    }


def running_at(moment: float, spans: dict[str, tuple[float, float]]) -> str | None:
    """The step whose (start, end) span holds `moment`, else the last one started before it.

    A peak before any step has logged its start (the run worker launching the first step
    processes) goes to the first step: that launch is what was running.
    """
    started_before = sorted(
        ((start, name) for name, (start, _) in spans.items() if start <= moment), reverse=True
    )
    holding = [name for _, name in started_before if moment <= spans[name][1]]
    if holding:
        return holding[0]
    if started_before:
        return started_before[0][1]
    return min(spans, key=lambda name: spans[name][0]) if spans else None


def step_spans(dagster_home: Path) -> dict[str, tuple[float, float]]:
    """Each successful step's start and end (epoch seconds), read from the run's event log."""
    import dagster as dg
    from dagster._core.execution.stats import StepEventStatus

    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        (run,) = instance.get_runs(limit=1)
        return {
            stats.step_key: (stats.start_time, stats.end_time)
            for stats in instance.get_run_step_stats(run.run_id)
            if stats.status == StepEventStatus.SUCCESS
        }


class Bench:
    def __init__(self, root: Path, threads: int):
        self.root = root
        self.threads = threads
        self.settings_dir = root / "settings"
        self.settings_dir.mkdir(parents=True, exist_ok=True)

    def environment(self, rows: int, workdir: Path) -> dict[str, str]:
        # The training window is one day of `rows` transactions, so both sides train on the same.
        (self.settings_dir / "platform.yaml").write_text(
            yaml.safe_dump(
                {
                    "data_source": {"generator": {"rows_per_day": rows}},
                    "features": {"window_days": 1},
                }
            )
        )
        return {
            **os.environ,
            "MLPLATFORM_SETTINGS_DIR": str(self.settings_dir),
            "MLPLATFORM_DATA_DIR": str(workdir / "data"),
            "MLFLOW_TRACKING_URI": f"sqlite:///{workdir}/mlflow.db",
            "MLPLATFORM_MLFLOW_ARTIFACTS": str(workdir / "mlartifacts"),
            "DAGSTER_HOME": str(workdir / "dagster_home"),
            "OMP_NUM_THREADS": str(self.threads),
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "GIT_PYTHON_REFRESH": "quiet",
        }

    def fresh_workdir(self) -> Path:
        workdir = Path(tempfile.mkdtemp(dir=self.root, prefix="run-"))
        (workdir / "dagster_home").mkdir()
        shutil.copy(PROJECT / "dagster.yaml", workdir / "dagster_home" / "dagster.yaml")
        return workdir

    def measure(self, mode: str, rows: int) -> Measurement:
        workdir = self.fresh_workdir()
        env = self.environment(rows, workdir)
        try:
            if mode == "bare":
                command = [sys.executable, "-m", "mlplatform_tests.benchmarks.bare",
                           "--rows", str(rows), "--day", DAY.isoformat()]  # fmt: skip
            else:
                command = [str(BIN / "dagster"), "asset", "materialize", "-m",
                           "mlplatform.definitions", "--select", TRAINING_PATH,
                           "--partition", DAY.isoformat()]  # fmt: skip
                if mode == "in_process":
                    # The platform's executor setting (orchestration.yaml, execution.executor).
                    env["MLPLATFORM_EXECUTOR"] = "in_process"
            run = run_measured(command, env, PROJECT)
            measurement = Measurement(
                mode, rows, run.seconds, run.peak_rss_bytes, run.returncode == 0,
                peak_pss_bytes=run.peak_pss_bytes,
            )  # fmt: skip
            if run.returncode != 0:
                return measurement
            if mode == "bare":
                detail = json.loads(run.stdout.strip().splitlines()[-1])
                spans = {stage: tuple(span) for stage, span in detail.pop("stage_spans").items()}
                measurement.detail = detail
            else:
                spans = step_spans(workdir / "dagster_home")
            measurement.step_seconds = {step: end - start for step, (start, end) in spans.items()}
            measurement.peak_during = running_at(run.peak_at, spans)
            measurement.outside_steps = time_outside_steps(spans, run.started_at, run.ended_at)
            return measurement
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    def import_seconds(self, repeats: int = 5) -> float:
        """Seconds to import the code location in a fresh interpreter, minus the bare start."""

        def timed(code: str) -> float:
            started = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True, cwd=PROJECT,
                           env={**os.environ, "DAGSTER_HOME": str(self.root)})  # fmt: skip
            return time.perf_counter() - started

        empty = statistics.median(timed("pass") for _ in range(repeats))
        location = statistics.median(timed("import mlplatform.definitions") for _ in range(repeats))
        return location - empty

    def dev_answers_seconds(self) -> float | None:
        """Seconds from starting the README's `dagster dev` until the UI answers."""
        from mlplatform_tests.servers import free_port, http_ok, start_process, stop_process_group

        port = free_port()
        workdir = self.fresh_workdir()
        env = self.environment(50_000, workdir)
        started = time.perf_counter()
        process = start_process(
            [str(BIN / "dagster"), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1",
             "-p", str(port)],
            workdir / "dagster-dev.log", env=env, cwd=PROJECT,
        )  # fmt: skip
        answered = None
        try:
            while time.perf_counter() - started < 180 and process.poll() is None:
                if http_ok(f"http://127.0.0.1:{port}/server_info"):
                    answered = time.perf_counter() - started
                    break
                time.sleep(0.25)
        finally:
            stop_process_group(process)
            shutil.rmtree(workdir, ignore_errors=True)
        return answered


def summarize(measurements: list[Measurement], sizes: list[int]) -> dict[str, Any]:
    table: dict[str, Any] = {}
    for rows in sizes:
        per_mode: dict[str, Any] = {}
        for mode in MODES:
            runs = [m for m in measurements if m.rows == rows and m.mode == mode and m.ok]
            if not runs:
                per_mode[mode] = None
                continue
            steps = sorted({key for m in runs for key in m.step_seconds})
            per_mode[mode] = {
                "runs": len(runs),
                "failed_runs": sum(
                    1 for m in measurements if m.rows == rows and m.mode == mode and not m.ok
                ),
                "median_seconds": statistics.median(m.seconds for m in runs),
                "median_peak_rss_mb": statistics.median(m.peak_rss_bytes for m in runs) / 2**20,
                "median_peak_pss_mb": statistics.median(m.peak_pss_bytes for m in runs) / 2**20,
                "peak_during": statistics.mode(m.peak_during for m in runs),
                "median_outside_steps_seconds": {
                    part: statistics.median(m.outside_steps[part] for m in runs)
                    for part in runs[0].outside_steps
                },
                "median_step_seconds": {
                    step: statistics.median(
                        m.step_seconds[step] for m in runs if step in m.step_seconds
                    )
                    for step in steps
                },
            }
        bare = per_mode.get("bare")
        for mode in ("dagster", "in_process"):
            if bare and per_mode.get(mode):
                per_mode[mode]["ratio_to_bare"] = (
                    per_mode[mode]["median_seconds"] / bare["median_seconds"]
                )
        table[str(rows)] = per_mode
    scaling: dict[str, Any] = {}
    for smaller, larger in itertools.pairwise(sizes):
        for mode in MODES:
            a, b = table[str(smaller)].get(mode), table[str(larger)].get(mode)
            if a and b:
                scaling.setdefault(f"{larger}/{smaller}", {})[mode] = {
                    "time": b["median_seconds"] / a["median_seconds"],
                    "memory": b["median_peak_rss_mb"] / a["median_peak_rss_mb"],
                }
    return {"sizes": table, "scaling": scaling}


def render(result: dict[str, Any]) -> str:
    lines = [
        f"machine: {result['machine']['cpus']} CPUs, "
        f"{result['machine']['memory_gb']:.0f} GB, Python {result['machine']['python']}, "
        f"OMP_NUM_THREADS={result['machine']['omp_threads']}, repeats={result['repeats']}",
        "",
        "| rows | mode | median s | ratio to bare | peak RSS MB | peak PSS MB | peak during "
        "| runs (failed) |",
        "| ---: | --- | ---: | ---: | ---: | ---: | --- | ---: |",
    ]
    ran = {(m["rows"], m["mode"]) for m in result["measurements"]}
    for rows, per_mode in result["summary"]["sizes"].items():
        for mode in MODES:
            entry = per_mode.get(mode)
            if entry is None:
                if (int(rows), mode) in ran:
                    lines.append(f"| {int(rows):,} | {mode} | failed | | | | | |")
                continue
            ratio = entry.get("ratio_to_bare")
            lines.append(
                f"| {int(rows):,} | {mode} | {entry['median_seconds']:.1f} | "
                f"{'' if ratio is None else f'{ratio:.2f}'} | "
                f"{entry['median_peak_rss_mb']:.0f} | {entry['median_peak_pss_mb']:.0f} | "
                f"{entry['peak_during']} | {entry['runs']} ({entry['failed_runs']}) |"
            )
    lines += ["", "| scaling | mode | time | memory |", "| --- | --- | ---: | ---: |"]
    for step, per_mode in result["summary"]["scaling"].items():
        for mode, values in per_mode.items():
            lines.append(f"| {step} | {mode} | {values['time']:.2f}x | {values['memory']:.2f}x |")
    lines += ["", "time outside steps (median s): before the first, per launch, after the last"]
    for rows, per_mode in result["summary"]["sizes"].items():
        for mode in MODES:
            entry = per_mode.get(mode)
            if entry and entry["median_outside_steps_seconds"]:
                parts = entry["median_outside_steps_seconds"]
                lines.append(
                    f"  {int(rows):,} {mode}: {parts['before_first_step']:.2f}, "
                    f"{parts['median_step_launch']:.2f}, {parts['after_last_step']:.2f}"
                )
    lines += ["", "time per asset / step (median s):"]
    for rows, per_mode in result["summary"]["sizes"].items():
        for mode in MODES:
            entry = per_mode.get(mode)
            if entry:
                steps = ", ".join(
                    f"{step} {seconds:.1f}"
                    for step, seconds in entry["median_step_seconds"].items()
                )
                lines.append(f"  {int(rows):,} {mode}: {steps}")
    extra = result["extra"]
    lines += [
        "",
        f"code location import: {extra['import_seconds']:.2f} s",
        f"per-step overhead of the default executor (launch gap, smallest size): "
        f"{extra['per_step_overhead_seconds']}",
        f"`dagster dev` answers after: {extra['dev_answers_seconds']}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000,10000000",
                        help="comma-separated training-window sizes in rows")  # fmt: skip
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--once-above",
        type=int,
        default=1_000_000,
        help="sizes above this many rows run once per mode (a 10M-row round takes ~20 minutes)",
    )
    parser.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS for every run")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--skip-extra", action="store_true", help="skip import and dev timings")
    parser.add_argument("--out", type=Path, default=PROJECT / "test-artifacts" / "bench")
    args = parser.parse_args(argv)
    sizes = [int(size) for size in args.sizes.split(",")]
    modes = [mode for mode in MODES if mode in args.modes.split(",")]

    root = Path(tempfile.mkdtemp(prefix="mlplatform-bench-"))
    bench = Bench(root, args.threads)
    measurements: list[Measurement] = []
    try:
        for rows in sizes:
            for repeat in range(args.repeats if rows <= args.once_above else 1):
                # Alternating a, b, c, a, b, c: a slow spell of the machine hits every mode.
                for mode in modes:
                    m = bench.measure(mode, rows)
                    measurements.append(m)
                    print(
                        f"[{rows:,} rows #{repeat + 1}] {mode}: {m.seconds:.1f} s, "
                        f"peak RSS {m.peak_rss_bytes / 2**20:.0f} MB, "
                        f"PSS {m.peak_pss_bytes / 2**20:.0f} MB during {m.peak_during}"
                        f"{'' if m.ok else ' FAILED'}",
                        flush=True,
                    )
        summary = summarize(measurements, sizes)
        extra: dict[str, Any] = {
            "import_seconds": None,
            "dev_answers_seconds": None,
            "per_step_overhead_seconds": None,
        }
        if not args.skip_extra:
            extra["import_seconds"] = bench.import_seconds()
            extra["dev_answers_seconds"] = bench.dev_answers_seconds()
        smallest = summary["sizes"][str(sizes[0])]
        if smallest.get("dagster"):
            # From one step's end to the next one's start under the default executor: the
            # process launch, instance, plan and resources a step costs before its own work.
            outside = smallest["dagster"]["median_outside_steps_seconds"]
            extra["per_step_overhead_seconds"] = outside["median_step_launch"]
        result = {
            "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "machine": {
                "cpus": os.cpu_count(),
                "memory_gb": psutil.virtual_memory().total / 2**30,
                "python": platform.python_version(),
                "platform": platform.platform(),
                "omp_threads": args.threads,
                "load_average_at_end": os.getloadavg(),
            },
            "repeats": args.repeats,
            "measurements": [asdict(m) for m in measurements],
            "summary": summary,
            "extra": extra,
        }
        args.out.mkdir(parents=True, exist_ok=True)
        path = args.out / f"bench-{result['when'].replace(':', '')}.json"
        path.write_text(json.dumps(result, indent=2))
        if extra["import_seconds"] is None:
            extra["import_seconds"] = float("nan")
        print(render(result))
        print(f"\nwritten: {path}")
        return 0 if all(m.ok for m in measurements) else 1
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
