"""`mlplatform evidence`: the protocol's evidence layout, written from the live system, with what
cannot be produced listed as missing (never faked)."""

import json

import dagster as dg
import pytest

from mlplatform.cli import main
from mlplatform.reporting.evidence import read_test_results, redact, write_evidence
from mlplatform_tests.servers import require_executable

JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" errors="0" failures="1" skipped="1" tests="3" time="2.5"
 timestamp="2026-11-26T12:00:00" hostname="ci">
<testcase classname="mlplatform_tests.test_a" name="test_good" time="1.25"/>
<testcase classname="mlplatform_tests.test_a" name="test_bad" time="1.0">
<failure message="assert 1 == 2">details</failure></testcase>
<testcase classname="mlplatform_tests.test_b" name="test_later" time="0.25">
<skipped type="pytest.skip" message="no server">skipped</skipped></testcase>
</testsuite></testsuites>
"""


@pytest.fixture(autouse=True)
def graphviz_dot():
    require_executable("dot", "graphviz")


def parts_by_status(out_dir) -> dict[str, dict[str, str]]:
    manifest = json.loads((out_dir / "manifest.json").read_text())
    result: dict[str, dict[str, str]] = {"present": {}, "missing": {}}
    for part in manifest["parts"]:
        result[part["status"]][part["path"]] = part["note"]
    return result


def test_the_layout_from_a_live_instance(tmp_path):
    junit = tmp_path / "junit.xml"
    junit.write_text(JUNIT)
    out = tmp_path / "evidence"
    with dg.instance_for_test() as instance:
        write_evidence(out, instance, junit_path=junit)
    parts = parts_by_status(out)
    for expected in (
        "dags/asset_graph.json", "dags/source_location.json", "config/orchestration.json",
        "config/error_handling.json", "config/monitoring.json", "diagrams/pipeline.png",
        "diagrams/pipeline.svg", "diagrams/dependencies.svg", "reports/acceptance.json",
        "reports/orchestration_report.md", "reports/pipeline_test_results.json",
        # Issue 6's monitoring, as far as it exists: it does now.
        "monitoring/dashboard.json", "monitoring/alert_rules.yml", "monitoring/prometheus.yml",
        "monitoring/metric_definitions.json",
    ):  # fmt: skip
        assert expected in parts["present"], expected
        assert (out / expected).stat().st_size > 0, expected

    graph = json.loads((out / "dags/asset_graph.json").read_text())
    assert len(graph["assets"]) == 11 and len(graph["checks"]) == 25
    assert {n["asset"] for n in graph["step_needs"]} == {a["name"] for a in graph["assets"]}
    location = json.loads((out / "dags/source_location.json").read_text())
    assert location["module"] == "mlplatform.definitions"
    assert location["file"].endswith("mlplatform/definitions.py")
    assert location["workspace_file"].endswith("workspace.yaml")
    orchestration = json.loads((out / "config/orchestration.json").read_text())
    assert orchestration["max_runtime_seconds"] > 0

    metrics = {
        m["name"] for m in json.loads((out / "monitoring/metric_definitions.json").read_text())
    }
    assert "mlplatform_exporter_source_up" in metrics
    checklists = {
        c["checklist"]: c for c in json.loads((out / "reports/acceptance.json").read_text())
    }
    assert checklists[1]["status"] == "passed"
    # No run in this instance: execution has no evidence, and says so.
    assert checklists[2]["status"] == "incomplete"
    assert {i["status"] for i in checklists[2]["items"]} == {"missing"}
    report = (out / "reports/orchestration_report.md").read_text()
    assert "### Checklist 2: execution — **incomplete**" in report
    assert "training_pipeline: last run | missing | no finished run yet" in report

    results = json.loads((out / "reports/pipeline_test_results.json").read_text())
    assert (results["total"], results["passed"], results["failed"], results["skipped"]) == (
        3, 1, 1, 1,
    )  # fmt: skip
    assert results["tests"][1] == {
        "test": "mlplatform_tests.test_a::test_bad",
        "outcome": "failed",
        "seconds": 1.0,
        "message": "assert 1 == 2",
    }
    index = (out / "README.md").read_text()
    assert "## Missing" in index and "reports/pipeline_test_results.json" not in parts["missing"]


def test_missing_parts_are_listed_as_missing(tmp_path):
    out = tmp_path / "evidence"
    with dg.instance_for_test() as instance:
        write_evidence(out, instance, junit_path=tmp_path / "no-such-junit.xml")
    parts = parts_by_status(out)
    assert "no test results at" in parts["missing"]["reports/pipeline_test_results.json"]
    assert not (out / "reports/pipeline_test_results.json").exists()
    index = (out / "README.md").read_text()
    missing_section = index.split("## Missing", 1)[1]
    assert "`reports/pipeline_test_results.json`: no test results at" in missing_section


def test_junit_conversion_reads_pytests_own_output(tmp_path):
    junit = tmp_path / "single.xml"
    junit.write_text(
        '<testsuite name="pytest" tests="1"><testcase classname="m" name="t" time="0.5">'
        '<error message="boom"/></testcase></testsuite>'
    )
    results = read_test_results(junit)
    assert (results["total"], results["error"], results["tests"][0]["outcome"]) == (1, 1, "error")


def test_passwords_in_urls_never_reach_the_package():
    settings = {"tracking_uri": "postgresql+psycopg2://mlflow:s3cret@db:5432/mlflow", "n": 1}
    assert redact(settings) == {
        "tracking_uri": "postgresql+psycopg2://mlflow:***@db:5432/mlflow",
        "n": 1,
    }


def test_the_command_needs_an_instance(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    assert main(["evidence", str(tmp_path / "out")]) == 2
    assert "DAGSTER_HOME" in capsys.readouterr().err
    home = tmp_path / "home"
    home.mkdir()
    assert main(["evidence", str(tmp_path / "out"), "--dagster-home", str(home)]) == 0
    assert (tmp_path / "out" / "reports" / "orchestration_report.md").exists()
