"""The command line a user types, against a temporary DAGSTER_HOME."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from mlplatform_tests.conftest import platform_environment

PROJECT = Path(__file__).resolve().parents[1]
DAGSTER = str(Path(sys.executable).with_name("dagster"))


@pytest.fixture
def cli_env(tmp_path) -> dict[str, str]:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(PROJECT / "dagster.yaml", home / "dagster.yaml")
    return {
        **os.environ,
        **platform_environment(tmp_path),
        "DAGSTER_HOME": str(home),
    }


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [DAGSTER, *args], cwd=PROJECT, env=env, capture_output=True, text=True, timeout=600
    )


def test_definitions_validate(cli_env):
    result = run(["definitions", "validate", "-w", "workspace.yaml"], cli_env)
    assert result.returncode == 0, result.stdout + result.stderr


# Materializing every asset for a day from the CLI is the README's own example, run as written by
# test_readme_commands.py (every asset written for the day, gates passed, no preview or beta
# warning printed).


def test_backfill_over_a_date_range_queues_one_run_per_day(cli_env):
    result = run(
        ["job", "backfill", "-w", "workspace.yaml", "-j", "training_pipeline",
         "--from", "2026-03-01", "--to", "2026-03-03", "--noprompt"],
        cli_env,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    with dg.DagsterInstance.from_config(cli_env["DAGSTER_HOME"]) as instance:
        runs = instance.get_runs(dg.RunsFilter(job_name="training_pipeline"))
    # Queued for the daemon, which launches them (tests/test_daemon.py shows it running runs).
    assert sorted(r.tags["dagster/partition"] for r in runs) == [
        "2026-03-01", "2026-03-02", "2026-03-03",
    ]  # fmt: skip
    assert {r.status for r in runs} == {dg.DagsterRunStatus.QUEUED}
    assert len({r.tags["dagster/backfill"] for r in runs}) == 1


def test_instance_settings_limit_concurrency_and_retry_crashes(cli_env):
    """dagster.yaml as Dagster reads it: one run per partition at a time, one training at a time,
    crashed runs retried but not asset failures, run monitoring on."""
    with dg.DagsterInstance.from_config(cli_env["DAGSTER_HOME"]) as instance:
        # The queued-run daemon reads the instance's `concurrency` settings.
        queue = instance.get_concurrency_config().run_queue_config
        assert queue.max_concurrent_runs == 2
        assert {
            "key": "dagster/partition",
            "value": {"applyLimitPerUniqueValue": True},
            "limit": 1,
        } in queue.tag_concurrency_limits
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 1
        assert instance.run_retries_enabled and instance.run_retries_max_retries == 2
        assert instance.run_retries_retry_on_asset_or_op_failure is False
        assert instance.run_monitoring_enabled
