"""The protocol's three acceptance checklists, evaluated from the live system, never asserted by
hand. (Not the quality gates: those are asset checks on the data and the model.)

- Checklist 1, pipeline definition, from the `Definitions`: every asset has a description, an
  owner, a retry policy, inputs that exist and an output that is stored, and declares its resource
  needs (the Dagster resources it uses, all provided, and the compute its step requests: the
  `dagster-k8s/config` op tag, and its kinds); no cycles.
- Checklist 2, execution, from the Dagster instance: the last finished run of every job succeeded,
  ran every step of its plan, and stayed within the time budget (`max_runtime_seconds`).
- Checklist 3, monitoring, from the settings and files in effect: metrics (exporter and scrape
  config), structured logging and kept step logs, alert rules and alert delivery, a dashboard, run
  history.

Every checklist item is `passed`, `failed` or `missing` (no evidence either way, e.g. a job that
never ran or a file not written yet): missing is reported as missing, never as passed.

`mlplatform acceptance` prints the three checklists (exit 1 when one failed).
"""

import argparse
import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import dagster as dg

from mlplatform.commands.instance_option import add_instance_argument, open_instance_for
from mlplatform.instance_queries import (
    MAX_RUNTIME_TAG,
    PARTITION_TAG,
    job_has_runs,
    newest_finished_run_record,
    planned_steps,
    step_stats,
)

Status = Literal["passed", "failed", "missing"]
# The mlplatform package, one folder up.
PACKAGE_DIR = Path(__file__).parents[1]
MONITORING_DIR = PACKAGE_DIR / "monitoring"
# Where issue 6's monitoring configuration lives, relative to MONITORING_DIR.
SCRAPE_CONFIG = Path("prometheus/prometheus.yml")
ALERT_RULES = Path("prometheus/alert_rules.yml")
DASHBOARD = Path("grafana/dashboard.json")
# dagster-k8s sizes a step's pod from this op tag; here it is where a step states its compute needs.
COMPUTE_TAG = "dagster-k8s/config"


@dataclass(frozen=True)
class Finding:
    asset: str
    problem: str
    # The checklist 1 item the problem breaks (see CHECKLIST_ONE_ITEMS).
    item: str = "definition"

    def __str__(self) -> str:
        return f"{self.asset}: {self.problem}"


@dataclass(frozen=True)
class Item:
    name: str
    status: Status
    detail: str = ""


@dataclass(frozen=True)
class ChecklistResult:
    number: int
    title: str
    items: list[Item] = field(default_factory=list)

    @property
    def status(self) -> str:
        statuses = {item.status for item in self.items}
        if "failed" in statuses:
            return "failed"
        if "missing" in statuses or not statuses:
            return "incomplete"
        return "passed"

    def to_dict(self) -> dict[str, Any]:
        return {
            "checklist": self.number,
            "title": self.title,
            "status": self.status,
            "items": [asdict(item) for item in self.items],
        }

    def to_markdown(self) -> str:
        lines = [
            f"### Checklist {self.number}: {self.title} — **{self.status}**",
            "",
            "| item | status | detail |",
            "| --- | --- | --- |",
        ]
        for item in self.items:
            detail = item.detail.replace("|", "\\|").replace("\n", "<br>")
            lines.append(f"| {item.name} | {item.status} | {detail} |")
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Checklist 1: pipeline definition


@dataclass(frozen=True)
class StepNeeds:
    """What one asset's step needs to run, as its definition declares it."""

    asset: str
    step: str
    group: str
    resources: list[str]
    io_manager: str
    pool: str | None
    kinds: list[str]
    compute_requests: dict[str, str]
    compute_limits: dict[str, str]


