"""The protocol's acceptance checklists, evaluated from the live system: checklist 1 on the
platform's own Definitions (a new asset without a description, owner, retry policy or declared
needs fails CI with its name), checklist 2 on real runs in a temporary instance, checklist 3 on
monitoring files present or not."""

import json
from pathlib import Path

import dagster as dg
import pytest

from mlplatform.definitions import defs
from mlplatform.reporting.acceptance import (
    checklist_one,
    checklist_three,
    checklist_two,
    pipeline_definition_findings,
    step_needs,
)

# What checklist one asks of an asset besides a description: for assets meant to fail on one thing.
WELL_FORMED = {
    "owners": ["team:ml-platform"],
    "retry_policy": dg.RetryPolicy(max_retries=1),
    "kinds": {"python"},
    "op_tags": {
        "dagster-k8s/config": {
            "container_config": {"resources": {"requests": {"cpu": "1", "memory": "1Gi"}}}
        }
    },
}


def test_every_asset_passes_checklist_one():
    assert [str(f) for f in pipeline_definition_findings(defs)] == []
    assert checklist_one(defs).status == "passed"


def test_a_careless_asset_is_named():
    @dg.asset(deps=["validated_transactions"])
    def careless() -> None:
        return None

    extended = dg.Definitions.merge(defs, dg.Definitions(assets=[careless]))
    findings = {str(f) for f in pipeline_definition_findings(extended)}
    assert {
        "careless: no description",
        "careless: no owner",
        "careless: no retry policy",
        "careless: no compute request for cpu and memory (op tag dagster-k8s/config)",
        "careless: no kinds (what its step runs on)",
    } <= findings
    assert not any(f.startswith("raw_transactions") for f in findings)
    checklist = checklist_one(extended)
    assert checklist.status == "failed"
    failed = {item.name: item.detail for item in checklist.items if item.status == "failed"}
    assert "careless: no retry policy" in failed["every asset has a retry policy"]
    assert "every asset has a description" in failed
    assert "no cycles" not in failed


def test_a_dependency_on_an_undefined_asset_is_named():
    @dg.asset(
        deps=["nonexistent"],
        description="Depends on an asset nobody defines.",
        **WELL_FORMED,
    )
    def orphan() -> None:
        return None

    extended = dg.Definitions.merge(defs, dg.Definitions(assets=[orphan]))
    findings = [str(f) for f in pipeline_definition_findings(extended)]
    assert findings == ["orphan: depends on undefined assets ['nonexistent']"]


def test_resource_needs_must_be_provided():
    @dg.asset(
        description="Reads a feature store nobody configured.",
        **WELL_FORMED,
        required_resource_keys={"feature_store"},
        io_manager_key="lake_io_manager",
    )
    def needy() -> None:
        return None

    extended = dg.Definitions.merge(defs, dg.Definitions(assets=[needy]))
    (finding,) = pipeline_definition_findings(extended)
    assert finding.asset == "(definitions)" and finding.problem.startswith("do not load")
    assert "'feature_store' required by op 'needy' was not provided" in finding.problem
    checklist = checklist_one(extended)
    assert checklist.status == "failed"
    assert [i.name for i in checklist.items if i.status == "failed"] == [
        "the definitions load (every resource and IO manager provided)"
    ]


def test_step_needs_name_resources_pool_and_compute():
    needs = {n.asset: n for n in step_needs(defs)}
    assert set(needs) == {
        "raw_transactions", "validated_transactions", "quarantined_transactions", "features",
        "trained_model", "registered_model_version", "batch_scores", "shadow_scores",
        "outcomes", "quarantined_outcomes", "model_performance",
    }  # fmt: skip
    training = needs["trained_model"]
    assert training.pool == "training"
    assert "mlflow" in training.resources
    assert training.io_manager == "json_io_manager"
    assert set(training.compute_requests) == {"cpu", "memory"}
    assert "data_source" in needs["raw_transactions"].resources


# Checklist 2: real runs of tiny jobs in a temporary instance.


@dg.op
def succeeds() -> int:
    return 1


@dg.op
def fails() -> None:
    raise ValueError("deliberately broken")


@dg.op
def after(value: int) -> int:
    return value + 1


@dg.job
def good_job():
    after(succeeds())


@dg.job
def bad_job():
    fails()
    after(succeeds())


@dg.job(tags={"dagster/max_runtime": "0.000001"})
def over_budget_job():
    succeeds()


@dg.job
def never_run_job():
    succeeds()


def item_statuses(checklist) -> dict[str, str]:
    return {item.name: item.status for item in checklist.items}


