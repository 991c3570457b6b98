"""One scored day's realized performance (`model_performance`) against a long history: does its
cost follow the day's rows and outcomes, not the history (issue 23: 365 days at 50,000 rows a day,
one day under 10 s)?

    OMP_NUM_THREADS=1 python -m mlplatform_tests.benchmarks.monitoring_day --histories 30,365 \\
        --rows 50000 --repeats 3

For each history length a platform's storage is written directly in the IO manager's layout
(`<base_dir>/<asset>/<day>.parquet`), with the columns and types batch_scores and outcomes write:
every day's champion scores (id, event time, score, decision, model version) and every arrival day's
joined outcomes (id, 0/1 outcome, known_at, event time, event day), each event's outcome arriving
1-14 days after it (uniform; about 1% positive, drawn from a hidden risk that each version sees
through its own noise and turns into a calibrated probability), and the measured day's shadow
scores (a challenger and the previous champion, slightly worse than the champion, so no alias
moves between repeats). The Dagster instance (SQLite, as `make dev`) holds a
materialization of each of those partitions, and a temporary MLflow SQLite registry three versions
with the tags model_performance reads (decision threshold, test ROC-AUC with its interval, test
positives and rows), `champion` on the middle one.

The measured day lies deep in the history: the last day whose 14 days of outcomes have all
arrived. Each repeat is a new process (nothing cached, its own memory peak) that runs one
`dg.materialize` of model_performance for that day, with the packaged settings (the partitions'
first day moved back to the history's); reported: the step's wall time (Dagster's step stats), the
whole call's, the process's imports, and the process's peak RSS. Writes JSON and a Markdown table
into results/.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
# The history's first day (the partitions' first day is moved there): 365 days end before today.
FIRST_DAY = dt.date(2025, 1, 1)
MAX_DELAY_DAYS = 14
# Registered versions: the previous champion, the champion, the challenger.
PREVIOUS, CHAMPION, CHALLENGER = "1", "2", "3"
THRESHOLD = 0.05
# Hidden risk -> fraud: about 1% positive.
RISK_INTERCEPT, RISK_SLOPE = -7.0, 2.4
# Each version sees the risk through this much noise, and its calibrated probability is what it
# sees; the ROC-AUC that gives (measured on 1M simulated rows) is its backtest. The champion is the
# best: no live comparison moves an alias between repeats.
VERSIONS = {PREVIOUS: (0.6, 0.902), CHAMPION: (0.5, 0.912), CHALLENGER: (0.55, 0.907)}
_NODES, _WEIGHTS = np.polynomial.hermite_e.hermegauss(24)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _day(index: int) -> dt.date:
    return FIRST_DAY + dt.timedelta(days=index)


def measured_index(days: int) -> int:
    """The last day whose outcomes have all arrived (the first, in a history shorter than that)."""
    return max(0, days - 1 - MAX_DELAY_DAYS)


def _environment(root: Path) -> dict[str, str]:
    return {
        "MLPLATFORM_SETTINGS_DIR": str(root / "settings"),
        "MLPLATFORM_DATA_DIR": str(root / "data"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{root}/mlflow.db",
        "MLPLATFORM_MLFLOW_ARTIFACTS": str(root / "artifacts"),
        "DAGSTER_HOME": str(root / "dagster_home"),
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }


def _events(rng, day: dt.date, rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The day's events: ids, times (UTC, as datetime64), the hidden risk and each outcome."""
    start = np.datetime64(day.isoformat(), "ns")
    times = start + (np.sort(rng.uniform(0, 86400, rows)) * 1e9).astype("timedelta64[ns]")
    ids = np.char.add(f"tx-{day:%Y%m%d}-", np.char.zfill(np.arange(rows).astype(str), 7))
    risk = rng.normal(size=rows)
    labels = (rng.random(rows) < _sigmoid(RISK_INTERCEPT + RISK_SLOPE * risk)).astype("int8")
    return ids.astype(object), times, risk, labels


def _scored(events, score: np.ndarray, version: str):
    return events.assign(score=score, decision=score >= THRESHOLD, model_version=version)


