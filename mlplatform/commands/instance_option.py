"""The option every instance-reading command takes (`--dagster-home`), and opening the instance
it names with a message on stderr when there is none."""

import argparse
import sys


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
