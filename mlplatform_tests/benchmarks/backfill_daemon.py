"""The backfill benchmark under a real dagster-daemon (issue 24), `backfill.py --daemon`: one
backfill of N generated days launched through the UI's GraphQL API on a temporary DAGSTER_HOME with
the project's dagster.yaml, one day's run killed with SIGKILL while it trains, and what came of it:
the backfill's status, each day's runs and outputs, its feature window, the killed run's retry.

The helpers of the daemon tests (test_daemon, test_backfill, test_faults) start the daemon, launch
the backfill and find a run's worker; they are imported only here, as they set the test session's
settings folder as a default in this process.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

# A day succeeded when the pipeline reached its end for it: a model registered (or refused by its
# gates, which fails the run) and the day scored.
DAY_DONE = ("registered_model_version", "batch_scores")


def machine() -> dict[str, Any]:
    import psutil

    return {
        "cores": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def code_version(project: Path) -> dict[str, Any]:
    """The commit the daemon's code came from, and the files changed beside it."""
    import subprocess

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=project, capture_output=True, text=True, check=False
        ).stdout.strip()

    return {
        "project": str(project),
        "commit": git("rev-parse", "HEAD") or None,
        "changed_files": git("status", "--porcelain", "--untracked-files=no").splitlines(),
    }


def launch_backfill_of(daemon, days: list[str], assets: list[str], backfill: str) -> str:
    """One backfill of `assets` over `days` through the UI's GraphQL API: an asset backfill (the
    asset graph's *Materialize all*, each asset over exactly these days) or a backfill of the
    `training_pipeline` job's partition set (the job page: one run per day)."""
    import subprocess
    import sys

    from mlplatform_tests.test_backfill import LAUNCH

    params: dict[str, Any] = {"fromFailure": False}
    if backfill == "asset":
        params["partitionsByAssets"] = [
            {"assetKey": {"path": [key]}, "partitions": {"range": {"start": days[0],
                                                                   "end": days[-1]}}}
            for key in assets
        ]  # fmt: skip
    else:
        params["assetSelection"] = [{"path": [key]} for key in assets]
        params["partitionNames"] = days
        params["selector"] = {
            "partitionSetName": "training_pipeline_partition_set",
            "repositorySelector": {
                "repositoryLocationName": "mlplatform",
                "repositoryName": "__repository__",
            },
        }
    result = subprocess.run(
        [sys.executable, "-c", LAUNCH, str(daemon.workspace), json.dumps(params)],
        env=daemon.env, cwd=daemon.home.parent, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    lines = [x for x in result.stdout.splitlines() if x.startswith("ANSWER ")]
    if result.returncode != 0 or not lines:
        raise RuntimeError(f"the backfill was not launched:\n{result.stdout}\n{result.stderr}")
    answer = json.loads(lines[0].removeprefix("ANSWER "))
    if answer["__typename"] != "LaunchBackfillSuccess":
        raise RuntimeError(f"the backfill was not launched: {answer}")
    return answer["backfillId"]


def backfill_runs(instance, backfill_id: str) -> list:
    """The backfill's runs and every retry of them, oldest first."""
    import dagster as dg

    records = instance.get_run_records(dg.RunsFilter(tags={"dagster/backfill": backfill_id}))
    runs = {r.dagster_run.run_id: r for r in records}
    retries = {
        run.run_id
        for record in records
        for run in (instance.get_run_group(record.dagster_run.run_id) or (None, []))[1]
    } - set(runs)
    if retries:
        for record in instance.get_run_records(dg.RunsFilter(run_ids=sorted(retries))):
            runs[record.dagster_run.run_id] = record
    return sorted(runs.values(), key=lambda r: r.create_timestamp)


def run_training(instance, env: dict[str, str], backfill_id: str, day: str):
    """The backfill's run of `day` that is training now (its trained_model step started and its
    MLflow run open), with the time its training started; None before and after."""
    import dagster as dg

    from mlplatform_tests.test_faults import mlflow_runs

    if not Path(env["MLFLOW_TRACKING_URI"].removeprefix("sqlite:///")).exists():
        return None  # left for the first step to create, as on a new deployment
    for run in instance.get_runs(
        dg.RunsFilter(
            tags={"dagster/backfill": backfill_id, "dagster/partition": day},
            statuses=[dg.DagsterRunStatus.STARTED],
        )
    ):
        started = [
            e.timestamp
            for e in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_START)
            if e.step_key == "trained_model"
        ]
        if started and any(r.info.status == "RUNNING" for r in mlflow_runs(env, run.run_id)):
            return run, min(started)
    return None


