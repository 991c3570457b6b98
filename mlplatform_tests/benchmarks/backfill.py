"""A backfill of clean generated days, one run per day in date order, through the real IO managers
and an MLflow SQLite store: how many days succeed, which gates failed where, and how often the
champion moved, and each day's feature window (complete, or which days it lacked). Model gates
that judge noise as a regression show here as failed days.

    python -m mlplatform_tests.benchmarks.backfill --days 30 --rows 5000

With --daemon (issue 24), the same days as one backfill launched through the UI's API and run by a
real dagster-daemon on a temporary DAGSTER_HOME with the project's dagster.yaml: an asset backfill
(the asset graph's *Materialize all*) or, with --backfill job, one of the `training_pipeline` job.
The run of the --kill-day'th day (default: the middle one) is killed with SIGKILL while it trains
(its worker alone, or with --kill tree every process of the run); the report says how the backfill
ended, which days succeeded on a complete window, every run of each day, the killed run's retry,
the wall time and the machine. `make backfill-bench` runs it at 30 days of 5,000 rows.

    python -m mlplatform_tests.benchmarks.backfill --daemon --days 30 --rows 5000 --kill-day 15

Runs with the packaged settings (not the test session's) but the rows per day; writes JSON and a
Markdown table to results/. Nothing is asserted on time.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
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
    parser.add_argument("--daemon", action="store_true", help="one backfill under dagster-daemon")
    parser.add_argument("--backfill", choices=("asset", "job"), default="asset")
    parser.add_argument(
        "--kill-day", type=int, default=None,
        help="the day (1 to --days) whose run is killed while training; 0: none; default: middle",
    )  # fmt: skip
    parser.add_argument(
        "--kill", choices=("worker", "tree"), default="worker",
        help="SIGKILL to the run's worker alone, or to it and every process it started",
    )  # fmt: skip
    parser.add_argument("--timeout", type=float, default=4 * 3600, help="seconds")
    parser.add_argument("--poll", type=float, default=10, help="seconds between looks")
    parser.add_argument(
        "--keep", action="store_true",
        help="keep the instance, data and logs (kept anyway when a day failed)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    kill_day = args.days // 2 if args.kill_day is None else args.kill_day
    if not args.daemon and args.kill_day:
        parser.error("--kill-day needs --daemon")
    if not 0 <= kill_day <= args.days:
        parser.error(f"--kill-day: 0 to {args.days}")
    environment = {
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "date": dt.date.today().isoformat(),
    }
    if not args.daemon:
        with tempfile.TemporaryDirectory() as folder:
            report = run_backfill(args.days, args.rows, args.start, Path(folder))
        report["environment"] = {"python": platform.python_version(), **environment}
        stem = f"{dt.date.today().isoformat()}-backfill-{args.days}d-{args.rows}"
        write(args.out, stem, report, markdown(report))
        return 0 if report["succeeded"] >= args.days - 1 else 1

    import dagster

    from mlplatform_tests.benchmarks.backfill_daemon import (
        daemon_markdown,
        machine,
        run_daemon_backfill,
    )

    root = Path(tempfile.mkdtemp(prefix="backfill-bench-"))
    report = run_daemon_backfill(
        args.days, args.rows, args.start, root, backfill=args.backfill, kill_day=kill_day,
        kill=args.kill, timeout=args.timeout, poll=args.poll,
    )  # fmt: skip
    report["environment"] = {
        **machine(),
        "dagster": dagster.__version__,
        # The daemon's processes train on one thread (test_daemon.instance_environment).
        **environment,
        "omp_num_threads": "1",
    }
    stem = f"{dt.date.today().isoformat()}-backfill-daemon-{args.backfill}-{args.days}d-{args.rows}"
    write(args.out, stem, report, daemon_markdown(report))
    ok = report["succeeded"] == args.days
    if ok and not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    else:
        print(f"kept: {root} (instance in home/, daemon log daemon.log, data in data/)")
    return 0 if ok else 1


def write(out: Path, stem: str, report: dict[str, Any], table: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    (out / f"{stem}.md").write_text(table)
    print(table)


if __name__ == "__main__":
    raise SystemExit(main())
