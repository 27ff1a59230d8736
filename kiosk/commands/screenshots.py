"""``kiosk screenshots DIR``: render the main screens to PNG against the reference server."""

from __future__ import annotations

import argparse
from pathlib import Path


def run(args: argparse.Namespace) -> int:
    """Start a reference server, capture the screens, print the files."""
    from kiosk.qt.runtime import qt_application
    from kiosk.qt.screenshots import take_screenshots
    from kiosk.testing.server.runner import ReferenceServer

    qt_application(offscreen=True)
    with ReferenceServer(access_s=120) as server:
        for path in take_screenshots(args.directory, server.base_url):
            print(path)
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``screenshots`` to the ``kiosk`` command."""
    parser = sub.add_parser("screenshots", help="render the main screens to PNG files")
    parser.add_argument("directory", type=Path, nargs="?", default=Path("docs/screenshots"))
    parser.set_defaults(func=run)
