"""The run-history arithmetic on plain records: success rate, percentiles, recovery times and step
summaries (the exporter and the report compute from these)."""

import pytest

from mlplatform.monitoring.history import (
    RunRecord,
    StepRecord,
    mean_time_to_recovery,
    percentile,
    recoveries,
    step_durations,
    success_rate,
)
from mlplatform.monitoring.report import summarize


def run(run_id, status, ended, partition="2026-03-01", job="training_pipeline", took=100.0):
    return RunRecord(run_id, job, status, partition, created=ended - took - 5,
                     started=ended - took, ended=ended)  # fmt: skip


def test_percentile_interpolates_between_ranks():
    assert percentile([], 0.5) is None
    assert percentile([7.0], 0.95) == 7.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert percentile([4.0, 1.0, 3.0, 2.0, 5.0], 0.95) == pytest.approx(4.8)
    with pytest.raises(ValueError, match="quantile"):
        percentile([1.0], 95)


def test_success_rate_counts_canceled_runs_against_it_and_ignores_unfinished():
    going = RunRecord("e", "training_pipeline", "STARTED", None, 0.0)
    runs = [run("a", "SUCCESS", 100), run("b", "SUCCESS", 200), run("c", "CANCELED", 300),
            run("d", "FAILURE", 400), going]  # fmt: skip
    assert success_rate(runs) == 0.5
    assert success_rate([RunRecord("q", "training_pipeline", "QUEUED", None, 0.0)]) is None


def test_recovery_runs_from_the_first_failure_to_the_next_success_of_that_job_and_day():
    runs = [
        run("ok-1", "SUCCESS", 1000),
        run("fail-1", "FAILURE", 2000),
        run("fail-2", "FAILURE", 2600),  # the same incident, still failing
        run("other-day", "SUCCESS", 2700, partition="2026-03-02"),  # does not recover 03-01
        run("other-job", "SUCCESS", 2800, job="retraining"),  # nor does another job
        run("ok-2", "SUCCESS", 3800),
        run("fail-3", "FAILURE", 5000),  # never recovered
        run("fail-4", "FAILURE", 6000, partition="2026-03-02"),
        run("ok-3", "SUCCESS", 6600, partition="2026-03-02"),
    ]
    recovered, still_open = recoveries(runs)
    assert [(r.failed_run_id, r.recovered_run_id, r.seconds) for r in recovered] == [
        ("fail-1", "ok-2", 1800.0),
        ("fail-4", "ok-3", 600.0),
    ]
    assert [(i.first_failed_run_id, i.failed_runs) for i in still_open] == [("fail-3", 1)]
    assert mean_time_to_recovery(recovered) == 1200.0
    assert mean_time_to_recovery([]) is None


def test_step_summaries():
    steps = [
        StepRecord("r1", "j", "trained_model", "SUCCESS", 0.0, 10.0),
        StepRecord("r2", "j", "trained_model", "SUCCESS", 0.0, 30.0),
        StepRecord("r3", "j", "trained_model", "FAILURE", 0.0, 2.0),
        StepRecord("r4", "j", "trained_model", "SKIPPED", None, None),
        StepRecord("r5", "j", "features", None, 0.0, None),  # still going
    ]
    summary = step_durations(steps)
    assert list(summary) == ["trained_model"]
    assert (summary["trained_model"].count, summary["trained_model"].failures) == (3, 1)
    assert summary["trained_model"].p50 == 10.0 and summary["trained_model"].max == 30.0


def test_report_criteria_against_the_protocols_targets():
    slow = [run(f"s{i}", "SUCCESS", 100000.0 * (i + 1), took=5 * 3600) for i in range(19)]
    report = summarize([*slow, run("f", "FAILURE", 3e6), run("g", "SUCCESS", 3e6 + 3600)],
                       steps=[], now=4e6)  # fmt: skip
    met = {c.name: c.met for c in report.criteria}
    # 20 of 21 runs succeeded (95.2% > 95%), runs took 5 h (> 4 h), recovery took an hour.
    assert met == {"success rate": True, "p50 run time": False, "p95 run time": False,
                   "mean time to recovery": False}  # fmt: skip
    assert report.mean_time_to_recovery_seconds == 3600.0
    empty = summarize([], [], now=0.0)
    assert [c.met for c in empty.criteria] == [None] * 4
    assert "No failure has been recovered" in empty.to_markdown()
