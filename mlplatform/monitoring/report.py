"""`mlplatform report`: the protocol's success criteria, measured from the instance's history.

Success rate (target > 95%), p50/p95 run time (target < 4 h), mean time to recovery (a failed run
to the next success of the same job and partition; target < 30 min) and per-step durations.
`build_report(instance)` returns it as data, `summarize(...)` computes it from plain records.
"""

import argparse
import datetime as dt
import json
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from mlplatform.commands.instance_option import add_instance_argument, open_instance_for
from mlplatform.monitoring.history import (
    ACTIVE_STATUSES,
    QUEUED_STATUSES,
    DurationSummary,
    OpenIncident,
    Recovery,
    RunRecord,
    StepRecord,
    mean_time_to_recovery,
    percentile,
    recoveries,
    step_durations,
    success_rate,
)

# The protocol's targets.
SUCCESS_RATE_TARGET = 0.95
RUN_SECONDS_TARGET = 4 * 3600
RECOVERY_SECONDS_TARGET = 30 * 60


@dataclass(frozen=True)
class Criterion:
    name: str
    target: str
    measured: float | None
    # None when there is nothing to measure yet (no finished run, no failure recovered).
    met: bool | None


@dataclass
class RunHistoryReport:
    generated_at: float
    since: float | None
    job: str | None
    runs_finished: int
    runs_succeeded: int
    runs_failed: int
    runs_canceled: int
    runs_queued: int
    runs_active: int
    success_rate: float | None
    run_seconds_p50: float | None
    run_seconds_p95: float | None
    run_seconds_max: float | None
    mean_time_to_recovery_seconds: float | None
    recoveries: list[Recovery] = field(default_factory=list)
    open_incidents: list[OpenIncident] = field(default_factory=list)
    steps: dict[str, DurationSummary] = field(default_factory=dict)
    criteria: list[Criterion] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["recoveries"] = [{**asdict(r), "seconds": r.seconds} for r in self.recoveries]
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def to_markdown(self) -> str:
        scope = f"job `{self.job}`" if self.job else "all jobs"
        since = f" since {_when(self.since)}" if self.since is not None else ""
        lines = [
            "# Run history: the protocol's success criteria",
            "",
            f"{scope}{since}, as of {_when(self.generated_at)}: {self.runs_finished} finished "
            f"runs ({self.runs_succeeded} succeeded, {self.runs_failed} failed, "
            f"{self.runs_canceled} canceled); {self.runs_active} active, {self.runs_queued} "
            "queued.",
            "",
            "| criterion | target | measured | met |",
            "| --- | --- | --- | --- |",
        ]
        for c in self.criteria:
            measured = (
                "n/a"
                if c.measured is None
                else f"{c.measured:.1%}"
                if c.name == "success rate"
                else _duration(c.measured)
            )
            met = "n/a" if c.met is None else "yes" if c.met else "**no**"
            lines.append(f"| {c.name} | {c.target} | {measured} | {met} |")
        lines += ["", f"Run time: max {_duration(self.run_seconds_max)}.", ""]
        lines += ["## Recoveries (failure to the next success of the same job and partition)", ""]
        if self.recoveries:
            lines += ["| job | partition | failed run | recovered by | time to recover |",
                      "| --- | --- | --- | --- | --- |"]  # fmt: skip
            lines += [
                f"| {r.job} | {r.partition or '-'} | {r.failed_run_id[:8]} | "
                f"{r.recovered_run_id[:8]} | {_duration(r.seconds)} |"
                for r in self.recoveries
            ]
        else:
            lines.append("No failure has been recovered in this window.")
        if self.open_incidents:
            lines += ["", "Not recovered yet:", ""]
            lines += [
                f"- {i.job} [{i.partition or '-'}]: failing since {_when(i.failed_at)} "
                f"({i.failed_runs} failed run{'s' if i.failed_runs != 1 else ''}, first "
                f"{i.first_failed_run_id[:8]})"
                for i in self.open_incidents
            ]
        lines += ["", "## Step durations (finished attempts)", ""]
        if self.steps:
            lines += ["| step | attempts | failed | p50 | p95 | max |",
                      "| --- | --- | --- | --- | --- | --- |"]  # fmt: skip
            lines += [
                f"| {name} | {s.count} | {s.failures} | {_duration(s.p50)} | {_duration(s.p95)} "
                f"| {_duration(s.max)} |"
                for name, s in self.steps.items()
            ]
        else:
            lines.append("No finished step in this window.")
        return "\n".join(lines) + "\n"


