"""Keyboard alone, accessible names, 44 px touch targets; the shift cap ends cleanly."""

from __future__ import annotations

import pytest
from conftest import sign_in
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractButton,
    QComboBox,
    QLineEdit,
    QListWidget,
    QTabBar,
    QTableWidget,
    QWidget,
)

from kiosk.core import SessionPolicy
from kiosk.qt.indicators import BannerView

pytestmark = pytest.mark.server

CONTROLS = (QAbstractButton, QLineEdit, QComboBox, QListWidget, QTableWidget, QTabBar)


def _controls(root: QWidget) -> list[QWidget]:
    return [w for w in root.findChildren(QWidget) if isinstance(w, CONTROLS)]


def test_sign_in_by_keyboard_alone(qtbot, make_app, simplejwt_server):
    app = make_app(simplejwt_server)
    window = app.login_window
    qtbot.waitExposed(window)
    window.activateWindow()
    form = window.form
    form.username.setFocus()
    qtbot.keyClicks(form.username, "alice")
    qtbot.keyClick(form.username, Qt.Key.Key_Return)
    assert form.password.hasFocus() or app.login_window.focusWidget() is form.password
    qtbot.keyClicks(form.password, "alice-secret")
    with qtbot.waitSignal(app.signed_in, timeout=15000):
        qtbot.keyClick(form.password, Qt.Key.Key_Return)
    board = app.windows[0]
    qtbot.waitUntil(lambda: board.table.rowCount() > 0, timeout=10000)
    # Lock by its shortcut, unlock by typing and Enter.
    qtbot.keyClick(board, Qt.Key.Key_L, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: board.locked, timeout=5000)
    qtbot.keyClicks(board.lock_page.form.password, "alice-secret")
    qtbot.keyClick(board.lock_page.form.password, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not board.locked, timeout=5000)
    # Open the security panel by keyboard: Alt+O, then the menu's arrow keys and Enter.
    workspace = app.workspace
    workspace.activateWindow()
    qtbot.waitUntil(workspace.isActiveWindow, timeout=5000)
    qtbot.keyClick(board, Qt.Key.Key_O, Qt.KeyboardModifier.AltModifier)
    # A mnemonic "animates" the button's click, which lands a moment later.
    qtbot.waitUntil(lambda: workspace.open_menu is not None, timeout=5000)
    menu = workspace.open_menu
    qtbot.waitUntil(menu.isVisible, timeout=5000)
    titles = [action.text() for action in menu.actions()]
    for _ in range(titles.index("Security panel") + 1):
        qtbot.keyClick(menu, Qt.Key.Key_Down)
    qtbot.keyClick(menu, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: app.windows[-1].kind == "security", timeout=5000)
    assert workspace.current() is app.windows[-1]
    # Ctrl+W closes it again (the window in front); the ward board's tab stays.
    qtbot.keyClick(app.windows[-1], Qt.Key.Key_W, Qt.KeyboardModifier.ControlModifier)
    assert [w.kind for w in app.windows] == ["ward"]


def test_every_control_has_an_accessible_name_and_a_44px_target(qtbot, make_app, simplejwt_server):
    app = make_app(simplejwt_server)
    sign_in(qtbot, app)
    board = app.windows[0]
    qtbot.waitUntil(lambda: board.table.rowCount() > 0, timeout=10000)
    board.table.selectRow(0)
    board.open_button.click()
    app.open_window("security")
    app.open_window("policy")
    for window in app.windows:
        assert window.lock_page.form.password.accessibleName() == "Password"  # built lazily
        window.banner.show_banner(BannerView("info", "info", "A notice"))  # built lazily too
    assert app.workspace is not None
    roots = [app.login_window, app.workspace]  # the workspace holds every window
    checked = 0
    for root in roots:
        for control in _controls(root):
            if type(control) is QAbstractButton or control.objectName().startswith("qt_"):
                continue  # Qt's own internals (a table's corner button, scroll arrows)
            assert control.accessibleName(), f"{type(control).__name__} in {root.windowTitle()}"
            visible = control.isVisibleTo(root)
            if visible and isinstance(control, QAbstractButton | QLineEdit | QComboBox | QTabBar):
                assert control.sizeHint().height() >= 44 or control.height() >= 44, (
                    f"{control.accessibleName()} is {control.height()} px high"
                )
            checked += 1
    assert checked >= 25  # lock pages and banners included


def test_the_shift_cap_warns_then_ends_the_session_cleanly(qtbot, make_app, simplejwt_server):
    policy = SessionPolicy(absolute_cap_s=4, cap_warning_s=2.5, idle_lock_s=600)
    app = make_app(simplejwt_server, policy)
    sign_in(qtbot, app)
    board = app.windows[0]
    qtbot.waitUntil(lambda: board.banner.isVisible(), timeout=10000)
    assert "ends soon" in board.banner.text
    assert board.indicator.text.startswith("Shift ending in")
    with qtbot.waitSignal(app.signed_out, timeout=10000) as ended:
        pass
    assert ended.args == ["shift_cap"]
    assert app.windows == []
    assert app.login_window.isVisible()
    assert "shift session has ended" in app.login_window.notice.text()
    assert app.bridge.state == "ended"