def test_checklist_two_reads_the_last_run_of_every_job():
    small = dg.Definitions(jobs=[good_job, bad_job, over_budget_job, never_run_job])
    with dg.instance_for_test() as instance:
        # An earlier failure of good_job does not count: only its last run does.
        bad_job.execute_in_process(instance=instance, raise_on_error=False)
        assert good_job.execute_in_process(instance=instance).success
        assert not bad_job.execute_in_process(instance=instance, raise_on_error=False).success
        over_budget_job.execute_in_process(instance=instance)
        checklist = checklist_two(instance, small, max_runtime_seconds=3600)

    statuses = item_statuses(checklist)
    assert statuses["good_job: last run succeeded"] == "passed"
    assert statuses["good_job: all steps done"] == "passed"
    assert statuses["good_job: within the time budget"] == "passed"
    assert statuses["bad_job: last run succeeded"] == "failed"
    assert statuses["bad_job: all steps done"] == "failed"
    assert statuses["over_budget_job: last run succeeded"] == "passed"
    assert statuses["over_budget_job: within the time budget"] == "failed"
    assert statuses["never_run_job: last run"] == "missing"
    assert checklist.status == "failed"
    details = {item.name: item.detail for item in checklist.items}
    assert "not done: fails" in details["bad_job: all steps done"]
    assert details["good_job: all steps done"] == "2/2 steps succeeded"


def test_checklist_two_passes_only_with_evidence():
    small = dg.Definitions(jobs=[good_job])
    with dg.instance_for_test() as instance:
        assert checklist_two(instance, small, max_runtime_seconds=3600).status == "incomplete"
        good_job.execute_in_process(instance=instance)
        assert checklist_two(instance, small, max_runtime_seconds=3600).status == "passed"


# Checklist 3: monitoring files present, absent or broken.


def write_monitoring(folder: Path, dashboard: str) -> None:
    (folder / "prometheus").mkdir(parents=True)
    (folder / "grafana").mkdir()
    (folder / "prometheus" / "prometheus.yml").write_text(
        "scrape_configs:\n  - job_name: mlplatform\n    static_configs: [{targets: [x:9464]}]\n"
    )
    (folder / "prometheus" / "alert_rules.yml").write_text(
        "groups:\n  - name: g\n    rules:\n      - alert: RunFailed\n        expr: up == 0\n"
    )
    (folder / "grafana" / "dashboard.json").write_text(dashboard)


def test_checklist_three_with_every_monitoring_part(tmp_path):
    write_monitoring(tmp_path, json.dumps({"title": "runs", "panels": [{"type": "timeseries"}]}))
    with dg.instance_for_test() as instance:
        checklist = checklist_three(
            instance, defs, tmp_path, environ={"MLPLATFORM_ALERT_WEBHOOK_URL": "http://x"}
        )
    assert item_statuses(checklist) == {
        "metrics: exporter": "passed",
        "metrics: Prometheus scrape config": "passed",
        "logging: structured (JSON) logs": "passed",
        "logging: step logs kept": "passed",
        "alerts: alert rules": "passed",
        "alerts: failure alert sensor": "passed",
        "alerts: delivery": "passed",
        "dashboard: Grafana dashboard": "passed",
        "history: runs kept": "passed",
        "history: run-history report": "passed",
    }
    assert checklist.status == "passed"


def test_checklist_three_reports_absent_files_as_missing(tmp_path):
    with dg.instance_for_test() as instance:
        checklist = checklist_three(instance, defs, tmp_path / "nothing_here", environ={})
    statuses = item_statuses(checklist)
    for name in (
        "metrics: Prometheus scrape config",
        "alerts: alert rules",
        "dashboard: Grafana dashboard",
        "alerts: delivery",
    ):
        assert statuses[name] == "missing", name
    assert "failed" not in statuses.values()
    assert checklist.status == "incomplete"


def test_checklist_three_fails_a_broken_dashboard(tmp_path):
    write_monitoring(tmp_path, "{not json")
    with dg.instance_for_test() as instance:
        checklist = checklist_three(instance, defs, tmp_path, environ={})
    assert item_statuses(checklist)["dashboard: Grafana dashboard"] == "failed"
    assert checklist.status == "failed"


@pytest.mark.parametrize("status", ["passed", "failed", "incomplete"])
def test_checklist_markdown_names_its_status(status):
    from mlplatform.reporting.acceptance import ChecklistResult, Item

    items = {
        "passed": [Item("a", "passed")],
        "failed": [Item("a", "passed"), Item("b", "failed", "x|y")],
        "incomplete": [Item("a", "passed"), Item("b", "missing")],
    }[status]
    checklist = ChecklistResult(2, "execution", items)
    assert checklist.status == status
    assert f"— **{status}**" in checklist.to_markdown()
    assert "x\\|y" in checklist.to_markdown() or status != "failed"


def test_mlplatform_acceptance_command(tmp_path, monkeypatch, capsys):
    from mlplatform.cli import main

    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    assert main(["acceptance"]) == 2
    assert "DAGSTER_HOME" in capsys.readouterr().err
    # A fresh instance: nothing failed, execution has no evidence yet (exit 0, checklist 2
    # incomplete).
    assert main(["acceptance", "--json", "--dagster-home", str(tmp_path)]) == 0
    checklists = json.loads(capsys.readouterr().out)
    statuses = [(c["checklist"], c["status"]) for c in checklists]
    assert statuses[:2] == [(1, "passed"), (2, "incomplete")]
