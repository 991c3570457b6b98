"""Gate 1 of the protocol (pipeline definition) on the platform's own Definitions: a new asset
without a description, owner or retry policy fails CI with its name."""

import dagster as dg

from mlplatform.definitions import defs
from mlplatform.protocol import pipeline_definition_findings


def test_every_asset_passes_gate_one():
    assert [str(f) for f in pipeline_definition_findings(defs)] == []


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
    } <= findings
    assert not any(f.startswith("raw_transactions") for f in findings)
