"""``kiosk selftest``: prove on a deployed workstation that a short shift works end to end.

Drives the real Qt application (offscreen when there is no display) against the given server:
login → ward board and two chart windows → one proactive token refresh → one observation →
lock → resume → sign out. Exit 0 only if every step passed. The password comes from an
environment variable, never from the command line (which other users can read in ``ps``).

The server is ``--server URL`` or the ``[server]`` table of ``--config FILE`` (the deployed
kiosk config), with the server flags overriding it (:mod:`kiosk.commands.server_args`).
The self-test keeps its refresh token in memory and uses the general-ward policy, whatever
the config's ``[session]`` says: it must not touch the workstation's keyring entry.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from kiosk.commands.server_args import UsageError, add_server_flags, settings_from_args
from kiosk.core import ConfigurationError, MemoryVault


def run(args: argparse.Namespace) -> int:
    """Run the self-test; 0 when every step passed, 1 when one failed, 2 on usage errors."""
    password = os.environ.get(args.password_env)
    if not password:
        print(
            f"kiosk selftest: environment variable {args.password_env} is empty or unset",
            file=sys.stderr,
        )
        return 2
    try:
        if args.server is None and args.config is None:
            raise UsageError("give --server URL or --config FILE (with a [server] url)")
        server, _given = settings_from_args(args, args.server)
    except (UsageError, ConfigurationError) as exc:
        print(f"kiosk selftest: {exc}", file=sys.stderr)
        return 2

    from kiosk.qt.app import KioskApp
    from kiosk.qt.runtime import qt_application
    from kiosk.qt.walkthrough import Step, Walkthrough

    out = sys.stderr if args.json else sys.stdout

    def report(step: Step) -> None:
        mark = "PASS" if step.ok else "FAIL"
        print(
            f"{mark} {step.name:<20} {step.ms:>9.1f} ms  {step.detail}  [{step.indicator}]",
            file=out,
            flush=True,
        )

    qt_application(offscreen=args.offscreen)
    app = KioskApp(server, vault=MemoryVault())
    app.start()
    try:
        result = Walkthrough(
            app,
            args.username,
            password,
            refresh_timeout_s=args.refresh_timeout,
            screenshots=args.screenshots,
            report=report,
        ).run()
    finally:
        app.shutdown()
    if args.json:
        print(json.dumps(result.as_dict()))
    else:
        print("selftest passed" if result.ok else "selftest FAILED", flush=True)
    return 0 if result.ok else 1


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``selftest`` to the ``kiosk`` command."""
    from pathlib import Path

    parser = sub.add_parser("selftest", help="drive the kiosk through a short shift and report")
    parser.add_argument(
        "--server", metavar="URL", help="the server's base URL (overrides the config's url)"
    )
    parser.add_argument("--username", required=True)
    parser.add_argument(
        "--password-env",
        required=True,
        metavar="VAR",
        help="environment variable holding the password",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--refresh-timeout",
        type=float,
        default=20 * 60,
        metavar="S",
        help="how long to wait for the proactive refresh (default 1200 s)",
    )
    parser.add_argument("--offscreen", action="store_true", help="never use the display")
    parser.add_argument(
        "--screenshots",
        type=Path,
        default=None,
        metavar="DIR",
        help="save PNGs of the main screens here",
    )
    add_server_flags(parser)
    parser.set_defaults(func=run)
