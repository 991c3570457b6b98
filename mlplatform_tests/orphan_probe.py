"""A run worker for the orphan-step test: one step, forked from the platform's forkserver, that
writes its pid, then would write again after a long wait (unless it ends with its worker).

Run as `python -m mlplatform_tests.orphan_probe <folder> [orphan_probe|pooled_probe]`, with
DAGSTER_HOME set; `pooled_probe` runs the same step in the `training` pool.
"""

import os
import sys
import time
from pathlib import Path

import dagster as dg

from mlplatform.automation.execution import job_executor

# Long enough for the test to kill the worker and see the step gone well before this write.
WRITES_AFTER_SECONDS = 20


def write_wait_write(folder: Path) -> None:
    (folder / "step.pid").write_text(str(os.getpid()))
    time.sleep(WRITES_AFTER_SECONDS)
    (folder / "written_after_the_worker_died").write_text("a write for a dead run")


@dg.op(config_schema={"folder": str})
def outlives_its_worker(context: dg.OpExecutionContext) -> None:
    write_wait_write(Path(context.op_config["folder"]))


@dg.job(executor_def=job_executor())
def orphan_probe():
    outlives_its_worker()


@dg.op(config_schema={"folder": str}, pool="training")
def holds_the_training_slot(context: dg.OpExecutionContext) -> None:
    write_wait_write(Path(context.op_config["folder"]))


@dg.job(executor_def=job_executor())
def pooled_probe():
    holds_the_training_slot()


if __name__ == "__main__":
    folder, job = sys.argv[1], (sys.argv[2] if len(sys.argv) > 2 else "orphan_probe")
    op = {"orphan_probe": "outlives_its_worker", "pooled_probe": "holds_the_training_slot"}[job]
    with dg.DagsterInstance.get() as instance:
        dg.execute_job(
            dg.reconstructable(orphan_probe if job == "orphan_probe" else pooled_probe),
            instance=instance,
            run_config={"ops": {op: {"config": {"folder": folder}}}},
        )
