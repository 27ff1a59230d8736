"""The idle lock's activity: input at the kiosk's native windows (offscreen, real server)."""

from __future__ import annotations

import pytest
from conftest import sign_in
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest

from kiosk.core import SessionPolicy

pytestmark = pytest.mark.server


def _idle_for_a_minute(app) -> None:
    app.activity.last_activity -= 60.0
    assert app.idle_s >= 60.0


def test_a_tap_or_a_key_in_the_workspace_counts_as_activity(qtbot, make_app, simplejwt_server):
    app = make_app(simplejwt_server, SessionPolicy(idle_lock_s=600))
    sign_in(qtbot, app)
    board = app.windows[0]
    window = app.workspace.windowHandle()
    _idle_for_a_minute(app)
    point = board.reload_button.mapTo(app.workspace, board.reload_button.rect().center())
    QTest.mouseClick(window, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, point)
    assert app.idle_s < 5.0
    _idle_for_a_minute(app)
    QTest.keyClick(window, Qt.Key.Key_Down)
    assert app.idle_s < 5.0
    _idle_for_a_minute(app)
    QTest.mouseMove(window, QPoint(10, 10))
    assert app.idle_s < 5.0


def test_the_sign_in_window_is_watched_again_after_a_sign_out(qtbot, make_app, simplejwt_server):
    app = make_app(simplejwt_server, SessionPolicy(idle_lock_s=600))
    sign_in(qtbot, app)  # the sign-in window's native window is freed meanwhile
    with qtbot.waitSignal(app.signed_out, timeout=10000):
        app.sign_out()
    _idle_for_a_minute(app)
    QTest.keyClick(app.login_window.windowHandle(), Qt.Key.Key_A)
    assert app.idle_s < 5.0


def test_activity_postpones_the_idle_lock(qtbot, make_app, simplejwt_server):
    app = make_app(simplejwt_server, SessionPolicy(idle_lock_s=2))
    sign_in(qtbot, app)
    window = app.workspace.windowHandle()
    for step in range(8):  # 4 s of taps, every half second: never 2 s idle
        QTest.mouseMove(window, QPoint(20 + step, 20))
        app.check_idle()
        qtbot.wait(500)
    assert not app.locked
    with qtbot.waitSignal(app.lock_changed, timeout=10000):
        pass  # and with the taps over, the lock comes down
    assert app.locked
