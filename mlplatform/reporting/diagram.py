"""`mlplatform diagram OUT_DIR`: the pipeline drawn from the `Definitions` themselves (graphviz).

Two drawings, each as PNG and SVG:
- `pipeline`: assets in their groups, with their dependencies and every asset check (blocking gates
  red, advisory checks amber), so the picture cannot drift from the code;
- `dependencies`: what starts what: schedules and sensors, the jobs they run, the assets each job
  selects, and the asset-to-asset dependencies.

`describe_graph(defs)` is the same graph as plain data (the evidence package's `dags/` JSON).
Rendering needs Graphviz's `dot` (Debian's `graphviz`).
"""

import argparse
from pathlib import Path
from typing import Any

import dagster as dg

FORMATS = ("png", "svg")
BLOCKING_COLOUR = "#c0392b"
ADVISORY_COLOUR = "#d68910"
GROUP_ORDER_HINT = "LR"


def describe_graph(defs: dg.Definitions) -> dict[str, Any]:
    """Assets (group, kinds, owners, description, upstream), checks, jobs, schedules, sensors."""
    graph = defs.resolve_asset_graph()
    assets: list[dict[str, Any]] = []
    checks: list[dict[str, Any]] = []
    for assets_def in graph.assets_defs:
        for spec in assets_def.check_specs:
            checks.append(
                {
                    "asset": spec.asset_key.to_user_string(),
                    "name": spec.name,
                    "blocking": spec.blocking,
                    "description": spec.description or "",
                    "step": assets_def.node_def.name,
                }
            )
        if not assets_def.is_executable:
            continue
        for key in assets_def.keys:
            node = graph.get(key)
            assets.append(
                {
                    "name": key.to_user_string(),
                    "group": assets_def.group_names_by_key.get(key, "default"),
                    "step": assets_def.node_def.name,
                    "description": assets_def.descriptions_by_key.get(key) or "",
                    "owners": list(assets_def.owners_by_key.get(key, [])),
                    "kinds": sorted(assets_def.specs_by_key[key].kinds),
                    "partitioned": assets_def.partitions_def is not None,
                    "upstream": sorted(p.to_user_string() for p in node.parent_keys),
                }
            )
    order = {k.to_user_string(): i for i, k in enumerate(graph.toposorted_asset_keys)}
    assets.sort(key=lambda a: order.get(a["name"], len(order)))
    checks.sort(key=lambda c: (order.get(c["asset"], len(order)), c["name"]))
    jobs = []
    for job in defs.jobs or []:
        resolved = defs.resolve_job_def(job.name)
        selected = sorted(k.to_user_string() for k in resolved.asset_layer.executable_asset_keys)
        jobs.append({"name": job.name, "description": job.description or "", "assets": selected})
    schedules = [
        {
            "name": s.name,
            "job": s.job_name,
            "cron": s.cron_schedule,
            "timezone": s.execution_timezone,
        }
        for s in defs.schedules or []
    ]
    sensors = []
    for sensor in defs.sensors or []:
        targets = [t.job_name for t in sensor.targets] if sensor.targets else []
        sensors.append({"name": sensor.name, "kind": type(sensor).__name__, "jobs": targets})
    return {
        "assets": assets,
        "checks": checks,
        "jobs": jobs,
        "schedules": schedules,
        "sensors": sensors,
    }


def _label(name: str, detail: str) -> str:
    # An HTML-like label: the name in bold, the kinds underneath, small.
    return f'<<B>{name}</B><BR/><FONT POINT-SIZE="9">{detail}</FONT>>'


def _checks_table(checks: list[dict[str, Any]]) -> str:
    def row(check: dict[str, Any]) -> str:
        colour, kind = (
            (BLOCKING_COLOUR, "blocking") if check["blocking"] else (ADVISORY_COLOUR, "warn")
        )
        return (
            f'<TR><TD ALIGN="LEFT"><FONT COLOR="{colour}">{check["name"]} ({kind})</FONT></TD></TR>'
        )

    rows = "".join(row(check) for check in checks)
    return (
        '<<TABLE BORDER="1" CELLBORDER="0" CELLSPACING="0" CELLPADDING="2" COLOR="#7f8c8d">'
        f'<TR><TD><FONT POINT-SIZE="9"><I>asset checks</I></FONT></TD></TR>{rows}</TABLE>>'
    )


