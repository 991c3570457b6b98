"""`mlplatform`: the platform's own commands, beside Dagster's CLI.

Each command lives in its own module, imported only when that command runs, so `mlplatform --help`
stays instant. A command module provides `add_arguments(parser)` and `run(args) -> int`.
"""

import argparse
import importlib
import sys
from collections.abc import Sequence

# name -> (module, one-line help). Add a command by adding an entry here.
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
        "mlplatform.reporting.dataset",
        "draft a dataset folder from a sample (init), check a sample against it (check)",
    ),
}


def add_instance_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dagster-home", default=None, help="the Dagster instance folder (default: $DAGSTER_HOME)"
    )


def open_instance_for(command: str, args: argparse.Namespace):
    """The instance the command reads, or None after saying on stderr why there is none."""
    from mlplatform.monitoring.instance_reader import InstanceError, open_instance

    try:
        return open_instance(args.dagster_home)
    except InstanceError as error:
        print(f"mlplatform {command}: {error}", file=sys.stderr)
        return None


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="mlplatform", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in sorted(COMMANDS.items()):
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(module_name=module_name)
        if argv[:1] == [name]:
            importlib.import_module(module_name).add_arguments(sub)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    return int(importlib.import_module(args.module_name).run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
