"""The bare computation: the pipeline's core functions in one plain Python process, without
Dagster, MLflow or storage, timed per stage. It computes what the Dagster run computes, the quality
gates included (the same core gate functions the asset checks call, as the first day with no
history and no champion), so the ratio measures orchestration, persistence and tracking. The
benchmark runs it as `python -m mlplatform_tests.benchmarks.bare --rows N --day D` and reads one
JSON line from stdout."""

import argparse
import datetime as dt
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def run_bare(rows: int, day: dt.date, seed: int = 42) -> dict[str, Any]:
    # Wall-clock start and end of each stage, comparable with the sampled memory peak's time.
    stage_spans: dict[str, tuple[float, float]] = {}

    @contextmanager
    def timed(stage: str) -> Iterator[None]:
        started = time.time()
        yield
        stage_spans[stage] = (started, time.time())

    started = time.perf_counter()
    with timed("imports"):
        import pandas as pd

        from mlplatform.config.dataset import open_dataset
        from mlplatform.config.gates import gates_for
        from mlplatform.core import data_gates, feature_gates, gate_outcome, model_gates
        from mlplatform.core.calibration import calibration_report
        from mlplatform.core.contract import load_contract
        from mlplatform.core.features import build_features, model_columns
        from mlplatform.core.score import score_rows
        from mlplatform.core.train import train_model
        from mlplatform.core.validate import validate
        from mlplatform_tests.packaged import (
            bootstrap_resamples,
            calibration,
            generated_day,
            search_plan,
            threshold_metric,
        )

    dataset = open_dataset("card_transactions")
    contract = load_contract(dataset.contract)
    gates = gates_for(dataset.folder)
    failed: list[str] = []

    def gated(outcomes: dict[str, gate_outcome.GateOutcome]) -> None:
        failed.extend(name for name, outcome in outcomes.items() if not outcome.passed)

    with timed("raw_transactions"):
        raw = generated_day(day, seed=seed, rows_per_day=rows)
    raw_rows = len(raw)
    with timed("raw_transactions_checks"):
        day_end = pd.Timestamp(day, tz="UTC") + pd.Timedelta(days=1)
        gated(data_gates.raw_transactions_gates(raw, contract, gates.raw_transactions, day_end, {}))
    with timed("validated_transactions"):
        outcome = validate(raw, contract)
    del raw
    with timed("validated_transactions_checks"):
        gated(
            data_gates.validated_transactions_gates(
                outcome.validated,
                len(outcome.quarantined),
                contract,
                gates.validated_transactions,
            )
        )
    with timed("features"):
        table = build_features(outcome.validated, contract)
    del outcome
    with timed("features_checks"):
        gated(feature_gates.features_gates(table, contract, gates.features, day))
    categorical, numeric = model_columns(table, contract)
    with timed("trained_model"):
        result = train_model(
            table, categorical, numeric, search_plan(), threshold_metric(), bootstrap_resamples(),
            calibration(),
        )  # fmt: skip
        report = calibration_report(
            result.test_labels, result.test_scores, bins=gates.trained_model.calibrated.bins,
            seed=search_plan().seed, resamples=bootstrap_resamples(),
        )  # fmt: skip
    with timed("trained_model_checks"):
        gated(
            model_gates.trained_model_gates(
                result.test_intervals, None, gates.trained_model, report
            )
        )
    with timed("batch_scores"):
        day_rows = table[table[contract.event_time].dt.date == day]
        scores = score_rows(
            result.model, day_rows, result.input_columns, result.threshold,
            contract.id, contract.event_time, "bare",
        )  # fmt: skip
    return {
        "rows": raw_rows,
        "feature_rows": len(table),
        "scored_rows": len(scores),
        "test_roc_auc": result.test_metrics.get("roc_auc"),
        "failed_gates": failed,
        "stage_spans": stage_spans,
        "seconds": time.perf_counter() - started,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, required=True)
    parser.add_argument("--day", type=dt.date.fromisoformat, required=True)
    args = parser.parse_args()
    print(json.dumps(run_bare(args.rows, args.day)))


if __name__ == "__main__":
    main()
