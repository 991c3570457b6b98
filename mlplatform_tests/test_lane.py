"""Scoring waits for the run's own model steps, their retries included (issue 24.3), and records
why when they finally failed."""

import json
from pathlib import Path

import dagster as dg
import pytest

from mlplatform.stages.lane import model_step_keys, step_states
from mlplatform_tests import lane_probe


def test_a_step_with_no_event_is_pending_unless_its_upstream_failed():
    upstream = {
        "features": set(),
        "model": {"features"},
        "checks": {"model"},
        "register": {"checks"},
    }
    assert step_states({"features": "STEP_SUCCESS", "model": "STEP_UP_FOR_RETRY"}, upstream) == {
        "features": "succeeded",
        "model": "pending",
        "checks": "pending",
        "register": "pending",
    }
    assert step_states({"features": "STEP_SUCCESS", "model": "STEP_FAILURE"}, upstream) == {
        "features": "succeeded",
        "model": "failed",
        "checks": "not executed",
        "register": "not executed",
    }
    # A step that ran after being skipped upstream is what its own last event says.
    assert step_states({"model": "STEP_SKIPPED"}, {"model": set()}) == {"model": "skipped"}


def test_the_platform_s_scoring_waits_for_training_its_gates_and_registration():
    from mlplatform.definitions import defs

    job = defs.resolve_job_def("training_pipeline")
    tags = {node.name: node.tags for node in job.graph.nodes}
    waited_for = set(model_step_keys(tags))
    assert {"trained_model", "registered_model_version"} <= waited_for
    assert any("trained_model" in name and "check" in name for name in waited_for), waited_for
    assert not waited_for & {"batch_scores", "shadow_scores", "features", "raw_transactions"}


def run_probe(tmp_path: Path, job_factory, **config) -> tuple[bool, list[str]]:
    run_config = {
        "ops": {
            name: {"config": {"folder": str(tmp_path), **config}}
            for name in ("model", "registration", "scores")
        }
    }
    with dg.instance_for_test() as instance:
        with dg.execute_job(
            dg.reconstructable(job_factory), instance=instance, run_config=run_config
        ) as result:
            success, run_id = result.success, result.run_id
        retries = [
            e.step_key
            for e in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_UP_FOR_RETRY)
        ]
    return success, retries


def stamps(tmp_path: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in tmp_path.glob("*.json")}


@pytest.mark.parametrize(
    "job_factory", [lane_probe.lane_probe_job, lane_probe.lane_probe_in_process_job]
)
def test_scoring_waits_while_the_model_step_waits_for_its_retry(tmp_path, job_factory):
    success, retries = run_probe(tmp_path, job_factory)
    assert success
    done = stamps(tmp_path)
    # Without the wait, scoring ran inside the model's retry delay, before the registration.
    assert done["scores"]["at"] > done["registration"]["at"] > done["model"]["at"]
    assert done["scores"]["reason"] is None
    assert "model" in retries and "scores" in retries


def test_scoring_goes_ahead_with_the_reason_when_the_model_failed_for_good(tmp_path):
    success, _ = run_probe(tmp_path, lane_probe.lane_probe_job, model_fails_for_good=True)
    assert not success
    done = stamps(tmp_path)
    assert set(done) == {"scores"}
    assert done["scores"]["reason"] == (
        "this run's model steps did not all succeed (model failed, registration not executed)"
    )
