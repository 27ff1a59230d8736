"""The main screens render to PNG offscreen, with real content."""

from __future__ import annotations

import pytest
from PySide6.QtGui import QImage

from kiosk.qt.screenshots import take_screenshots

pytestmark = pytest.mark.server


def test_every_main_screen_is_rendered(qtbot, simplejwt_server, tmp_path):
    shots = take_screenshots(tmp_path, simplejwt_server.base_url, user="bob")
    names = sorted(p.name for p in shots)
    assert names == sorted(
        [
            "login.png",
            "workspace.png",
            "retrying.png",
            "lock.png",
            "reauthenticate.png",
            "security-panel.png",
        ]
    )
    for path in shots:
        image = QImage(str(path))
        assert image.width() >= 600
        assert image.height() >= 400
        # Not a blank canvas: a rendered screen has many distinct colours (text, icons, fields).
        colours = {
            image.pixel(x, y)
            for x in range(0, image.width(), 7)
            for y in range(0, image.height(), 7)
        }
        assert len(colours) > 20, path.name
