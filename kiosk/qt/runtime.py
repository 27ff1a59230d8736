"""Creating the QApplication: with a display when there is one, offscreen otherwise."""

from __future__ import annotations

import os
import sys

from PySide6.QtCore import QMessageLogContext, QtMsgType, qInstallMessageHandler
from PySide6.QtWidgets import QApplication

#: Qt messages that say nothing to a nurse or to IT (the offscreen platform's limits).
_QUIET = ("This plugin does not support",)


def _qt_messages(mode: QtMsgType, context: QMessageLogContext, message: str) -> None:
    if message.startswith(_QUIET):
        return
    print(f"qt: {message}", file=sys.stderr)


def has_display() -> bool:
    """Whether a real screen is available (a forced offscreen platform counts as none)."""
    if os.environ.get("QT_QPA_PLATFORM", "").startswith(("offscreen", "minimal")):
        return False
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def qt_application(*, offscreen: bool = False) -> QApplication:
    """The QApplication, created offscreen when asked or when there is no display."""
    existing = QApplication.instance()
    if isinstance(existing, QApplication):
        return existing
    if offscreen or not has_display():
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    qInstallMessageHandler(_qt_messages)
    app = QApplication(sys.argv[:1])
    app.setApplicationName("kiosk")
    app.setOrganizationName("kiosk")
    return app
