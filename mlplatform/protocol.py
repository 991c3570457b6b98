"""The protocol's gate 1 (pipeline definition), computed from the Definitions themselves.

Checked so far: every asset has a description, an owner and a retry policy; every dependency
exists; there are no cycles. Still to come (issue 7): compute resource needs per step.
"""

from dataclasses import dataclass

import dagster as dg


@dataclass(frozen=True)
class Finding:
    asset: str
    problem: str

    def __str__(self) -> str:
        return f"{self.asset}: {self.problem}"


def pipeline_definition_findings(defs: dg.Definitions) -> list[Finding]:
    graph = defs.resolve_asset_graph()
    findings: list[Finding] = []
    keys = set(graph.get_all_asset_keys())
    for assets_def in graph.assets_defs:
        if not assets_def.is_executable:
            continue
        for key in assets_def.keys:
            name = key.to_user_string()
            if not (assets_def.descriptions_by_key.get(key) or "").strip():
                findings.append(Finding(name, "no description"))
            if not assets_def.owners_by_key.get(key):
                findings.append(Finding(name, "no owner"))
            if assets_def.node_def.retry_policy is None:
                findings.append(Finding(name, "no retry policy"))
            missing = [p for p in graph.get(key).parent_keys if p not in keys]
            if missing:
                findings.append(Finding(name, f"depends on undefined assets {missing}"))
    try:
        graph.toposorted_asset_keys  # noqa: B018 - raises on a cycle
    except Exception as error:
        findings.append(Finding("(graph)", f"not acyclic: {error}"))
    return findings
