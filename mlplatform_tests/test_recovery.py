"""Recovery: re-executing a failed run from the failed step reuses the persisted upstream assets."""

import dagster as dg
import pytest

from mlplatform_tests.conftest import platform_environment

pytestmark = pytest.mark.slow
DAY = "2026-01-01"


def training_pipeline_job() -> dg.JobDefinition:
    """The platform's job as the run worker rebuilds it (settings from the environment)."""
    from mlplatform.automation.jobs import training_pipeline
    from mlplatform.config.settings import load_settings
    from mlplatform.definitions import ASSETS, CHECKS, build_resources

    defs = dg.Definitions(
        assets=ASSETS,
        asset_checks=CHECKS,
        jobs=[training_pipeline],
        resources=build_resources(load_settings()),
        executor=dg.in_process_executor,
    )
    return defs.resolve_job_def("training_pipeline")


def step_keys(instance: dg.DagsterInstance, run_id: str, event_type: dg.DagsterEventType) -> set:
    return {
        e.dagster_event.step_key
        for e in instance.all_logs(run_id)
        if e.dagster_event and e.dagster_event.event_type == event_type
    }


def test_reexecution_from_failure_reuses_persisted_upstream(tmp_path, monkeypatch):
    for key, value in platform_environment(tmp_path).items():
        monkeypatch.setenv(key, value)
    job = dg.reconstructable(training_pipeline_job)
    broken = {"ops": {"trained_model": {"config": {"folds": 0}}}}  # out of its bounds
    with dg.instance_for_test() as instance:
        with dg.execute_job(
            job, instance, run_config=broken, tags={"dagster/partition": DAY}
        ) as failed:
            assert not failed.success
        failed_steps = step_keys(instance, failed.run_id, dg.DagsterEventType.STEP_FAILURE)
        # Scoring is its own path: it ran, and failed only because this first day has no
        # champion yet (training, which would have made one, failed).
        assert failed_steps == {"trained_model", "batch_scores"}
        # An invalid hyperparameter is a settings error: failed fast, not retried.
        assert not step_keys(instance, failed.run_id, dg.DagsterEventType.STEP_UP_FOR_RETRY)
        raw_file = tmp_path / "data" / "raw_transactions" / f"{DAY}.parquet"
        raw_written = raw_file.stat().st_mtime_ns

        options = dg.ReexecutionOptions.from_failure(failed.run_id, instance)
        # The operator fixes the configuration and re-executes from the failed step.
        fixed = {"ops": {"trained_model": {"config": {"folds": 2}}}}
        with dg.execute_job(
            job,
            instance,
            run_config=fixed,
            tags={"dagster/partition": DAY},
            reexecution_options=options,
        ) as recovered:
            assert recovered.success
        ran = step_keys(instance, recovered.run_id, dg.DagsterEventType.STEP_SUCCESS)
        assert "trained_model" in ran and "batch_scores" in ran
        assert not ran & {"raw_transactions", "validated_transactions", "features"}
        assert raw_file.stat().st_mtime_ns == raw_written  # loaded, not recomputed
