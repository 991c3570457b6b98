"""`mlplatform`: the platform's own commands, beside Dagster's CLI.

Each command lives in its own module (listed in commands/table.py), imported only when that
command runs, so `mlplatform --help` stays instant. A command module provides
`add_arguments(parser)` and `run(args) -> int`; none imports this one.
"""

import argparse
import importlib
import sys
from collections.abc import Sequence

from mlplatform.commands.table import COMMANDS


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
