"""The ``kiosk`` command: parses arguments and dispatches to :mod:`kiosk.commands`.

Each subcommand lives in its own module with a ``register(subparsers)`` function, imported
lazily by that function's body where it needs heavy dependencies (Qt, Django), so
``kiosk --help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from kiosk.commands import check_server, demo, screenshots, selftest, simulate
from kiosk.commands import run as run_command

#: The subcommand modules, in ``--help`` order.
COMMANDS = [run_command, demo, selftest, simulate, screenshots, check_server]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``kiosk`` command."""
    parser = argparse.ArgumentParser(
        prog="kiosk", description="Shared-workstation session client for simplejwt servers."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the subcommand; return its exit code."""
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


def run() -> None:
    """Console-script entry point: exit with :func:`main`'s code."""
    sys.exit(main())


if __name__ == "__main__":
    run()
