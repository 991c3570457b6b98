"""A run worker for the orphan-step test: one step, forked from the platform's forkserver, that
writes its pid, then would write again after a long wait (unless it ends with its worker).

Run as `python -m mlplatform_tests.orphan_probe <folder>`, with DAGSTER_HOME set.
"""

import os
import sys
import time
from pathlib import Path

import dagster as dg

from mlplatform.automation.execution import job_executor

# Long enough for the test to kill the worker and see the step gone well before this write.
WRITES_AFTER_SECONDS = 20


@dg.op(config_schema={"folder": str})
def outlives_its_worker(context: dg.OpExecutionContext) -> None:
    folder = Path(context.op_config["folder"])
    (folder / "step.pid").write_text(str(os.getpid()))
    time.sleep(WRITES_AFTER_SECONDS)
    (folder / "written_after_the_worker_died").write_text("a write for a dead run")


@dg.job(executor_def=job_executor())
def orphan_probe():
    outlives_its_worker()


if __name__ == "__main__":
    folder = sys.argv[1]
    with dg.DagsterInstance.get() as instance:
        dg.execute_job(
            dg.reconstructable(orphan_probe),
            instance=instance,
            run_config={"ops": {"outlives_its_worker": {"config": {"folder": folder}}}},
        )
