"""The workspace: one top-level window, every kiosk window a tab (offscreen, real server)."""

from __future__ import annotations

import pytest
from conftest import sign_in
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QTabBar

from kiosk.qt.indicators import BannerView

pytestmark = pytest.mark.server


def _open_charts(qtbot, app, count: int) -> list:
    board = app.windows[0]
    qtbot.waitUntil(lambda: board.table.rowCount() >= count, timeout=10000)
    for row in range(count):
        board.table.selectRow(row)
        board.open_button.click()
    return app.windows[1:]


def _shown_top_levels() -> list:
    return [w for w in QApplication.topLevelWidgets() if w.isVisible()]


def test_every_window_is_a_tab_of_one_top_level_window(qtbot, make_app, simplejwt_server):
    app = make_app(simplejwt_server)
    sign_in(qtbot, app)
    charts = _open_charts(qtbot, app, 2)
    workspace = app.workspace
    assert workspace is not None
    assert _shown_top_levels() == [workspace]  # the sign-in window is hidden, no other window
    assert workspace.tabs.count() == 3
    assert all(window.window() is workspace for window in app.windows)
    assert workspace.current() is charts[-1]  # a new window comes to the front
    assert workspace.windowTitle() == f"{charts[-1].accessibleName()} — kiosk"
    app.show_window(app.windows[0])
    assert workspace.current() is app.windows[0]
    assert workspace.windowTitle() == "Ward board — kiosk"


def test_the_ward_board_tab_cannot_be_closed_but_charts_can(qtbot, make_app, simplejwt_server):
    app = make_app(simplejwt_server)
    sign_in(qtbot, app)
    board, chart = app.windows[0], _open_charts(qtbot, app, 1)[0]
    bar = app.workspace.tabs.tabBar()
    assert bar.tabButton(0, QTabBar.ButtonPosition.RightSide) is None
    close = bar.tabButton(1, QTabBar.ButtonPosition.RightSide)
    assert close is not None
    assert close.accessibleName() == f"Close {chart.accessibleName()}"
    assert min(close.width(), close.height()) >= 44  # a touch target
    app.workspace.activateWindow()
    qtbot.keyClick(chart, Qt.Key.Key_W, Qt.KeyboardModifier.ControlModifier)  # closes the chart
    assert app.windows == [board]
    assert app.workspace.tabs.count() == 1
    assert chart.parent() is None  # out of the workspace: nothing keeps it alive
    app.workspace.close_current()  # Ctrl+W on the board: it stays
    assert app.windows == [board]
    second = _open_charts(qtbot, app, 1)[0]
    qtbot.mouseClick(bar.tabButton(1, QTabBar.ButtonPosition.RightSide), Qt.MouseButton.LeftButton)
    assert app.windows == [board]  # its tab's close button closed it
    assert second.parent() is None


def test_locking_hides_the_tabs_and_the_commands(qtbot, make_app, simplejwt_server):
    app = make_app(simplejwt_server)
    sign_in(qtbot, app)
    board, chart = app.windows[0], _open_charts(qtbot, app, 1)[0]
    workspace = app.workspace
    workspace.activateWindow()
    qtbot.keyClick(chart, Qt.Key.Key_L, Qt.KeyboardModifier.ControlModifier)  # from any tab
    assert app.locked
    assert not workspace.tabs.tabBar().isVisible()  # the tabs name patients
    assert not workspace.commands.isVisible()
    assert not any(action.isEnabled() for action in workspace.actions())
    assert workspace.windowTitle() == "Locked — kiosk"
    # The tab in front and the one behind it both show their lock page, not their content.
    assert not chart.value.isVisibleTo(chart)
    assert not board.table.isVisibleTo(board)
    hint = chart.lock_page.hint
    qtbot.waitUntil(lambda: hint.isVisible())
    qtbot.wait(20)  # one layout pass
    assert hint.height() >= hint.heightForWidth(hint.width())  # both of its lines show
    form = chart.lock_page.form
    form.password.setText("alice-secret")
    with qtbot.waitSignal(app.lock_changed, timeout=5000):
        form.button.click()
    assert workspace.tabs.tabBar().isVisible()
    assert workspace.commands.isVisible()
    assert all(action.isEnabled() for action in workspace.actions())
    assert workspace.current() is chart
    assert workspace.windowTitle() == f"{chart.accessibleName()} — kiosk"


def test_a_banner_behind_the_front_tab_keeps_its_severity(qtbot, make_app, simplejwt_server):
    app = make_app(simplejwt_server)
    sign_in(qtbot, app)
    board = app.windows[0]
    _open_charts(qtbot, app, 1)  # the board is now behind the chart
    assert not board.isVisible()
    board.banner.show_banner(BannerView("high", "reauth", "The session was revoked"))
    board.banner.show_banner(BannerView("info", "info", "Routine notice"))
    assert board.banner.text == "The session was revoked"
    assert board.banner.isVisibleTo(board)


def test_signing_out_releases_the_workspace_and_reuses_it(qtbot, make_app, simplejwt_server):
    app = make_app(simplejwt_server)
    sign_in(qtbot, app)
    _open_charts(qtbot, app, 1)
    workspace = app.workspace
    with qtbot.waitSignal(app.signed_out, timeout=10000):
        app.sign_out()
    assert not workspace.isVisible()
    assert workspace.tabs.count() == 0
    assert _shown_top_levels() == [app.login_window]
    sign_in(qtbot, app, "bob")
    assert app.workspace is workspace
    assert workspace.isVisible()
    assert [w.kind for w in app.windows] == ["ward"]
    assert workspace.tabs.count() == 1


def test_the_commands_beside_the_tabs_open_lock_and_sign_out(qtbot, make_app, simplejwt_server):
    app = make_app(simplejwt_server)
    sign_in(qtbot, app)
    workspace = app.workspace
    assert workspace.open_menu is None  # built at its first use
    buttons = (workspace.open_button, workspace.lock_button, workspace.sign_out_button)
    for button in buttons:
        assert button.accessibleName()
        assert min(button.width(), button.height()) >= 44  # touch targets, unlike a menu bar
    qtbot.mouseClick(workspace.open_button, Qt.MouseButton.LeftButton)
    menu = workspace.open_menu
    assert menu is not None
    qtbot.waitUntil(menu.isVisible)
    titles = [action.text() for action in menu.actions()]
    assert titles == [kind.title for kind in app.registry.kinds() if kind.in_menu]
    menu.actions()[titles.index("Security panel")].trigger()
    assert [w.kind for w in app.windows] == ["ward", "security"]
    assert workspace.current() is app.windows[-1]
    qtbot.mouseClick(workspace.lock_button, Qt.MouseButton.LeftButton)
    assert app.locked
    assert not menu.isVisible()
    form = app.windows[-1].lock_page.form
    form.password.setText("alice-secret")
    with qtbot.waitSignal(app.lock_changed, timeout=5000):
        form.button.click()
    with qtbot.waitSignal(app.signed_out, timeout=10000) as ended:
        qtbot.mouseClick(workspace.sign_out_button, Qt.MouseButton.LeftButton)
    assert ended.args == ["signed_out"]
    assert app.windows == []
