"""Run history as plain records, and the numbers computed from them (no Dagster import).

`instance_reader` fills these records from a Dagster instance; the exporter and the report only
compute from them, so the arithmetic is testable on its own.
"""

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

# Dagster's run statuses, by what they mean for the protocol's numbers.
FINISHED_STATUSES = ("SUCCESS", "FAILURE", "CANCELED")
QUEUED_STATUSES = ("QUEUED", "NOT_STARTED")
ACTIVE_STATUSES = ("STARTING", "STARTED", "CANCELING")


def elapsed(started: float | None, ended: float | None) -> float | None:
    """Seconds from start to end; None when either is unknown."""
    if started is None or ended is None:
        return None
    return max(0.0, ended - started)


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    job: str
    status: str
    partition: str | None
    created: float
    started: float | None = None
    ended: float | None = None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED_STATUSES

    @property
    def duration(self) -> float | None:
        """Start to end, for a finished run that started (a run canceled in the queue did not)."""
        return elapsed(self.started, self.ended)


@dataclass(frozen=True)
class StepRecord:
    run_id: str
    job: str
    step: str
    status: str | None
    started: float | None
    ended: float | None

    @property
    def duration(self) -> float | None:
        return elapsed(self.started, self.ended)


@dataclass(frozen=True)
class CheckEvaluation:
    run_id: str
    asset: str
    check: str
    severity: str
    passed: bool
    partition: str | None
    timestamp: float
    observed: float | None = None
    # Too little evidence to judge (a warning that judges nothing, e.g. too few positives yet).
    inconclusive: bool = False


@dataclass(frozen=True)
class Materialization:
    run_id: str
    asset: str
    partition: str | None
    timestamp: float
    # Numeric metadata only (row counts, rates): what a metric can carry.
    values: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class ScoredDayPerformance:
    """The latest materialization of one `model_performance` partition (a scored day): the
    champion version that scored it, its numbers (`realized_<x>`, `estimated_<x>`, `backtest_<x>`,
    each with `_low` and `_high` where it has an interval) and the live comparisons of the versions
    in shadow (role -> evidence: text values, as recorded in the registry)."""

    model: str
    day: str
    version: str
    timestamp: float
    values: dict[str, float] = field(default_factory=dict)
    verdicts: dict[str, dict[str, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class RunEvents:
    """What one run left in the event log that the metrics read."""

    steps: tuple[StepRecord, ...] = ()
    checks: tuple[CheckEvaluation, ...] = ()
    materializations: tuple[Materialization, ...] = ()


@dataclass(frozen=True)
class Recovery:
    job: str
    partition: str | None
    failed_run_id: str
    recovered_run_id: str
    failed_at: float
    recovered_at: float

    @property
    def seconds(self) -> float:
        return max(0.0, self.recovered_at - self.failed_at)


@dataclass(frozen=True)
class OpenIncident:
    job: str
    partition: str | None
    first_failed_run_id: str
    failed_at: float
    failed_runs: int


@dataclass(frozen=True)
class DurationSummary:
    count: int
    failures: int
    p50: float | None
    p95: float | None
    max: float | None
    mean: float | None


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-quantile (0..1) with linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return None
    if not 0 <= q <= 1:
        raise ValueError(f"quantile must be within [0, 1], got {q}")
    ordered = sorted(values)
    rank = q * (len(ordered) - 1)
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def success_rate(runs: Iterable[RunRecord]) -> float | None:
    """Successful runs over finished runs. A canceled run counts against it: it did not deliver
    (run monitoring cancels runs past their maximum runtime)."""
    finished = [r for r in runs if r.finished]
    if not finished:
        return None
    return sum(r.status == "SUCCESS" for r in finished) / len(finished)


def recoveries(runs: Iterable[RunRecord]) -> tuple[list[Recovery], list[OpenIncident]]:
    """Failure to the next success of the same job and partition.

    An incident starts at the end of the first failed run after a success (or the first run) and
    ends at the end of the next successful run; further failures in between belong to the same
    incident. Incidents with no success yet are returned as open.
    """
    by_target: dict[tuple[str, str | None], list[RunRecord]] = defaultdict(list)
    for run in runs:
        if run.finished and run.ended is not None:
            by_target[(run.job, run.partition)].append(run)
    recovered: list[Recovery] = []
    still_open: list[OpenIncident] = []
    for (job, partition), history in by_target.items():
        first_failure: RunRecord | None = None
        failures = 0
        for run in sorted(history, key=lambda r: r.ended or 0.0):
            if run.status == "SUCCESS":
                if first_failure is not None:
                    recovered.append(
                        Recovery(job, partition, first_failure.run_id, run.run_id,
                                 first_failure.ended or 0.0, run.ended or 0.0)
                    )  # fmt: skip
                first_failure, failures = None, 0
            else:
                first_failure = first_failure or run
                failures += 1
        if first_failure is not None:
            still_open.append(
                OpenIncident(job, partition, first_failure.run_id, first_failure.ended or 0.0,
                             failures)
            )  # fmt: skip
    recovered.sort(key=lambda r: r.recovered_at)
    still_open.sort(key=lambda i: i.failed_at)
    return recovered, still_open


def mean_time_to_recovery(recovered: Sequence[Recovery]) -> float | None:
    if not recovered:
        return None
    return sum(r.seconds for r in recovered) / len(recovered)


def step_durations(steps: Iterable[StepRecord]) -> dict[str, DurationSummary]:
    """Per step (an asset, a multi-asset or a checks step): how long its finished attempts took."""
    durations: dict[str, list[float]] = defaultdict(list)
    failures: dict[str, int] = defaultdict(int)
    for step in steps:
        if step.status == "FAILURE":
            failures[step.step] += 1
        if step.status in ("SUCCESS", "FAILURE") and step.duration is not None:
            durations[step.step].append(step.duration)
    return {
        name: DurationSummary(
            count=len(values),
            failures=failures[name],
            p50=percentile(values, 0.5),
            p95=percentile(values, 0.95),
            max=max(values) if values else None,
            mean=sum(values) / len(values) if values else None,
        )
        for name, values in sorted(durations.items())
    }
