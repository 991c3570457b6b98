"""The local instance's run launcher: Dagster's DefaultRunLauncher, which also tells run monitoring
when a run's worker process is gone.

DefaultRunLauncher (1.13.27) does not support `check_run_worker_health`, so run monitoring cannot
see a dead worker. A daemon-launched run is still ended (its code server notices its child exit),
but a run started by `dagster asset materialize` / `dagster job execute` and killed stays STARTED
until its maximum runtime: for hours it holds its pool slots and its partition. Every run records
the pid of the process that runs it in its RUN_START event; that process, on this machine (the
local instance is SQLite under DAGSTER_HOME: one machine), answers whether the run is alive. With
run monitoring on, a dead worker's run is marked FAILED within a poll interval, and
`free_slots_after_run_end_seconds` then frees its slots.

Imported whenever the instance loads (dagster.yaml names it): nothing here loads the settings.
"""

from __future__ import annotations

import dagster as dg

from mlplatform.core.processes import HOST, process_is_alive
from mlplatform.instance_queries import CheckRunHealthResult, RunWorker, WorkerStatus, run_worker

__all__ = ["LocalRunLauncher", "RunWorker", "run_worker"]


class LocalRunLauncher(dg.DefaultRunLauncher):
    """DefaultRunLauncher, plus the health of a run's worker process for run monitoring."""

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: dg.DagsterRun) -> CheckRunHealthResult:
        worker = run_worker(self._instance, run.run_id)
        if worker is None:
            # Not started yet: run monitoring's start timeout covers it.
            return CheckRunHealthResult(WorkerStatus.RUNNING, "no RUN_START event yet")
        if process_is_alive(worker.pid, active_at=worker.started_at):
            return CheckRunHealthResult(WorkerStatus.RUNNING)
        return CheckRunHealthResult(
            WorkerStatus.FAILED,
            f"its run worker (pid {worker.pid} on {HOST}) is gone: killed, or its host restarted",
        )
