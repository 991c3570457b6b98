"""A backfill of clean generated days, one run per day in date order, through the real IO managers
and an MLflow SQLite store: how many days succeed, which gates failed where, and how often the
champion moved, and each day's feature window (complete, or which days it lacked). Model gates
that judge noise as a regression show here as failed days.

    python -m mlplatform_tests.benchmarks.backfill --days 30 --rows 5000

Runs with the packaged settings (not the test session's); writes JSON and a Markdown table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


def run_backfill(days: int, rows: int, start: dt.date | None, root: Path) -> dict[str, Any]:
    import dagster as dg

    from mlplatform.config.settings import load_settings
    from mlplatform.definitions import ASSETS, CHECKS, build_resources
    from mlplatform.resources.data_source import DataSource, GeneratorConfig

    settings = load_settings(
        environ={
            "MLPLATFORM_DATA_DIR": str(root / "data"),
            "MLFLOW_TRACKING_URI": f"sqlite:///{root}/mlflow.db",
            "MLPLATFORM_MLFLOW_ARTIFACTS": str(root / "artifacts"),
        },
        root=root,
    )
    # From the partitions' first day by default, so the first windows are short by design, not
    # partial.
    start = start or settings.partitions.start_date
    resources = build_resources(settings)
    generator = settings.data_source.generator.model_dump()
    resources["data_source"] = DataSource(
        kind="generator", generator=GeneratorConfig(**{**generator, "rows_per_day": rows})
    )
    outcomes = []
    (root / "dagster_home").mkdir()
    with dg.instance_for_test(temp_dir=str(root / "dagster_home")) as instance:
        for offset in range(days):
            day = (start + dt.timedelta(days=offset)).isoformat()
            began = time.monotonic()
            result = dg.materialize(
                [*ASSETS, *CHECKS],
                partition_key=day,
                resources=resources,
                instance=instance,
                raise_on_error=False,
            )
            checks = result.get_asset_check_evaluations()
            registered = next(
                (
                    {k: v.value for k, v in e.materialization.metadata.items()}
                    for e in result.get_asset_materialization_events()
                    if e.asset_key.to_user_string() == "registered_model_version"
                ),
                {},
            )
            trained = next(
                (
                    {k: v.value for k, v in e.materialization.metadata.items()}
                    for e in result.get_asset_materialization_events()
                    if e.asset_key.to_user_string() == "trained_model"
                ),
                {},
            )
            features = next(
                (
                    {k: v.value for k, v in e.materialization.metadata.items()}
                    for e in result.get_asset_materialization_events()
                    if e.asset_key.to_user_string() == "features"
                ),
                {},
            )
            outcome = {
                "day": day,
                "success": result.success,
                "seconds": round(time.monotonic() - began, 1),
                "failed_errors": sorted(
                    c.asset_check_key.to_user_string()
                    for c in checks
                    if not c.passed and c.severity == dg.AssetCheckSeverity.ERROR
                ),
                "failed_warnings": sorted(
                    c.asset_check_key.to_user_string()
                    for c in checks
                    if not c.passed and c.severity == dg.AssetCheckSeverity.WARN
                ),
                "window": features.get("window"),
                "window_complete": features.get("window_complete"),
                "family": trained.get("model_family"),
                "test_roc_auc": trained.get("test_roc_auc"),
                "test_roc_auc_low": trained.get("test_roc_auc_low"),
                "test_positives": trained.get("test_positives"),
                "promoted": registered.get("promoted_to_champion"),
                "promotion_reason": registered.get("promotion_reason"),
            }
            outcomes.append(outcome)
            print(
                f"{day} {'ok ' if outcome['success'] else 'FAIL'} {outcome['seconds']:6.1f} s "
                f"{outcome['family']} roc_auc {outcome['test_roc_auc']} "
                f"promoted={outcome['promoted']} errors={outcome['failed_errors']} "
                f"{outcome['window']}",
                flush=True,
            )
    return {
        "days": days,
        "rows_per_day": rows,
        "succeeded": sum(o["success"] for o in outcomes),
        "promoted": sum(bool(o["promoted"]) for o in outcomes),
        "complete_windows": sum(bool(o["window_complete"]) for o in outcomes),
        "outcomes": outcomes,
    }


def markdown(report: dict[str, Any]) -> str:
    lines = [
        f"{report['succeeded']} of {report['days']} days succeeded "
        f"({report['rows_per_day']:,} rows a day); the champion moved on {report['promoted']}; "
        f"{report['complete_windows']} trained on a complete window.",
        "",
        "| day | ok | window | family | test ROC-AUC (low) | test positives | promoted "
        "| failed gates |",
        "| --- | --- | --- | --- | --- | ---: | --- | --- |",
    ]
    for o in report["outcomes"]:
        auc = (
            f"{o['test_roc_auc']:.4f} ({o['test_roc_auc_low']:.4f})"
            if o["test_roc_auc"] is not None
            else "-"
        )
        failed = ", ".join(o["failed_errors"] + [f"{w} (warn)" for w in o["failed_warnings"]])
        lines.append(
            f"| {o['day']} | {'yes' if o['success'] else 'no'} | {o['window'] or '-'} "
            f"| {o['family'] or '-'} | {auc} "
            f"| {o['test_positives'] or '-'} | {o['promoted']} | {failed or '-'} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument(
        "--start", type=dt.date.fromisoformat, default=None, help="default: the partitions' start"
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        report = run_backfill(args.days, args.rows, args.start, Path(folder))
    report["environment"] = {
        "python": platform.python_version(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "date": dt.date.today().isoformat(),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"{dt.date.today().isoformat()}-backfill-{args.days}d-{args.rows}"
    (args.out / f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n")
    table = markdown(report)
    (args.out / f"{stem}.md").write_text(table)
    print(table)
    return 0 if report["succeeded"] >= args.days - 1 else 1


if __name__ == "__main__":
    raise SystemExit(main())