def pipeline_diagram(described: dict[str, Any]):
    """Assets in group clusters, dependencies, and each asset's checks hanging off it."""
    import graphviz

    drawing = graphviz.Digraph("pipeline", graph_attr={"rankdir": GROUP_ORDER_HINT})
    drawing.attr(label="mlplatform: assets by group, with their quality gates", labelloc="t")
    drawing.attr("node", fontname="Helvetica", fontsize="11")
    groups: dict[str, list[dict[str, Any]]] = {}
    for asset in described["assets"]:
        groups.setdefault(asset["group"], []).append(asset)
    checks_by_asset: dict[str, list[dict[str, Any]]] = {}
    for check in described["checks"]:
        checks_by_asset.setdefault(check["asset"], []).append(check)
    for group, members in groups.items():
        with drawing.subgraph(name=f"cluster_{group}") as cluster:
            cluster.attr(label=f"group: {group}", style="rounded,dashed", color="#7f8c8d")
            for asset in members:
                kinds = ", ".join(asset["kinds"]) or "-"
                cluster.node(
                    asset["name"],
                    label=_label(asset["name"], kinds),
                    shape="box",
                    style="rounded,filled",
                    fillcolor="#eaf2f8",
                )
                checks = checks_by_asset.get(asset["name"], [])
                if checks:
                    # One table of gates per asset, hanging off it: blocking red, advisory amber.
                    cluster.node(
                        f"{asset['name']}__checks", label=_checks_table(checks), shape="plaintext"
                    )
                    drawing.edge(
                        asset["name"],
                        f"{asset['name']}__checks",
                        style="dashed",
                        arrowhead="none",
                        color="#7f8c8d",
                    )
    for asset in described["assets"]:
        for upstream in asset["upstream"]:
            drawing.edge(upstream, asset["name"], penwidth="1.6")
    return drawing


def dependency_diagram(described: dict[str, Any]):
    """Triggers -> jobs -> the assets they run, and the assets' own dependencies."""
    import graphviz

    drawing = graphviz.Digraph("dependencies", graph_attr={"rankdir": GROUP_ORDER_HINT})
    drawing.attr(label="mlplatform: what runs what", labelloc="t")
    drawing.attr("node", fontname="Helvetica", fontsize="11")
    for schedule in described["schedules"]:
        node = f"schedule__{schedule['name']}"
        drawing.node(
            node,
            label=_label(schedule["name"], f"schedule {schedule['cron']} {schedule['timezone']}"),
            shape="cds",
        )
        drawing.edge(node, f"job__{schedule['job']}")
    for sensor in described["sensors"]:
        node = f"sensor__{sensor['name']}"
        watches_runs = sensor["kind"] == "RunStatusSensorDefinition"
        kind = "run status sensor: watches every job's runs" if watches_runs else "sensor"
        drawing.node(node, label=_label(sensor["name"], kind), shape="cds")
        for job in sensor["jobs"]:
            drawing.edge(node, f"job__{job}")
    for job in described["jobs"]:
        drawing.node(
            f"job__{job['name']}",
            label=_label(job["name"], f"job, {len(job['assets'])} assets"),
            shape="component",
            style="filled",
            fillcolor="#fdebd0",
        )
    for asset in described["assets"]:
        drawing.node(asset["name"], shape="box", style="rounded")
        for upstream in asset["upstream"]:
            drawing.edge(upstream, asset["name"])
    for job in described["jobs"]:
        # Only the job's first assets: the rest follow through the dependencies.
        selected = set(job["assets"])
        by_name = {a["name"]: a for a in described["assets"]}
        for name in job["assets"]:
            if not selected & set(by_name[name]["upstream"]):
                drawing.edge(f"job__{job['name']}", name, style="dotted")
    return drawing


def render(defs: dg.Definitions, out_dir: Path) -> list[Path]:
    """Write pipeline.{png,svg,dot} and dependencies.{png,svg,dot} into `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    described = describe_graph(defs)
    written = []
    for drawing in (pipeline_diagram(described), dependency_diagram(described)):
        for fmt in FORMATS:
            target = out_dir / f"{drawing.name}.{fmt}"
            target.write_bytes(drawing.pipe(format=fmt))
            written.append(target)
        source = out_dir / f"{drawing.name}.dot"
        source.write_text(drawing.source)
        written.append(source)
    return written


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out_dir", type=Path, help="folder for pipeline.* and dependencies.*")


def run(args: argparse.Namespace) -> int:
    import sys

    import graphviz

    from mlplatform.definitions import defs

    try:
        written = render(defs, args.out_dir)
    except graphviz.ExecutableNotFound:
        print(
            "mlplatform diagram: Graphviz's `dot` is not installed (Debian: apt-get install "
            "graphviz)",
            file=sys.stderr,
        )
        return 2
    for path in written:
        print(path)
    return 0
