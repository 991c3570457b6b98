"""The one-day realized-performance benchmark cannot rot: a small history (20 days at 2,000 rows)
is written, model_performance is materialized for its measured day in a new process, and the
report is complete. Nothing here asserts on time; `make monitoring-day-bench` measures."""

import json

import pandas as pd
import pytest

from mlplatform_tests.benchmarks.monitoring_day import MAX_DELAY_DAYS, build_history, main

pytestmark = pytest.mark.slow

DAYS, ROWS = 20, 2000
CHECKS = {"realized_above_floor", "realized_vs_backtest", "estimate_matches_realized",
          "not_worse_than_predecessor", "score_distribution"}  # fmt: skip


def test_the_history_is_in_the_io_managers_layout_with_the_assets_columns(tmp_path):
    built = build_history(tmp_path, 16, 500)
    data = tmp_path / "data"
    assert len(list((data / "batch_scores").glob("*.parquet"))) == 16
    assert len(list((data / "outcomes").glob("*.parquet"))) == 16
    scores = pd.read_parquet(data / "batch_scores" / f"{built['measured_day']}.parquet")
    assert list(scores.columns) == ["transaction_id", "event_time", "score", "decision",
                                    "model_version"]  # fmt: skip
    assert str(scores["event_time"].dtype) == "datetime64[ns, UTC]"
    outcomes = pd.read_parquet(data / "outcomes" / f"{built['last_day']}.parquet")
    assert list(outcomes.columns) == ["transaction_id", "outcome", "known_at", "event_time",
                                      "event_day"]  # fmt: skip
    assert str(outcomes["outcome"].dtype) == "int8" and set(outcomes["outcome"]) <= {0, 1}
    # Each outcome is known 1 to 14 days after its event, on its arrival day.
    late = outcomes["known_at"] - outcomes["event_time"]
    assert (late > pd.Timedelta(0)).all() and (late < pd.Timedelta(days=MAX_DELAY_DAYS + 1)).all()
    assert (outcomes["known_at"].dt.strftime("%Y-%m-%d") == built["last_day"]).all()
    # Every event of the measured day has its outcome somewhere in the arrivals after it.
    assert built["outcome_rows"] > 0 and built["outcome_positives"] > 0


def test_monitoring_day_benchmark_reports_each_history(tmp_path, capsys):
    code = main(["--histories", str(DAYS), "--rows", str(ROWS), "--repeats", "1",
                 "--out", str(tmp_path)])  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0, printed
    (report_file,) = tmp_path.glob(f"*-monitoring-day-{DAYS}d-{ROWS}.json")
    (table_file,) = tmp_path.glob(f"*-monitoring-day-{DAYS}d-{ROWS}.md")
    report = json.loads(report_file.read_text())
    assert report["environment"]["omp_num_threads"]
    (history,) = report["histories"]
    assert history["days"] == DAYS and history["all_ok"]
    (run,) = history["runs"]
    assert run["ok"] and 0 < run["step_seconds"] <= run["call_seconds"] <= run["process_seconds"]
    assert 0 < run["rss_before_call_bytes"] <= run["peak_rss_bytes"]
    # The measured day's every row has its outcome: all arrived within the history.
    assert run["scored_rows"] == run["labelled_rows"] == ROWS and run["coverage"] == 1
    assert run["positives"] > 0 and 0.5 < run["realized_roc_auc"] <= 1
    # The champion and both versions in shadow were judged; no alias moved between repeats.
    assert run["versions_judged"] == 3 and run["alias_move"] == "none"
    assert set(run["checks"]) == CHECKS
    assert f"| {DAYS} days | {history['measured_day']} |" in table_file.read_text()
    assert "peak RSS" in printed