def training_over(instance, backfill_id: str, day: str) -> bool:
    """Every run of the backfill that trains `day` has ended (trained, or failed before it could
    be seen training): too late to kill one while it trains."""
    import dagster as dg

    trains = [
        run
        for run in instance.get_runs(
            dg.RunsFilter(tags={"dagster/backfill": backfill_id, "dagster/partition": day})
        )
        if run.asset_selection is None or dg.AssetKey("trained_model") in run.asset_selection
    ]
    return bool(trains) and all(run.is_finished for run in trains)


def kill_run(instance, run_id: str, how: str, training_started: float) -> dict[str, Any]:
    """SIGKILL to the run's worker alone (nothing tells its steps), or to it and every process it
    started; then how long the run's processes took to be gone."""
    import signal

    import psutil

    from mlplatform.automation.run_launcher import run_worker

    worker = run_worker(instance, run_id)
    process = psutil.Process(worker.pid)
    children = process.children(recursive=True)
    described = [
        {"pid": p.pid, "command": " ".join(p.cmdline()[:6])[:160]}
        for p in children
        if p.is_running()
    ]
    killed_at = time.time()
    for target in [process, *(children if how == "tree" else [])]:
        with contextlib.suppress(psutil.NoSuchProcess):
            target.send_signal(signal.SIGKILL)

    def alive(p) -> bool:
        try:
            return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    gone_after = None
    while time.time() < killed_at + 600:
        if not any(alive(p) for p in [process, *children]):
            gone_after = round(time.time() - killed_at, 1)
            break
        time.sleep(0.5)
    return {
        "run_id": run_id,
        "killed": "the worker alone" if how == "worker" else "the worker and its descendants",
        "worker_pid": worker.pid,
        "descendants_at_kill": described,
        "seconds_into_training": round(killed_at - training_started, 1),
        "killed_at": killed_at,
        # None: some process of the run still ran 600 s after the kill.
        "all_processes_gone_after_seconds": gone_after,
    }


def run_summary(instance, record) -> dict[str, Any]:
    import dagster as dg

    run = record.dagster_run
    logs = instance.all_logs(
        run.run_id,
        of_type={
            dg.DagsterEventType.ASSET_MATERIALIZATION,
            dg.DagsterEventType.STEP_FAILURE,
            dg.DagsterEventType.RUN_FAILURE,
        },
    )
    failures = []
    for event in logs:
        if event.dagster_event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION:
            continue
        error = getattr(event.dagster_event.event_specific_data, "error", None)
        why = error.message if error is not None else event.message
        failures.append(f"{event.step_key or 'run'}: {(why or '').strip()[:600]}")
    return {
        "run_id": run.run_id,
        "day": run.tags.get("dagster/partition"),
        "status": run.status.value,
        "retry_of": run.tags.get("dagster/parent_run_id"),
        "retry_number": run.tags.get("dagster/retry_number"),
        "created": record.create_timestamp.timestamp(),
        "started": record.start_time,
        "ended": record.end_time,
        "materialized": sorted(
            {
                e.dagster_event.asset_key.to_user_string()
                for e in logs
                if e.dagster_event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION
            }
        ),
        "failures": failures,
    }


def day_outcome(instance, day: str, assets: list[str], run_ids: set[str]) -> dict[str, Any]:
    """What the backfill's runs left for `day`: which assets, and the metadata of its newest
    features, model and registration."""
    import dagster as dg

    def records(asset: str) -> list:
        found = instance.fetch_materializations(
            dg.AssetRecordsFilter(dg.AssetKey(asset), asset_partitions=[day]), limit=20
        ).records
        return [r for r in found if r.run_id in run_ids]

    def metadata(asset: str) -> dict[str, Any]:
        found = records(asset)
        if not found:
            return {}
        return {k: v.value for k, v in found[0].asset_materialization.metadata.items()}

    materialized = [a for a in assets if records(a)]
    features = records("features")
    newest = metadata("features")
    trained, registered = metadata("trained_model"), metadata("registered_model_version")
    return {
        "day": day,
        "succeeded": all(a in materialized for a in DAY_DONE),
        "whole_selection": len(materialized) == len(assets),
        "missing": [a for a in assets if a not in materialized],
        "features_materializations": len(features),
        "window": newest.get("window"),
        "window_complete": newest.get("window_complete"),
        # Every features materialization of the day, not only the newest, on a complete window.
        "every_window_complete": bool(features)
        and all(
            r.asset_materialization.metadata["window_complete"].value is True for r in features
        ),
        "family": trained.get("model_family"),
        "test_roc_auc": trained.get("test_roc_auc"),
        "promoted": registered.get("promoted_to_champion"),
    }


