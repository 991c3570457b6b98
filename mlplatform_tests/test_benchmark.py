"""The benchmark itself cannot rot: a small run (30k rows, once per mode) goes end to end and
writes a complete report. Nothing here asserts on time; `make bench` measures."""

import json

import pytest

from mlplatform_tests.benchmarks.bench import MODES, main

pytestmark = pytest.mark.slow

# The smallest window on which every gate judges (a test split of ~45 positives) and the model is
# worth the name; `make bench` measures from 100k rows up.
ROWS = 30_000

STEPS = {
    "raw_transactions", "raw_transactions_checks", "validated_transactions",
    "validated_transactions_checks", "features", "features_checks", "trained_model",
    "trained_model_checks", "registered_model_version", "batch_scores",
}  # fmt: skip
# The bare run computes the same gates, timed under the check steps' names.
BARE_STAGES = STEPS - {"registered_model_version"} | {"imports"}


def test_benchmark_smoke_run_reports_every_mode(tmp_path, capsys):
    code = main(["--sizes", str(ROWS), "--repeats", "1", "--skip-extra", "--out", str(tmp_path)])
    printed = capsys.readouterr().out
    assert code == 0, printed
    (report_file,) = tmp_path.glob("bench-*.json")
    report = json.loads(report_file.read_text())
    assert [m["mode"] for m in report["measurements"]] == list(MODES)
    for m in report["measurements"]:
        # PSS counts pages shared with the forkserver once, RSS once per process.
        assert m["ok"] and 0 < m["peak_pss_bytes"] <= m["peak_rss_bytes"], m
        # The memory peak is put on the step (or bare stage) that was running.
        assert m["peak_during"] in (STEPS if m["mode"] != "bare" else BARE_STAGES), m
        # The time no step accounts for is split into start-up, launches and exit.
        outside = m["outside_steps"]
        assert set(outside) == {"before_first_step", "median_step_launch", "after_last_step"}
        assert all(seconds >= 0 for seconds in outside.values()), m
        assert outside["before_first_step"] + outside["after_last_step"] < m["seconds"]
    size = report["summary"]["sizes"][str(ROWS)]
    # Both Dagster modes ran every asset and check of the graph, each timed from its events.
    for mode in ("dagster", "in_process"):
        assert set(size[mode]["median_step_seconds"]) == STEPS, mode
        assert size[mode]["ratio_to_bare"] > 0
    # The bare run did the same work on the same data: about ROWS rows and a model worth the name.
    bare = next(m for m in report["measurements"] if m["mode"] == "bare")
    assert 0.9 * ROWS <= bare["detail"]["rows"] <= 1.15 * ROWS
    assert bare["detail"]["test_roc_auc"] > 0.8
    # Calibration may warn (a WARN gate, each of its bins judged at 95%: it warned on this day's
    # 30,000 rows); every other gate passes.
    assert [gate for gate in bare["detail"]["failed_gates"] if gate != "calibrated"] == []
    assert set(bare["step_seconds"]) == BARE_STAGES
    assert report["extra"]["per_step_overhead_seconds"] is not None
    assert f"| {ROWS:,} | dagster |" in printed and "ratio to bare" in printed


def test_a_memory_peak_goes_to_the_step_that_was_running_or_being_launched():
    from mlplatform_tests.benchmarks.bench import running_at

    spans = {"features": (10.0, 20.0), "raw_transactions": (2.0, 8.0)}
    assert running_at(15.0, spans) == "features"
    # Between two steps: the last one started.
    assert running_at(9.0, spans) == "raw_transactions"
    # Before any step logged its start: the first step, which the run worker was launching.
    assert running_at(1.0, spans) == "raw_transactions"
    assert running_at(1.0, {}) is None
