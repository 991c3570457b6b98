"""`mlplatform evidence OUT_DIR`: the protocol's evidence package, written from the live system.

```
OUT_DIR/
  README.md            what is here, and what is missing and why
  manifest.json        every part: present or missing (with the reason)
  dags/                the asset graph as JSON (assets, checks, jobs, triggers, step needs)
                       and where the definitions come from (workspace, module, file, git commit)
  config/              orchestration, error handling, platform and monitoring settings in effect,
                       and the Dagster instance's own settings
  diagrams/            pipeline and dependency diagrams (PNG, SVG, DOT), drawn from the Definitions
  monitoring/          Grafana dashboard, Prometheus scrape config and alert rules, and the metric
                       definitions as the exporter serves them now
  reports/             orchestration_report.md (acceptance checklists and run history),
                       acceptance.json, pipeline_test_results.json (from the last pytest run's
                       JUnit XML)
```

Nothing is made up: a part that cannot be produced is listed as missing with the reason.
"""

import argparse
import datetime as dt
import json
import re
import shutil
import subprocess
import xml.etree.ElementTree as ElementTree
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import dagster as dg

from mlplatform.commands.instance_option import add_instance_argument, open_instance_for
from mlplatform.monitoring.report import build_report

PROJECT_DIR = Path(__file__).resolve().parents[2]
DEFAULT_TEST_RESULTS = Path("test-artifacts/junit.xml")
# A password inside a URL (postgresql+psycopg2://user:secret@host/db) never leaves the machine.
_URL_PASSWORD = re.compile(r"(://[^:/@\s]+:)[^@\s]+@")


@dataclass
class Part:
    path: str
    status: str  # "present" or "missing"
    note: str = ""


class Package:
    """The output folder and the manifest of what went into it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.parts: list[Part] = []

    def write_text(self, relative: str, text: str, note: str = "") -> None:
        target = self.root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        self.parts.append(Part(relative, "present", note))

    def write_json(self, relative: str, data: Any, note: str = "") -> None:
        self.write_text(relative, json.dumps(data, indent=2, default=str) + "\n", note)

    def copy(self, relative: str, source: Path, note: str = "") -> None:
        if not source.exists():
            self.missing(relative, f"{source} does not exist")
            return
        target = self.root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        self.parts.append(Part(relative, "present", note or f"copied from {source}"))

    def missing(self, relative: str, reason: str) -> None:
        self.parts.append(Part(relative, "missing", reason))

    def attempt(self, relative: str, produce) -> None:
        """Run `produce()`; if it fails, the part is listed as missing with the error."""
        try:
            produce()
        except Exception as error:
            self.missing(relative, f"{type(error).__name__}: {error}")


def redact(value: Any) -> Any:
    if isinstance(value, str):
        return _URL_PASSWORD.sub(r"\1***@", value)
    if isinstance(value, dict):
        return {k: redact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


def git_revision(directory: Path) -> dict[str, Any]:
    def git(*args: str) -> str:
        result = subprocess.run(
            ["git", *args], cwd=directory, capture_output=True, text=True, timeout=30
        )
        return result.stdout.strip() if result.returncode == 0 else ""

    commit = git("rev-parse", "HEAD")
    return {
        "commit": commit or None,
        "branch": git("rev-parse", "--abbrev-ref", "HEAD") or None,
        "uncommitted_changes": bool(git("status", "--porcelain", "--untracked-files=no"))
        if commit
        else None,
    }


def source_location() -> dict[str, Any]:
    import mlplatform.definitions as definitions_module

    workspace = PROJECT_DIR / "workspace.yaml"
    return {
        "code_location": "mlplatform",
        "module": definitions_module.__name__,
        "attribute": "defs",
        "file": str(Path(definitions_module.__file__).resolve()),
        "workspace_file": str(workspace) if workspace.exists() else None,
        "workspace": workspace.read_text() if workspace.exists() else None,
        "git": git_revision(PROJECT_DIR),
    }


def read_test_results(junit_path: Path) -> dict[str, Any]:
    """pytest's JUnit XML as JSON: totals per suite and one entry per test."""
    tree = ElementTree.parse(junit_path)
    root = tree.getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    cases = []
    for suite in suites:
        for case in suite.iter("testcase"):
            outcome, message = "passed", ""
            for tag in ("failure", "error", "skipped"):
                element = case.find(tag)
                if element is not None:
                    outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[tag]
                    message = element.get("message", "")
                    break
            cases.append(
                {
                    "test": f"{case.get('classname', '')}::{case.get('name', '')}",
                    "outcome": outcome,
                    "seconds": float(case.get("time", 0) or 0),
                    "message": message[:500],
                }
            )
    totals = {
        outcome: sum(1 for c in cases if c["outcome"] == outcome)
        for outcome in ("passed", "failed", "error", "skipped")
    }
    modified = dt.datetime.fromtimestamp(junit_path.stat().st_mtime, tz=dt.UTC)
    return {
        "source": str(junit_path),
        "written_at": modified.isoformat(timespec="seconds"),
        "suites": [
            {k: suite.get(k) for k in ("name", "timestamp", "hostname", "time")} for suite in suites
        ],
        "total": len(cases),
        **totals,
        "seconds": round(sum(c["seconds"] for c in cases), 2),
        "tests": cases,
    }