def _model_score(rng, risk: np.ndarray, version: str) -> np.ndarray:
    """A version's calibrated probability: the hidden risk seen through its noise, and the chance
    of fraud given what it sees (the risk's conditional normal, integrated by Gauss-Hermite)."""
    noise = VERSIONS[version][0]
    rho = 1 / np.sqrt(1 + noise**2)
    seen = (risk + noise * rng.normal(size=len(risk))) * rho
    risks = rho * seen[:, None] + np.sqrt(1 - rho**2) * _NODES[None, :]
    return _sigmoid(RISK_INTERCEPT + RISK_SLOPE * risks) @ (_WEIGHTS / _WEIGHTS.sum())


def build_history(root: Path, days: int, rows: int, seed: int = 23) -> dict[str, Any]:
    """Storage, instance and registry of `days` days at `rows` rows a day under `root`."""
    import dagster as dg
    import pandas as pd

    began = time.monotonic()
    (root / "settings").mkdir(parents=True)
    (root / "settings" / "platform.yaml").write_text(
        f'partitions:\n  start_date: "{FIRST_DAY.isoformat()}"\n  timezone: "UTC"\n'
    )
    from mlplatform.config.dataset import open_dataset
    from mlplatform.core.contract import load_contract
    from mlplatform.core.outcomes import EVENT_DAY, EVENT_TIME, KNOWN_AT, OUTCOME

    contract = load_contract(open_dataset("card_transactions").contract)
    id_column, time_column = contract.id, contract.event_time
    data = root / "data"
    for asset in ("batch_scores", "outcomes", "shadow_scores"):
        (data / asset).mkdir(parents=True)
    rng = np.random.default_rng(seed)
    measured = measured_index(days)
    # Arrival day -> the outcome records arriving on it, from the days before.
    pending: dict[int, list] = {}
    outcome_rows = positives = 0
    written: dict[str, list[str]] = {"batch_scores": [], "outcomes": [], "shadow_scores": []}
    for index in range(days):
        day = _day(index)
        ids, times, risk, labels = _events(rng, day, rows)
        events = pd.DataFrame(
            {id_column: ids, time_column: pd.DatetimeIndex(times).tz_localize("UTC")}
        )
        _scored(events, _model_score(rng, risk, CHAMPION), CHAMPION).to_parquet(
            data / "batch_scores" / f"{day}.parquet", index=False, compression="zstd"
        )
        written["batch_scores"].append(day.isoformat())
        if index == measured:
            shadows = [
                _scored(events, _model_score(rng, risk, version), version).assign(role=role)
                for version, role in ((CHALLENGER, "challenger"), (PREVIOUS, "previous_champion"))
            ]
            pd.concat(shadows, ignore_index=True).to_parquet(
                data / "shadow_scores" / f"{day}.parquet", index=False, compression="zstd"
            )
            written["shadow_scores"].append(day.isoformat())
        delays = rng.integers(1, MAX_DELAY_DAYS + 1, rows)
        for delay in range(1, MAX_DELAY_DAYS + 1):
            chosen = delays == delay
            pending.setdefault(index + delay, []).append(
                pd.DataFrame(
                    {
                        id_column: ids[chosen],
                        OUTCOME: labels[chosen],
                        EVENT_TIME: times[chosen],
                        EVENT_DAY: day.isoformat(),
                    }
                )
            )
        # Today's arrivals are complete: every event they name came on an earlier day.
        arrived = pending.pop(index, [])
        frame = (
            pd.concat(arrived, ignore_index=True)
            if arrived
            else pd.DataFrame(
                {
                    id_column: pd.Series(dtype=object),
                    OUTCOME: pd.Series(dtype="int8"),
                    EVENT_TIME: pd.Series(dtype="datetime64[ns]"),
                    EVENT_DAY: pd.Series(dtype=object),
                }
            )
        )
        start = pd.Timestamp(day.isoformat(), tz="UTC")
        known_at = start + pd.to_timedelta(rng.uniform(0, 86399, len(frame)), unit="s")
        frame.insert(2, KNOWN_AT, known_at)
        frame[EVENT_TIME] = frame[EVENT_TIME].dt.tz_localize("UTC")
        frame.to_parquet(data / "outcomes" / f"{day}.parquet", index=False, compression="zstd")
        written["outcomes"].append(day.isoformat())
        outcome_rows += len(frame)
        positives += int(frame[OUTCOME].sum())
    generated = time.monotonic() - began

    # The instance: a materialization of every partition written, as the daily runs left them.
    (root / "dagster_home").mkdir()
    (root / "dagster_home" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    with dg.DagsterInstance.from_config(str(root / "dagster_home")) as instance:
        for asset, partitions in written.items():
            for partition in partitions:
                instance.report_runless_asset_event(
                    dg.AssetMaterialization(
                        asset, partition=partition, metadata={"dagster/row_count": rows}
                    )
                )
    _register(root, contract.name)
    return {
        "days": days,
        "rows_per_day": rows,
        "first_day": _day(0).isoformat(),
        "last_day": _day(days - 1).isoformat(),
        "measured_day": _day(measured).isoformat(),
        "outcome_rows": outcome_rows,
        "outcome_positives": positives,
        "bytes_on_disk": sum(f.stat().st_size for f in data.rglob("*.parquet")),
        "build_seconds": round(time.monotonic() - began, 1),
        "generate_seconds": round(generated, 1),
    }


def _register(root: Path, contract_name: str) -> None:
    """Three versions with the tags model_performance reads; `champion` on the middle one."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{root}/mlflow.db")
    name = f"{contract_name}_classifier"
    client.create_registered_model(name)
    source = root / "artifacts" / "model"
    source.mkdir(parents=True)
    for version, (_, auc) in sorted(VERSIONS.items()):
        created = client.create_model_version(
            name,
            source=str(source),
            tags={
                "decision_threshold": str(THRESHOLD),
                "test_roc_auc": f"{auc:.6f}",
                "test_roc_auc_interval": f"[{auc - 0.017:.4f}, {auc + 0.017:.4f}]",
                "test_positives": "400",
                "test_rows": "52500",
            },
        )
        assert str(created.version) == version, (created.version, version)
    client.set_registered_model_alias(name, "champion", CHAMPION)
    client.set_registered_model_alias(name, "challenger", CHALLENGER)


def _rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def measure(day: str) -> dict[str, Any]:
    """One materialization of model_performance[day] in this process (its environment names the
    history): call and step wall time, imports, peak RSS."""
    began = time.monotonic()
    import dagster as dg

    from mlplatform.config.settings import load_settings
    from mlplatform.definitions import ASSETS, MONITORING_ASSETS, build_resources

    resources = build_resources(load_settings())
    imported = time.monotonic() - began
    with dg.DagsterInstance.get() as instance:
        rss_before = _rss_bytes()
        load = os.getloadavg()[0]
        called, cpu = time.monotonic(), time.process_time()
        result = dg.materialize(
            [*ASSETS, *MONITORING_ASSETS],
            selection=["model_performance"],
            partition_key=day,
            resources=resources,
            instance=instance,
            raise_on_error=False,
        )
        call, call_cpu = time.monotonic() - called, time.process_time() - cpu
        (step,) = [s for s in instance.get_run_step_stats(result.run_id)]
        metadata = {}
        for event in result.get_asset_materialization_events():
            metadata = {k: v.value for k, v in event.materialization.metadata.items()}
        checks = {
            e.check_name: (
                "inconclusive"
                if e.metadata.get("inconclusive") and e.metadata["inconclusive"].value
                else "passed"
                if e.passed
                else "failed"
            )
            for e in result.get_asset_check_evaluations()
        }
    return {
        "ok": result.success,
        "call_seconds": round(call, 3),
        # On a shared machine wall time waits for the cores: the process's own CPU time, and the
        # machine's load (1-minute average) as the call began.
        "call_cpu_seconds": round(call_cpu, 3),
        "load_average": round(load, 2),
        "step_seconds": round(step.end_time - step.start_time, 3),
        "imports_seconds": round(imported, 3),
        "rss_before_call_bytes": rss_before,
        # Linux reports the high-water mark in KiB.
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "scored_rows": metadata.get("realized_scored_rows"),
        "labelled_rows": metadata.get("realized_labelled_rows"),
        "positives": metadata.get("realized_positives"),
        "realized_roc_auc": metadata.get("realized_roc_auc"),
        "estimated_roc_auc": metadata.get("estimated_roc_auc"),
        "coverage": metadata.get("realized_coverage"),
        "versions_judged": metadata.get("dagster/row_count"),
        "alias_move": metadata.get("alias_move"),
        "checks": checks,
    }


def measure_in_new_process(root: Path, day: str) -> dict[str, Any]:
    env = {**os.environ, **_environment(root), "OMP_NUM_THREADS": _threads()}
    began = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "mlplatform_tests.benchmarks.monitoring_day", "--measure", day],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        cwd=Path(__file__).resolve().parents[2],
    )
    if done.returncode != 0:
        raise RuntimeError(f"measuring {day} under {root} failed:\n{done.stderr[-4000:]}")
    measured = json.loads(done.stdout.strip().splitlines()[-1])
    measured["process_seconds"] = round(time.monotonic() - began, 3)
    return measured


def _threads() -> str:
    return os.environ.get("OMP_NUM_THREADS", "1")


def run(histories: list[int], rows: int, repeats: int, folder: Path) -> dict[str, Any]:
    results = []
    for days in histories:
        root = folder / f"history-{days}"
        print(f"writing {days} days at {rows:,} rows a day ...", flush=True)
        built = build_history(root, days, rows)
        print(f"  {built['build_seconds']} s, {built['bytes_on_disk'] / 1e6:.0f} MB", flush=True)
        runs = []
        for repeat in range(repeats):
            runs.append(measure_in_new_process(root, built["measured_day"]))
            print(f"  run {repeat + 1}: step {runs[-1]['step_seconds']} s, call "
                  f"{runs[-1]['call_seconds']} s, peak RSS "
                  f"{runs[-1]['peak_rss_bytes'] / 2**20:.0f} MiB", flush=True)  # fmt: skip
        results.append(
            {
                **built,
                "runs": runs,
                "median_step_seconds": statistics.median(r["step_seconds"] for r in runs),
                "median_call_seconds": statistics.median(r["call_seconds"] for r in runs),
                "median_call_cpu_seconds": statistics.median(r["call_cpu_seconds"] for r in runs),
                "median_process_seconds": statistics.median(r["process_seconds"] for r in runs),
                "median_peak_rss_bytes": int(statistics.median(r["peak_rss_bytes"] for r in runs)),
                "all_ok": all(r["ok"] for r in runs),
            }
        )
    return {
        "rows_per_day": rows,
        "repeats": repeats,
        "target_seconds": 10,
        "histories": results,
        "environment": {
            "python": platform.python_version(),
            "omp_num_threads": _threads(),
            "cpus": os.cpu_count(),
            "date": dt.date.today().isoformat(),
        },
    }


def markdown(report: dict[str, Any]) -> str:
    lines = [
        f"One scored day's model_performance, {report['rows_per_day']:,} rows a day, median of "
        f"{report['repeats']} (each a new process; OMP_NUM_THREADS="
        f"{report['environment']['omp_num_threads']}); target: under "
        f"{report['target_seconds']} s at 365 days.",
        "",
        "| history | day measured | scored / labelled / positive rows | step s "
        "| materialize call s (CPU s) | process s (with imports) | peak RSS MiB | load | checks |",
        "| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for h in report["histories"]:
        first = h["runs"][0]
        checks = ", ".join(f"{k} {v}" for k, v in sorted(first["checks"].items()))
        lines.append(
            f"| {h['days']} days | {h['measured_day']} "
            f"| {first['scored_rows']:,} / {first['labelled_rows']:,} / {first['positives']:,} "
            f"| {h['median_step_seconds']:.2f} | {h['median_call_seconds']:.2f} "
            f"({h['median_call_cpu_seconds']:.2f}) | {h['median_process_seconds']:.1f} "
            f"| {h['median_peak_rss_bytes'] / 2**20:.0f} "
            f"| {', '.join(str(r['load_average']) for r in h['runs'])} | {checks} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--histories", default="30,365", help="days of history, comma-separated")
    parser.add_argument("--rows", type=int, default=50_000, help="rows scored a day")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--keep", type=Path, default=None, help="write the histories here")
    parser.add_argument("--measure", metavar="DAY", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:
        print(json.dumps(measure(args.measure)))
        return 0
    histories = [int(days) for days in args.histories.split(",")]
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
        report = run(histories, args.rows, args.repeats, args.keep)
    else:
        with tempfile.TemporaryDirectory() as folder:
            report = run(histories, args.rows, args.repeats, Path(folder))
    args.out.mkdir(parents=True, exist_ok=True)
    days = args.histories.replace(",", "-")
    stem = f"{dt.date.today().isoformat()}-monitoring-day-{days}d-{args.rows}"
    (args.out / f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n")
    table = markdown(report)
    (args.out / f"{stem}.md").write_text(table)
    print(table)
    return 0 if all(h["all_ok"] for h in report["histories"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
