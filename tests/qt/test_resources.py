"""The shipped icons, and what loading the Qt shell costs in memory (kiosk/qt/__init__.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import QSize
from PySide6.QtGui import QImage

from kiosk.qt import _source_mentions_pyside
from kiosk.qt.resources import ICON_SIZES, ICONS, icon, render_icons

ROOT = Path(__file__).resolve().parents[2]


def _child(code: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )


def test_every_svg_icon_ships_as_png_at_every_size(qapp, tmp_path):
    svgs = sorted(ICONS.glob("*.svg"))
    assert len(svgs) >= 10
    for svg in svgs:
        (tmp_path / svg.name).write_bytes(svg.read_bytes())
    render_icons(tmp_path)
    for svg in svgs:
        for size, suffix in ICON_SIZES:
            name = f"{svg.stem}{suffix}.png"
            shipped = QImage(str(ICONS / name))
            fresh = QImage(str(tmp_path / name)).convertToFormat(shipped.format())
            assert shipped.size() == QSize(size, size), name
            # Rendered from the SVG as it is now (run `python -m kiosk.qt.resources` after
            # editing one); a few levels of antialiasing difference between Qt builds pass.
            worst = max(
                abs(((a >> shift) & 0xFF) - ((b >> shift) & 0xFF))
                for y in range(size)
                for x in range(size)
                for a, b in [(shipped.pixel(x, y), fresh.pixel(x, y))]
                for shift in (0, 8, 16, 24)
            )
            assert worst <= 16, name


def test_icons_come_in_both_sizes_for_high_dpi_screens(qapp):
    sizes = icon("active").availableSizes()
    assert QSize(22, 22) in sizes
    assert QSize(44, 44) in sizes
    assert icon("active").pixmap(QSize(22, 22), 2.0).size() == QSize(44, 44)


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc/self/maps")
def test_showing_icons_does_not_load_qt_svg():
    result = _child(
        "from PySide6.QtWidgets import QApplication\n"
        "app = QApplication([])\n"
        "from kiosk.qt.resources import pixmap\n"
        "assert not pixmap('active').isNull() and not pixmap('warning', 16).isNull()\n"
        "maps = open('/proc/self/maps').read()\n"
        "print('Qt6Svg' in maps or 'qsvg' in maps)\n"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_modules_imported_after_the_qt_shell_are_not_kept_as_source():
    # shiboken's import hook read every later module's source into linecache for good
    result = _child(
        "import linecache, sys\n"
        "import kiosk.qt\n"
        "import colorsys, json.tool, kiosk.qt.app\n"
        "print(sorted(f for f in linecache.cache if f.endswith(('colorsys.py', 'tool.py',"
        " 'app.py'))))\n"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_the_pyside_check_gives_the_answer_shiboken_gave():
    import colorsys
    import inspect

    import kiosk.qt.app
    import kiosk.qt.bridge

    for module in (colorsys, kiosk.qt.app, kiosk.qt.bridge, inspect):
        assert _source_mentions_pyside(module) == ("PySide6" in inspect.getsource(module))
    assert _source_mentions_pyside(sys) is False  # built in: no source