def metric_definitions(instance: dg.DagsterInstance) -> tuple[str, list[dict[str, str]]]:
    """One scrape of the exporter's collector against this instance (the MLflow registry is left
    out: its metrics appear once a model is registered), and the families it served."""
    from prometheus_client import generate_latest

    from mlplatform.monitoring.exporter import PlatformCollector, build_collector_registry
    from mlplatform.monitoring.instance_reader import InstanceHistory

    metrics = build_collector_registry(PlatformCollector(InstanceHistory(instance)))
    families = [
        {"name": family.name, "type": family.type, "help": family.documentation}
        for family in metrics.collect()
    ]
    return generate_latest(metrics).decode(), families


def run_history_markdown(instance: dg.DagsterInstance) -> str:
    # One heading level down: it is a section of the orchestration report.
    markdown = build_report(instance).to_markdown()
    return re.sub(r"^#", "##", markdown, flags=re.MULTILINE)


def orchestration_report(checklists: list, history: str, instance_dir: str, now: str) -> str:
    summary = ", ".join(f"checklist {c.number} {c.status}" for c in checklists)
    return "\n".join(
        [
            "# Orchestration report",
            "",
            f"Generated {now} from the Dagster instance in `{instance_dir}`: {summary}.",
            "",
            "A checklist is *passed* when every item passed, *failed* when one failed, and "
            "*incomplete* when an item has no evidence yet (a job that never ran, a file "
            "not written): incomplete is not passed.",
            "",
            "## Acceptance checklists",
            "",
            *(c.to_markdown() + "\n" for c in checklists),
            "## Run history",
            "",
            history,
            "",
        ]
    )


