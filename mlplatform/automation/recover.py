"""`mlplatform recover`: end the runs whose worker is gone and free what they held, as the daemon's
run monitoring and cleanup sensors do, for an instance with no daemon running.

A run started by `dagster asset materialize` and killed with the whole command (kill -9, a closed
laptop) stays STARTED: nothing but the daemon looks at it. Its `training` pool slot stays claimed,
so the next run of that day waits on "blocked by limit for pool training" until a daemon starts.
Dagster's CLI cannot clean up before it launches (it has no hook for that), so this command does:
it asks the instance's run launcher whether each unfinished run's worker still runs
(`LocalRunLauncher.check_run_worker_health`), and for each one that does not, marks the run
FAILED, frees its pool slots and ends the MLflow runs it left RUNNING. Runs whose worker lives are
left alone, so it is safe to run at any time, also beside a daemon.
"""

import argparse
import sys
from typing import NamedTuple

import dagster as dg

from mlplatform.instance_queries import PARTITION_TAG, runs_with_dead_workers


class EndedRun(NamedTuple):
    run_id: str
    job_name: str
    partition: str | None
    why: str


def end_runs_with_dead_workers(instance: dg.DagsterInstance) -> list[EndedRun]:
    """Mark FAILED every unfinished run whose worker the run launcher says is gone, and free the
    pool slots it claimed; the runs ended. Raises `instance_queries.WorkerHealthUnknown` (a
    RuntimeError) when the run launcher cannot tell."""
    ended = []
    for run, health in runs_with_dead_workers(instance):
        why = f"Run worker is gone ({health.msg}); ended by `mlplatform recover`"
        instance.report_run_failed(run, message=why)
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        ended.append(EndedRun(run.run_id, run.job_name, run.tags.get(PARTITION_TAG), why))
    return ended


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dagster-home", default=None, help="the Dagster instance folder (default: $DAGSTER_HOME)"
    )


def run(args: argparse.Namespace) -> int:
    from mlplatform.monitoring.instance_reader import InstanceError, open_instance

    try:
        instance = open_instance(args.dagster_home)
    except InstanceError as error:
        print(f"mlplatform recover: {error}", file=sys.stderr)
        return 2
    with instance:
        ended = end_runs_with_dead_workers(instance)
    if ended:
        # Their MLflow runs, as the failed_run_cleanup sensor would end them.
        from mlplatform.config.active import SETTINGS
        from mlplatform.definitions import build_resources

        mlflow = build_resources(SETTINGS)["mlflow"]
        for run_ in ended:
            left_open = mlflow.end_runs_of(run_.run_id, "FAILED")  # type: ignore[attr-defined]
            day = f" ({run_.partition})" if run_.partition else ""
            print(
                f"ended run {run_.run_id} of {run_.job_name}{day}: its worker is gone; pool slots "
                f"freed, MLflow runs set FAILED: {left_open or 'none open'}"
            )
    else:
        print("no unfinished run has lost its worker: nothing to end")
    return 0