def _when(timestamp: float | None) -> str:
    if timestamp is None:
        return "n/a"
    return dt.datetime.fromtimestamp(timestamp, tz=dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.2f} h"


def _criterion(
    name: str, target: str, measured: float | None, limit: float, lower: bool = True
) -> Criterion:
    """`lower`: the measure must stay below `limit`; otherwise above it."""
    if measured is None:
        return Criterion(name, target, None, None)
    return Criterion(name, target, measured, measured < limit if lower else measured > limit)


def summarize(
    runs: Sequence[RunRecord],
    steps: Sequence[StepRecord],
    now: float,
    since: float | None = None,
    job: str | None = None,
) -> RunHistoryReport:
    """The report from plain records (the runs and steps already limited to the window)."""
    finished = [r for r in runs if r.finished]
    durations = [r.duration for r in finished if r.duration is not None]
    rate = success_rate(finished)
    p50, p95 = percentile(durations, 0.5), percentile(durations, 0.95)
    recovered, still_open = recoveries(finished)
    mttr = mean_time_to_recovery(recovered)
    return RunHistoryReport(
        generated_at=now,
        since=since,
        job=job,
        runs_finished=len(finished),
        runs_succeeded=sum(r.status == "SUCCESS" for r in finished),
        runs_failed=sum(r.status == "FAILURE" for r in finished),
        runs_canceled=sum(r.status == "CANCELED" for r in finished),
        runs_queued=sum(r.status in QUEUED_STATUSES for r in runs),
        runs_active=sum(r.status in ACTIVE_STATUSES for r in runs),
        success_rate=rate,
        run_seconds_p50=p50,
        run_seconds_p95=p95,
        run_seconds_max=max(durations) if durations else None,
        mean_time_to_recovery_seconds=mttr,
        recoveries=recovered,
        open_incidents=still_open,
        steps=step_durations(steps),
        criteria=[
            _criterion(
                "success rate",
                f"> {SUCCESS_RATE_TARGET:.0%}",
                rate,
                SUCCESS_RATE_TARGET,
                lower=False,
            ),
            _criterion("p50 run time", "< 4 h", p50, RUN_SECONDS_TARGET),
            _criterion("p95 run time", "< 4 h", p95, RUN_SECONDS_TARGET),
            _criterion("mean time to recovery", "< 30 min", mttr, RECOVERY_SECONDS_TARGET),
        ],
    )


def build_report(
    instance: Any, since: float | None = None, job: str | None = None, now: float | None = None
) -> RunHistoryReport:
    """The report from a Dagster instance's run and event storage: the runs created after `since`
    (of `job`), selected by the run storage, and only their steps read, so its cost follows the
    window asked for, not the instance's history."""
    from mlplatform.monitoring.instance_reader import read_runs, read_steps

    runs = read_runs(instance, since, job)
    steps = [step for run in runs for step in read_steps(instance, run)]
    return summarize(runs, steps, time.time() if now is None else now, since, job)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=("markdown", "json"), default="markdown")
    parser.add_argument(
        "--days", type=float, default=None, help="only runs created in the last DAYS days"
    )
    parser.add_argument("--job", default=None, help="only runs of this job")
    add_instance_argument(parser)


def run(args: argparse.Namespace) -> int:
    import sys

    if args.days is not None and not (math.isfinite(args.days) and args.days > 0):
        print(f"mlplatform report: --days must be positive, got {args.days}", file=sys.stderr)
        return 2
    instance = open_instance_for("report", args)
    if instance is None:
        return 2
    with instance:
        since = time.time() - args.days * 86400 if args.days is not None else None
        report = build_report(instance, since=since, job=args.job)
    print(report.to_json() if args.format == "json" else report.to_markdown(), end="")
    if args.format == "json":
        print()
    return 0