def write_evidence(
    out_dir: Path,
    instance: dg.DagsterInstance,
    defs: dg.Definitions | None = None,
    junit_path: Path = DEFAULT_TEST_RESULTS,
) -> list[Part]:
    from mlplatform.config.active import ERROR_HANDLING, ORCHESTRATION, SETTINGS
    from mlplatform.reporting import acceptance, diagram

    if defs is None:
        from mlplatform.definitions import defs
    package = Package(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")

    # dags/
    described = diagram.describe_graph(defs)
    described["step_needs"] = [asdict(n) for n in acceptance.step_needs(defs)]
    package.write_json("dags/asset_graph.json", described, "assets, checks, jobs, triggers")
    package.attempt(
        "dags/source_location.json",
        lambda: package.write_json("dags/source_location.json", source_location()),
    )

    # config/
    package.write_json("config/orchestration.json", ORCHESTRATION.model_dump(mode="json"))
    package.write_json("config/error_handling.json", ERROR_HANDLING.model_dump(mode="json"))
    package.write_json("config/platform.json", redact(SETTINGS.model_dump(mode="json")))
    monitoring_dir = acceptance.MONITORING_DIR
    package.write_json(
        "config/monitoring.json",
        {
            "prometheus_scrape_config": str(monitoring_dir / acceptance.SCRAPE_CONFIG),
            "alert_rules": str(monitoring_dir / acceptance.ALERT_RULES),
            "dashboard": str(monitoring_dir / acceptance.DASHBOARD),
            "loggers": sorted(defs.loggers or {}),
            "sensors": sorted(s.name for s in defs.sensors or []),
            "alerts": ORCHESTRATION.alerts.model_dump(mode="json"),
            "instance": {
                "run_storage": type(instance.run_storage).__name__,
                "event_log_storage": type(instance.event_log_storage).__name__,
                "compute_logs": type(instance.compute_log_manager).__name__,
                "run_monitoring": instance.run_monitoring_enabled,
                "run_retries": instance.run_retries_enabled,
            },
        },
    )
    instance_yaml = (
        Path(instance.root_directory) / "dagster.yaml" if instance.root_directory else None
    )
    if instance_yaml is not None:
        package.copy("config/dagster_instance.yaml", instance_yaml.resolve())
    else:
        package.missing("config/dagster_instance.yaml", "the instance has no root directory")

    # diagrams/
    def draw() -> None:
        for path in diagram.render(defs, out_dir / "diagrams"):
            package.parts.append(Part(str(path.relative_to(out_dir)), "present"))

    package.attempt("diagrams/", draw)

    # monitoring/
    package.copy("monitoring/dashboard.json", monitoring_dir / acceptance.DASHBOARD)
    package.copy("monitoring/prometheus.yml", monitoring_dir / acceptance.SCRAPE_CONFIG)
    package.copy("monitoring/alert_rules.yml", monitoring_dir / acceptance.ALERT_RULES)

    def metrics() -> None:
        scrape, families = metric_definitions(instance)
        package.write_text("monitoring/metrics_scrape.prom", scrape, "one scrape, now")
        package.write_json("monitoring/metric_definitions.json", families)

    package.attempt("monitoring/metric_definitions.json", metrics)

    # reports/
    checklists = acceptance.evaluate_checklists(instance, defs)
    package.write_json("reports/acceptance.json", [c.to_dict() for c in checklists])
    try:
        history = run_history_markdown(instance)
    except Exception as error:
        history = f"(run history unavailable: {type(error).__name__}: {error})"
        package.missing("reports/orchestration_report.md#run-history", history)
    package.write_text(
        "reports/orchestration_report.md",
        orchestration_report(checklists, history, str(instance.root_directory), now),
    )
    if junit_path.exists():
        package.attempt(
            "reports/pipeline_test_results.json",
            lambda: package.write_json(
                "reports/pipeline_test_results.json", read_test_results(junit_path)
            ),
        )
    else:
        package.missing(
            "reports/pipeline_test_results.json",
            f"no test results at {junit_path}: run the tests first (`make test` writes them)",
        )

    package.write_json(
        "manifest.json", {"generated": now, "parts": [asdict(p) for p in package.parts]}
    )
    package.write_text("README.md", _index(package.parts, checklists, now))
    return package.parts


def _index(parts: list[Part], checklists: list, now: str) -> str:
    present = [p for p in parts if p.status == "present"]
    missing = [p for p in parts if p.status == "missing"]
    lines = [
        "# mlplatform evidence package",
        "",
        f"Generated {now} by `mlplatform evidence` from the live system.",
        "",
        "Acceptance checklists: "
        + ", ".join(f"{c.number} ({c.title}) **{c.status}**" for c in checklists)
        + "; "
        "details in `reports/orchestration_report.md`.",
        "",
        "## Present",
        "",
        *(f"- `{p.path}`" + (f": {p.note}" if p.note else "") for p in present),
        "",
        "## Missing",
        "",
        *(f"- `{p.path}`: {p.note}" for p in missing),
    ]
    if not missing:
        lines.append("Nothing.")
    return "\n".join(lines) + "\n"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out_dir", type=Path, help="folder to write the package into")
    parser.add_argument(
        "--test-results",
        type=Path,
        default=DEFAULT_TEST_RESULTS,
        help=f"pytest's JUnit XML (default: {DEFAULT_TEST_RESULTS})",
    )
    add_instance_argument(parser)


def run(args: argparse.Namespace) -> int:
    instance = open_instance_for("evidence", args)
    if instance is None:
        return 2
    with instance:
        parts = write_evidence(args.out_dir, instance, junit_path=args.test_results)
    missing = [p for p in parts if p.status == "missing"]
    print(f"{args.out_dir}: {len(parts) - len(missing)} parts written, {len(missing)} missing")
    for part in missing:
        print(f"  missing {part.path}: {part.note}")
    return 0
