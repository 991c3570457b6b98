"""The table of `mlplatform` commands: each command's module and its one-line help.

cli.py dispatches on it (importing a command's module only when that command runs); the
acceptance checklist reads it to say which commands exist. A command module provides
`add_arguments(parser)` and `run(args) -> int`. Add a command by adding an entry here.
"""

COMMANDS: dict[str, tuple[str, str]] = {
    "exporter": ("mlplatform.monitoring.exporter", "serve Prometheus metrics of the instance"),
    "recover": (
        "mlplatform.automation.recover",
        "end runs whose worker is gone and free their pool slots (no daemon needed)",
    ),
    "report": ("mlplatform.monitoring.report", "the protocol's success criteria from run history"),
    "diagram": (
        "mlplatform.reporting.diagram",
        "draw the asset graph and its checks to PNG and SVG",
    ),
    "acceptance": (
        "mlplatform.reporting.acceptance",
        "the protocol's acceptance checklists from the live system",
    ),
    "evidence": (
        "mlplatform.reporting.evidence",
        "write the protocol's evidence package to a folder",
    ),
    "dataset": (
        "mlplatform.commands.dataset",
        "draft a dataset folder from a sample (init), check a sample against it (check)",
    ),
}
