"""Icons and the stylesheet shipped in ``kiosk/qt/resources/``.

The icons are drawn as SVG (``icons/<name>.svg``, the source) and shipped rendered as PNG at
the two sizes the kiosk shows them (``<name>.png``, 22 px, and ``<name>@2x.png`` for high-DPI
screens; :class:`QIcon` picks the one that fits the screen's pixel ratio). Loading SVG icons
at run time brings in Qt's SVG icon engine and libQt6Svg: about 1.1 MB of the kiosk's
resident memory, for eleven small pictures (bench/RESULTS.md). After editing an SVG, render
the PNGs again with ``python -m kiosk.qt.resources`` (tests/qt/test_resources.py checks that
they match).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from PySide6.QtGui import QIcon, QPixmap

RESOURCES = Path(__file__).resolve().parent / "resources"
ICONS = RESOURCES / "icons"

#: The shipped sizes of every icon, in pixels, and their file-name suffixes.
ICON_SIZES: tuple[tuple[int, str], ...] = ((22, ""), (44, "@2x"))


@cache
def icon(name: str) -> QIcon:
    """The icon ``resources/icons/<name>`` (its PNG renderings, one per shipped size)."""
    result = QIcon()
    for _size, suffix in ICON_SIZES:
        result.addFile(str(ICONS / f"{name}{suffix}.png"))
    return result


def pixmap(name: str, size: int = 22) -> QPixmap:
    """The icon at ``size`` device-independent pixels (sharp on high-DPI screens)."""
    return icon(name).pixmap(size, size)


@cache
def stylesheet() -> str:
    """The application stylesheet."""
    return (RESOURCES / "style.qss").read_text(encoding="utf-8")


def render_icons(directory: Path = ICONS) -> list[Path]:
    """Render every ``*.svg`` in ``directory`` to its PNGs (a development step, needs QtSvg).

    Returns:
        The PNG files written.
    """
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    _app = QGuiApplication.instance() or QGuiApplication([])  # QPainter needs one
    written: list[Path] = []
    for svg in sorted(directory.glob("*.svg")):
        renderer = QSvgRenderer(str(svg))
        for size, suffix in ICON_SIZES:
            image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
            image.fill(Qt.GlobalColor.transparent)
            painter = QPainter(image)
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            renderer.render(painter)
            painter.end()
            path = directory / f"{svg.stem}{suffix}.png"
            if not image.save(str(path)):  # PNG, from the suffix
                raise OSError(f"could not write {path}")
            written.append(path)
    return written


if __name__ == "__main__":
    import os

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    for written in render_icons():
        print(written.relative_to(RESOURCES.parent))