def _compute_config(tags: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    raw = tags.get(COMPUTE_TAG)
    if raw is None:
        return {}
    try:
        config = json.loads(raw) if isinstance(raw, str) else raw
        resources = config["container_config"]["resources"]
    except (ValueError, TypeError, KeyError):
        return {}
    return {
        k: {str(n): str(v) for n, v in resources.get(k, {}).items()} for k in ("requests", "limits")
    }


def step_needs(defs: dg.Definitions) -> list[StepNeeds]:
    graph = defs.resolve_asset_graph()
    needs = []
    for assets_def in graph.assets_defs:
        if not assets_def.is_executable:
            continue
        compute = _compute_config(assets_def.node_def.tags)
        for key in sorted(assets_def.keys, key=lambda k: k.to_user_string()):
            needs.append(
                StepNeeds(
                    asset=key.to_user_string(),
                    step=assets_def.node_def.name,
                    group=assets_def.group_names_by_key.get(key, "default"),
                    resources=sorted(assets_def.required_resource_keys),
                    io_manager=assets_def.get_io_manager_key_for_asset_key(key),
                    pool=getattr(assets_def.node_def, "pool", None),
                    kinds=sorted(assets_def.specs_by_key[key].kinds),
                    compute_requests=compute.get("requests", {}),
                    compute_limits=compute.get("limits", {}),
                )
            )
    return sorted(needs, key=lambda n: n.asset)


CHECKLIST_ONE_ITEMS = {
    "loads": "the definitions load (every resource and IO manager provided)",
    "description": "every asset has a description",
    "owner": "every asset has an owner",
    "retry": "every asset has a retry policy",
    "inputs_outputs": "inputs exist and outputs are stored",
    "resources": "resource needs declared (compute requests, kinds)",
    "acyclic": "no cycles",
}


def declared_asset_keys(defs: dg.Definitions) -> set[dg.AssetKey]:
    keys: set[dg.AssetKey] = set()
    for item in defs.assets or []:
        if isinstance(item, dg.AssetsDefinition):
            keys.update(item.keys)
        elif isinstance(item, dg.AssetSpec | dg.SourceAsset):
            keys.add(item.key)
    return keys


def pipeline_definition_findings(defs: dg.Definitions) -> list[Finding]:
    try:
        graph = defs.resolve_asset_graph()
    except dg.DagsterInvalidDefinitionError as error:
        # Dagster itself refuses, e.g., a resource or IO manager that nothing provides.
        return [Finding("(definitions)", f"do not load: {error}", "loads")]
    findings: list[Finding] = []
    # What the Definitions declare: the resolved graph also holds stubs for undefined `deps`.
    keys = declared_asset_keys(defs)
    needs_by_asset = {n.asset: n for n in step_needs(defs)}
    for assets_def in graph.assets_defs:
        if not assets_def.is_executable:
            continue
        for key in assets_def.keys:
            name = key.to_user_string()
            if not (assets_def.descriptions_by_key.get(key) or "").strip():
                findings.append(Finding(name, "no description", "description"))
            if not assets_def.owners_by_key.get(key):
                findings.append(Finding(name, "no owner", "owner"))
            if assets_def.node_def.retry_policy is None:
                findings.append(Finding(name, "no retry policy", "retry"))
            missing = [p.to_user_string() for p in graph.get(key).parent_keys if p not in keys]
            if missing:
                findings.append(
                    Finding(name, f"depends on undefined assets {missing}", "inputs_outputs")
                )
            needs = needs_by_asset[name]
            undeclared = [r for r in ("cpu", "memory") if r not in needs.compute_requests]
            if undeclared:
                findings.append(
                    Finding(
                        name,
                        f"no compute request for {' and '.join(undeclared)} (op tag {COMPUTE_TAG})",
                        "resources",
                    )
                )
            if not needs.kinds:
                findings.append(Finding(name, "no kinds (what its step runs on)", "resources"))
    try:
        graph.toposorted_asset_keys  # noqa: B018 - raises on a cycle
    except Exception as error:
        findings.append(Finding("(graph)", f"not acyclic: {error}", "acyclic"))
    return findings


def checklist_one(defs: dg.Definitions) -> ChecklistResult:
    findings = pipeline_definition_findings(defs)
    count = 0 if any(f.item == "loads" for f in findings) else len(step_needs(defs))
    items = []
    for item, title in CHECKLIST_ONE_ITEMS.items():
        broken = [str(f) for f in findings if f.item == item]
        items.append(
            Item(title, "failed", "; ".join(broken))
            if broken
            else Item(
                title, "passed", f"{count} assets" if item not in ("acyclic", "loads") else ""
            )
        )
    return ChecklistResult(1, "pipeline definition", items)


# ---------------------------------------------------------------------------------------------
# Checklist 2: execution

# Runs launched from the UI's "Materialize" (not through a named job) belong to this job.
AD_HOC_JOB = "__ASSET_JOB"


@dataclass(frozen=True)
class LastRun:
    job: str
    run_id: str
    partition: str | None
    status: str
    steps_planned: int
    steps_succeeded: int
    not_done: list[str]
    seconds: float | None
    budget_seconds: float


def last_finished_run(
    instance: dg.DagsterInstance, job: str, default_budget: float
) -> LastRun | None:
    record = newest_finished_run_record(instance, job)
    if record is None:
        return None
    run = record.dagster_run
    planned = list(planned_steps(instance, run))
    succeeded = {
        s.step_key
        for s in step_stats(instance, run.run_id)
        if s.status is not None and s.status.value == "SUCCESS"
    }
    seconds = record.end_time - record.start_time if record.end_time and record.start_time else None
    budget = float(run.tags.get(MAX_RUNTIME_TAG, default_budget))
    return LastRun(
        job=job,
        run_id=run.run_id,
        partition=run.tags.get(PARTITION_TAG),
        status=run.status.value,
        steps_planned=len(planned),
        steps_succeeded=len(succeeded & set(planned)),
        not_done=sorted(set(planned) - succeeded),
        seconds=seconds,
        budget_seconds=budget,
    )


def checklist_two(
    instance: dg.DagsterInstance, defs: dg.Definitions, max_runtime_seconds: float
) -> ChecklistResult:
    jobs = sorted(job.name for job in defs.jobs or [])
    if job_has_runs(instance, AD_HOC_JOB):
        jobs.append(AD_HOC_JOB)
    items = []
    for job in jobs:
        last = last_finished_run(instance, job, max_runtime_seconds)
        if last is None:
            items.append(Item(f"{job}: last run", "missing", "no finished run yet"))
            continue
        where = f"run {last.run_id[:8]}" + (f" [{last.partition}]" if last.partition else "")
        items.append(
            Item(
                f"{job}: last run succeeded",
                "passed" if last.status == "SUCCESS" else "failed",
                f"{where}: {last.status}",
            )
        )
        items.append(
            Item(
                f"{job}: all steps done",
                "passed" if last.steps_planned and not last.not_done else "failed",
                f"{last.steps_succeeded}/{last.steps_planned} steps succeeded"
                + (f"; not done: {', '.join(last.not_done)}" if last.not_done else ""),
            )
        )
        if last.seconds is None:
            items.append(Item(f"{job}: within the time budget", "missing", "no start/end time"))
        else:
            items.append(
                Item(
                    f"{job}: within the time budget",
                    "passed" if last.seconds <= last.budget_seconds else "failed",
                    f"{last.seconds:.0f} s of {last.budget_seconds:.0f} s",
                )
            )
    return ChecklistResult(2, "execution", items)


# ---------------------------------------------------------------------------------------------
# Checklist 3: monitoring


def _file_item(name: str, path: Path, describe) -> Item:
    if not path.exists():
        return Item(name, "missing", f"{path} does not exist")
    try:
        return describe(path)
    except Exception as error:
        return Item(name, "failed", f"{path}: {type(error).__name__}: {error}")


def _scrape_config(path: Path) -> Item:
    import yaml

    jobs = [c.get("job_name") for c in yaml.safe_load(path.read_text()).get("scrape_configs", [])]
    status: Status = "passed" if jobs else "failed"
    return Item("metrics: Prometheus scrape config", status, f"{path.name}: jobs {jobs}")


def _alert_rules(path: Path) -> Item:
    import yaml

    groups = yaml.safe_load(path.read_text()).get("groups", [])
    alerts = [r["alert"] for g in groups for r in g.get("rules", []) if "alert" in r]
    status: Status = "passed" if alerts else "failed"
    return Item("alerts: alert rules", status, f"{len(alerts)} rules: {', '.join(alerts)}")


def _dashboard(path: Path) -> Item:
    dashboard = json.loads(path.read_text())
    panels = [p for p in dashboard.get("panels", []) if p.get("type") != "row"]
    status: Status = "passed" if panels else "failed"
    return Item(
        "dashboard: Grafana dashboard",
        status,
        f"'{dashboard.get('title', '?')}' with {len(panels)} panels",
    )


def _command_item(name: str, command: str, what: str) -> Item:
    from mlplatform.commands.table import COMMANDS

    if command in COMMANDS:
        return Item(name, "passed", f"`mlplatform {command}`: {COMMANDS[command][1]}")
    return Item(name, "missing", f"no `mlplatform {command}` command ({what})")


def checklist_three(
    instance: dg.DagsterInstance,
    defs: dg.Definitions,
    monitoring_dir: Path = MONITORING_DIR,
    environ: Mapping[str, str] | None = None,
) -> ChecklistResult:
    from mlplatform.config.active import ORCHESTRATION

    environ = os.environ if environ is None else environ
    sensors = {s.name for s in defs.sensors or []}
    loggers = set(defs.loggers or {})
    webhook_env = ORCHESTRATION.alerts.webhook_url_env
    items = [
        _command_item("metrics: exporter", "exporter", "Prometheus metrics of the instance"),
        _file_item(
            "metrics: Prometheus scrape config", monitoring_dir / SCRAPE_CONFIG, _scrape_config
        ),
        Item(
            "logging: structured (JSON) logs",
            "passed" if "json" in loggers else "missing",
            "the `json` logger is in the Definitions"
            if "json" in loggers
            else "no `json` logger in the Definitions",
        ),
        Item(
            "logging: step logs kept",
            "failed"
            if type(instance.compute_log_manager).__name__.startswith("NoOp")
            else "passed",
            f"{type(instance.compute_log_manager).__name__} keeps every step's stdout/stderr",
        ),
        _file_item("alerts: alert rules", monitoring_dir / ALERT_RULES, _alert_rules),
        Item(
            "alerts: failure alert sensor",
            "passed" if "run_failure_alert" in sensors else "missing",
            "run_failure_alert posts to the webhook"
            if "run_failure_alert" in sensors
            else "no run_failure_alert sensor",
        ),
        Item(
            "alerts: delivery",
            "passed" if environ.get(webhook_env) else "missing",
            f"${webhook_env} is set"
            if environ.get(webhook_env)
            else f"${webhook_env} is not set here: alerts are evaluated but not sent",
        ),
        _file_item("dashboard: Grafana dashboard", monitoring_dir / DASHBOARD, _dashboard),
        Item(
            "history: runs kept",
            "passed" if instance.is_persistent else "failed",
            f"{type(instance.run_storage).__name__}, "
            + ("persistent" if instance.is_persistent else "ephemeral: lost on exit"),
        ),
        _command_item("history: run-history report", "report", "success rate, run times"),
    ]
    return ChecklistResult(3, "monitoring", items)


def evaluate_checklists(
    instance: dg.DagsterInstance, defs: dg.Definitions | None = None
) -> list[ChecklistResult]:
    from mlplatform.config.active import ORCHESTRATION

    if defs is None:
        from mlplatform.definitions import defs
    return [
        checklist_one(defs),
        checklist_two(instance, defs, ORCHESTRATION.max_runtime_seconds),
        checklist_three(instance, defs),
    ]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of Markdown")
    add_instance_argument(parser)


def run(args: argparse.Namespace) -> int:
    instance = open_instance_for("acceptance", args)
    if instance is None:
        return 2
    with instance:
        checklists = evaluate_checklists(instance)
    if args.json:
        print(json.dumps([c.to_dict() for c in checklists], indent=2))
    else:
        print("\n\n".join(c.to_markdown() for c in checklists))
    return 1 if any(c.status == "failed" for c in checklists) else 0
