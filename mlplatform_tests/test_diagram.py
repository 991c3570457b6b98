"""The pipeline diagram is drawn from the Definitions: every asset, check and group is in it, and a
new asset appears without anyone touching the drawing."""

import dagster as dg
import pytest

from mlplatform.cli import main
from mlplatform.definitions import defs
from mlplatform.reporting.diagram import describe_graph, render
from mlplatform_tests.servers import require_executable

# The day's run, and after deployment the loop back from outcomes to realized performance.
TRAINING_RUN = (
    "raw_transactions", "validated_transactions", "quarantined_transactions", "features",
    "trained_model", "registered_model_version", "batch_scores", "shadow_scores", "outcomes",
    "quarantined_outcomes",
)  # fmt: skip
ASSETS = (*TRAINING_RUN, "model_performance")
GROUPS = (
    "ingestion", "validation", "features", "training", "registration", "deployment", "monitoring",
)  # fmt: skip


@pytest.fixture(autouse=True)
def graphviz_dot():
    require_executable("dot", "graphviz")


def test_describe_graph_matches_the_definitions():
    described = describe_graph(defs)
    assert described["assets"][0]["name"] == "raw_transactions"  # in dependency order
    assert {a["name"] for a in described["assets"]} == set(ASSETS)
    checks = {f"{c['asset']}:{c['name']}": c for c in described["checks"]}
    assert len(checks) == len(defs.resolve_asset_graph().asset_check_keys) == 25
    assert checks["trained_model:accuracy"]["blocking"] is True
    assert checks["features:drift"]["blocking"] is False
    upstream = {a["name"]: a["upstream"] for a in described["assets"]}
    assert upstream["registered_model_version"] == ["features", "trained_model"]
    jobs = {j["name"]: j["assets"] for j in described["jobs"]}
    assert set(jobs["training_pipeline"]) == set(TRAINING_RUN)
    assert set(jobs["performance_monitoring"]) == {"model_performance"}
    assert upstream["model_performance"] == ["batch_scores", "outcomes", "shadow_scores"]
    assert "raw_transactions" not in jobs["retraining"]
    assert {"name": "daily_training", "job": "training_pipeline"}.items() <= (
        described["schedules"][0].items()
    )


def test_mlplatform_diagram_writes_png_and_svg(tmp_path, capsys):
    assert main(["diagram", str(tmp_path)]) == 0
    printed = capsys.readouterr().out.split()
    for name in ("pipeline", "dependencies"):
        assert (tmp_path / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert str(tmp_path / f"{name}.svg") in printed
    pipeline = (tmp_path / "pipeline.svg").read_text()
    for asset in ASSETS:
        assert f">{asset}<" in pipeline, asset
    for group in GROUPS:
        assert f"group: {group}" in pipeline, group
    for check in ("schema_matches_contract (blocking)", "drift (warn)", "accuracy (blocking)"):
        assert check in pipeline, check
    dependencies = (tmp_path / "dependencies.svg").read_text()
    for trigger in (
        "daily_training", "new_data", "drift_retraining", "training_pipeline", "outcomes_arrived",
        "performance_decay", "performance_monitoring",
    ):  # fmt: skip
        assert f">{trigger}<" in dependencies, trigger


def test_a_new_asset_is_drawn_without_touching_the_diagram(tmp_path):
    @dg.asset(group_name="reporting", deps=["batch_scores"], description="A weekly summary.")
    def weekly_summary() -> None:
        return None

    extended = dg.Definitions.merge(defs, dg.Definitions(assets=[weekly_summary]))
    render(extended, tmp_path)
    svg = (tmp_path / "pipeline.svg").read_text()
    assert ">weekly_summary<" in svg and "group: reporting" in svg
    assert "batch_scores&#45;&gt;weekly_summary" in svg