def run_daemon_backfill(
    days: int,
    rows: int,
    start: dt.date | None,
    root: Path,
    *,
    backfill: str,
    kill_day: int,
    kill: str,
    timeout: float,
    poll: float,
) -> dict[str, Any]:
    """A backfill of `days` days launched through the UI's API and run by a real dagster-daemon
    (the project's dagster.yaml; the packaged settings with `rows` a day from the generator), its
    `kill_day`-th day's run killed with SIGKILL while it trains (0: none)."""
    import yaml

    settings_dir = root / "settings"
    settings_dir.mkdir()
    (settings_dir / "platform.yaml").write_text(
        yaml.safe_dump({"data_source": {"kind": "generator", "generator": {"rows_per_day": rows}}})
    )
    # This process reads the same settings (the selection, the partitions' start) as the daemon.
    os.environ["MLPLATFORM_SETTINGS_DIR"] = str(settings_dir)

    import dagster as dg
    from dagster._core.execution.backfill import BulkActionStatus

    from mlplatform.config.active import SETTINGS
    from mlplatform.definitions import ASSETS
    from mlplatform_tests.conftest import WebhookReceiver
    from mlplatform_tests.test_daemon import PROJECT, Daemon, daemon_home

    start = start or SETTINGS.partitions.start_date
    dates = [(start + dt.timedelta(days=offset)).isoformat() for offset in range(days)]
    assets = [key.to_user_string() for asset in ASSETS for key in asset.keys]
    kill_date = dates[kill_day - 1] if kill_day else None
    # The project's dagster.yaml as it is (test daemons poll run monitoring every 2 s).
    monitoring = yaml.safe_load((PROJECT / "dagster.yaml").read_text())["run_monitoring"]
    receiver = WebhookReceiver()
    at = daemon_home(
        root,
        settings={
            "MLPLATFORM_SETTINGS_DIR": str(settings_dir),
            "MLPLATFORM_ALERT_WEBHOOK_URL": receiver.url,
            # Every process imports the platform from PROJECT (the code under test), not from
            # wherever the virtual environment's editable install points.
            "PYTHONPATH": str(PROJECT),
        },
        **monitoring,
    )
    load: list[float] = []
    killed: dict[str, Any] | None = None
    print(f"instance and data under {root}", flush=True)
    began = time.monotonic()
    try:
        with Daemon.started(
            at, root / "daemon.log", kept_as="backfill-bench-daemon.log", receiver=receiver,
            landing=root,
        ) as daemon:  # fmt: skip
            daemon_ready = time.monotonic()
            backfill_id = launch_backfill_of(daemon, dates, assets, backfill)
            launched = time.monotonic()
            print(f"backfill {backfill_id} ({backfill}) of {days} days launched", flush=True)
            deadline = launched + timeout
            last_print = 0.0
            while True:
                if daemon.process.poll() is not None:
                    raise RuntimeError(f"the daemon exited with {daemon.process.returncode}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the backfill did not end within {timeout:.0f} s")
                load.append(os.getloadavg()[0])
                with daemon.instance() as instance:
                    if kill_date and killed is None:
                        training = run_training(instance, daemon.env, backfill_id, kill_date)
                        if training is not None:
                            killed = kill_run(instance, training[0].run_id, kill, training[1])
                            print(f"killed {kill_date}'s run: {killed}", flush=True)
                        elif training_over(instance, backfill_id, kill_date):
                            killed = {"missed": f"{kill_date}'s training ended before it was seen"}
                            print(killed["missed"], flush=True)
                    status = instance.get_backfill(backfill_id).status
                    # Its retries carry its tag: no need for each run's group here.
                    runs = instance.get_run_records(
                        dg.RunsFilter(tags={"dagster/backfill": backfill_id})
                    )
                unfinished = [r for r in runs if not r.dagster_run.is_finished]
                if time.monotonic() - last_print > 60:
                    last_print = time.monotonic()
                    counts: dict[str, int] = {}
                    for r in runs:
                        counts[r.dagster_run.status.value] = (
                            counts.get(r.dagster_run.status.value, 0) + 1
                        )
                    print(
                        f"{time.monotonic() - launched:6.0f} s {status.value} runs {counts} "
                        f"load {load[-1]:.1f}",
                        flush=True,
                    )
                if status != BulkActionStatus.REQUESTED and not unfinished:
                    break
                time.sleep(poll if killed or not kill_date else 2)
            ended = time.monotonic()
            # The monitoring runs the sensors launched for the last scored days: stopping the
            # daemon would fail them.
            others_settled = time.monotonic() + 600
            while time.monotonic() < others_settled:
                with daemon.instance() as instance:
                    busy = [r.run_id for r in instance.get_runs() if not r.is_finished]
                if not busy:
                    break
                time.sleep(poll)
            stopped_with = busy
    finally:
        receiver.close()

    with dg.DagsterInstance.from_config(str(at.home)) as instance:
        backfill_status = instance.get_backfill(backfill_id).status.value
        runs = [run_summary(instance, r) for r in backfill_runs(instance, backfill_id)]
        run_ids = {r["run_id"] for r in runs}
        outcomes = [day_outcome(instance, day, assets, run_ids) for day in dates]
        if killed and "run_id" in killed:
            # What ended it: run monitoring's word on the worker, the failure, the retry's launch.
            killed["after_kill"] = [
                f"+{e.timestamp - killed['killed_at']:.1f} s {e.message[:300]}"
                for e in instance.all_logs(killed["run_id"])
                if e.timestamp >= killed["killed_at"] and e.message
            ]
        others = [
            {
                "run_id": r.run_id,
                "job": r.job_name,
                "day": r.tags.get("dagster/partition"),
                "status": r.status.value,
                "by": r.tags.get("dagster/sensor_name") or r.tags.get("dagster/schedule_name"),
            }
            for r in instance.get_runs()
            if r.run_id not in run_ids
        ]
    for outcome in outcomes:
        outcome["runs"] = [
            {k: r[k] for k in ("run_id", "status", "retry_of", "materialized", "failures")}
            for r in runs
            if r["day"] == outcome["day"]
        ]
    if killed and "run_id" in killed:
        (first,) = [r for r in runs if r["run_id"] == killed["run_id"]]
        killed["status"] = first["status"]
        killed["failures"] = first["failures"]
        killed["retries"] = [
            {
                "run_id": r["run_id"],
                "status": r["status"],
                "retry_number": r["retry_number"],
                "seconds_after_kill_started": r["started"] and round(
                    r["started"] - killed["killed_at"], 1
                ),
                "seconds_after_kill_ended": r["ended"] and round(
                    r["ended"] - killed["killed_at"], 1
                ),
                "materialized": r["materialized"],
            }
            for r in runs
            if r["retry_of"] == killed["run_id"]
            or (r["retry_of"] and r["day"] == kill_date and r["created"] > killed["killed_at"])
        ]  # fmt: skip
    return {
        "mode": "daemon",
        "backfill": backfill,
        "backfill_id": backfill_id,
        "backfill_status": backfill_status,
        "days": days,
        "first_day": dates[0],
        "rows_per_day": rows,
        "assets": assets,
        "succeeded": sum(o["succeeded"] for o in outcomes),
        "whole_selection": sum(o["whole_selection"] for o in outcomes),
        "complete_windows": sum(o["every_window_complete"] for o in outcomes),
        "runs": len(runs),
        "runs_by_status": {
            s: sum(r["status"] == s for r in runs) for s in sorted({r["status"] for r in runs})
        },
        "kill_day": kill_date,
        "killed": killed,
        "seconds": {
            "daemon_start": round(daemon_ready - began, 1),
            "backfill": round(ended - launched, 1),
            "total": round(ended - began, 1),
        },
        "load_average_1m": {
            "min": round(min(load), 2),
            "median": round(sorted(load)[len(load) // 2], 2),
            "max": round(max(load), 2),
        },
        "other_runs": others,
        # Runs still unfinished when the daemon was stopped (and so failed by the stop).
        "unfinished_at_stop": stopped_with,
        "alerts": [str(m.get("text", m))[:300] for m in receiver.messages],
        "outcomes": outcomes,
        "runs_detail": runs,
        "code": code_version(PROJECT),
    }


def daemon_markdown(report: dict[str, Any]) -> str:
    killed = report["killed"] or {}
    seconds = report["seconds"]
    lines = [
        f"{'An asset' if report['backfill'] == 'asset' else 'A job'} backfill of "
        f"{report['days']} days from {report['first_day']} ({report['rows_per_day']:,} rows a "
        f"day) under dagster-daemon ended **{report['backfill_status']}**: "
        f"**{report['succeeded']} of {report['days']} days succeeded** (registered_model_version "
        f"and batch_scores materialized; the whole selection on {report['whole_selection']}); "
        f"the features of **{report['complete_windows']} of {report['days']} days were built on "
        f"a complete window** (every features materialization of the day). "
        f"{report['runs']} runs: {report['runs_by_status']}.",
        "",
    ]
    if "run_id" in killed:
        retries = ", ".join(
            f"{r['run_id'][:8]} {r['status']} (started {r['seconds_after_kill_started']} s, "
            f"ended {r['seconds_after_kill_ended']} s after the kill)"
            for r in killed["retries"]
        )
        lines += [
            f"Killed: run {killed['run_id'][:8]} of {report['kill_day']}, "
            f"{killed['seconds_into_training']} s into training, SIGKILL to {killed['killed']} "
            f"(pid {killed['worker_pid']}; {len(killed['descendants_at_kill'])} descendants); "
            f"every process of the run gone after {killed['all_processes_gone_after_seconds']} s; "
            f"the run ended {killed['status']}; retries: {retries or 'none'}.",
            "",
            *[f"    {line}" for line in killed["after_kill"]],
            "",
        ]
    elif killed:
        lines += [f"No run killed: {killed['missed']}.", ""]
    env, code, load = report["environment"], report["code"], report["load_average_1m"]
    changed = f" with {len(code['changed_files'])} files changed" if code["changed_files"] else ""
    lines += [
        f"Wall time: {seconds['backfill']:.0f} s from launch to the backfill's end "
        f"({seconds['daemon_start']:.0f} s more to start the daemon); 1-minute load average "
        f"{load['min']}-{load['max']} (median {load['median']}). Machine: {env['cores']} cores, "
        f"{env['memory_gb']} GB, Python {env['python']}, Dagster {env['dagster']}; code "
        f"{(code['commit'] or '?')[:10]}{changed}.",
        "",
        "| day | ok | runs | window | family | test ROC-AUC | promoted | missing |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for o in report["outcomes"]:
        runs = ", ".join(
            f"{r['run_id'][:8]} {r['status']}" + (" (retry)" if r["retry_of"] else "")
            for r in o["runs"]
        )
        auc = f"{o['test_roc_auc']:.4f}" if o["test_roc_auc"] is not None else "-"
        lines.append(
            f"| {o['day']} | {'yes' if o['succeeded'] else 'no'} | {runs or '-'} "
            f"| {o['window'] or '-'} | {o['family'] or '-'} | {auc} | {o['promoted']} "
            f"| {', '.join(o['missing']) or '-'} |"
        )
    failed = [r for r in report["runs_detail"] if r["failures"]]
    if failed:
        lines += ["", "Failures:", ""]
        for r in failed:
            lines.append(f"- {r['run_id'][:8]} [{r['day']}] {r['status']}:")
            lines += [f"  - {f.splitlines()[0][:300]}" for f in r["failures"]]
    if report["other_runs"]:
        lines += ["", "Runs outside the backfill (the daemon's sensors and schedules):", ""]
        lines += [
            f"- {r['run_id'][:8]} {r['job']} [{r['day']}] {r['status']} by {r['by']}"
            for r in report["other_runs"]
        ]
        if report["unfinished_at_stop"]:
            lines.append(f"- unfinished when the daemon stopped: {report['unfinished_at_stop']}")
    return "\n".join(lines) + "\n"
