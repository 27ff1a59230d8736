"""Icons and the stylesheet shipped in ``kiosk/qt/resources/``."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from PySide6.QtGui import QIcon, QPixmap

RESOURCES = Path(__file__).resolve().parent / "resources"


@cache
def icon(name: str) -> QIcon:
    """The SVG icon ``resources/icons/<name>.svg``."""
    return QIcon(str(RESOURCES / "icons" / f"{name}.svg"))


def pixmap(name: str, size: int = 22) -> QPixmap:
    """The icon rendered at ``size`` device-independent pixels (sharp on high-DPI screens)."""
    return icon(name).pixmap(size, size)


@cache
def stylesheet() -> str:
    """The application stylesheet."""
    return (RESOURCES / "style.qss").read_text(encoding="utf-8")
