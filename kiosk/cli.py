"""The ``kiosk`` command: parses arguments and dispatches to :mod:`kiosk.commands`.

Each subcommand lives in its own module with a ``register(subparsers)`` function. Only the
module of the subcommand being run is imported (all of them for ``kiosk --help``): some pull in
httpx and PyJWT at import (``check-server``, ``demo``), and ``kiosk run`` shows the sign-in
window before those load (DESIGN §8: ~0.25 s of a kiosk's start).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

#: The subcommands and their modules, in ``--help`` order.
COMMANDS: dict[str, str] = {
    "run": "kiosk.commands.run",
    "demo": "kiosk.commands.demo",
    "selftest": "kiosk.commands.selftest",
    "simulate": "kiosk.commands.simulate",
    "screenshots": "kiosk.commands.screenshots",
    "check-server": "kiosk.commands.check_server",
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The argument parser of the ``kiosk`` command.

    Args:
        only: register just this subcommand (the one being run); all of them when None.
    """
    parser = argparse.ArgumentParser(
        prog="kiosk", description="Shared-workstation session client for simplejwt servers."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, module in COMMANDS.items():
        if only is None or name == only:
            importlib.import_module(module).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the subcommand; return its exit code."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    only = arguments[0] if arguments and arguments[0] in COMMANDS else None
    args = build_parser(only).parse_args(arguments)
    code: int = args.func(args)
    return code


def run() -> None:
    """Console-script entry point: exit with :func:`main`'s code."""
    sys.exit(main())


if __name__ == "__main__":
    run()
