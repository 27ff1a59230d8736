"""The kiosk application through pytest-qt, offscreen, against the real reference server."""

from __future__ import annotations

import pytest
from conftest import sign_in

pytestmark = pytest.mark.server


def test_login_opens_the_ward_board_with_patients(qtbot, make_app, simplejwt_server):
    app = make_app(simplejwt_server)
    assert app.login_window.isVisible()
    sign_in(qtbot, app)
    assert not app.login_window.isVisible()
    assert [w.kind for w in app.windows] == ["ward"]
    board = app.windows[0]
    qtbot.waitUntil(lambda: board.table.rowCount() > 0, timeout=10000)
    assert board.indicator.text == "Signed in as alice"


def test_wrong_password_says_so_in_words(qtbot, make_app, simplejwt_server):
    app = make_app(simplejwt_server)
    form = app.login_window.form
    form.username.setText("alice")
    form.password.setText("nope")
    form.button.click()
    qtbot.waitUntil(lambda: form.error.text() == "Wrong user name or password.", timeout=10000)
    assert form.password.text() == ""
    assert app.windows == []


def _chart(qtbot, app):
    board = app.windows[0]
    qtbot.waitUntil(lambda: board.table.rowCount() > 0, timeout=10000)
    board.table.selectRow(0)
    board.open_button.click()
    return app.windows[-1]


def test_lock_then_resume_keeps_unsent_form_text(qtbot, make_app, simplejwt_server):
    app = make_app(simplejwt_server)
    sign_in(qtbot, app)
    chart = _chart(qtbot, app)
    chart.value.setText("half-typed 118/76")
    with qtbot.waitSignal(app.lock_changed, timeout=5000):
        app.lock()
    assert all(w.locked for w in app.windows)
    assert not chart.value.isVisibleTo(chart)  # patient data hidden behind the lock page
    page = chart.lock_page.form
    assert page.username.text() == "alice"
    page.password.setText("wrong")
    page.button.click()
    qtbot.waitUntil(lambda: page.error.text() == "Wrong user name or password.", timeout=5000)
    assert chart.locked
    page.password.setText("alice-secret")
    with qtbot.waitSignal(app.lock_changed, timeout=5000):
        page.button.click()
    assert not chart.locked
    assert chart.value.text() == "half-typed 118/76"
    assert chart.value.isVisible()


def test_idle_lock_after_the_policy_time_with_a_countdown(qtbot, make_app, simplejwt_server):
    from kiosk.core import SessionPolicy

    app = make_app(simplejwt_server, SessionPolicy(idle_lock_s=3))
    sign_in(qtbot, app)
    board = app.windows[0]
    seen: list[str] = []
    app.view_changed.connect(lambda: seen.append(board.indicator.text))
    with qtbot.waitSignal(app.lock_changed, timeout=10000) as locked:
        pass
    assert locked.args == [True]
    assert board.locked
    assert any(text.startswith("Locking in") for text in seen)
    assert board.indicator.text.startswith("Locked")


def test_a_different_user_at_the_lock_screen_leaves_nothing_of_the_previous_one(
    qtbot, make_app, simplejwt_server
):
    import httpx

    app = make_app(simplejwt_server)
    sign_in(qtbot, app)
    chart = _chart(qtbot, app)
    chart.value.setText("alice's unsent note")
    alice_refresh = app.bridge.run_sync(_vault_refresh)
    app.lock()
    page = chart.lock_page.form
    page.username.setText("bob")
    page.password.setText("bob-secret")
    with qtbot.waitSignal(app.signed_in, timeout=15000) as signed:
        page.button.click()
    assert signed.args == ["bob"]
    assert chart not in app.windows
    assert [w.kind for w in app.windows] == ["ward"]
    assert all(not w.locked for w in app.windows)
    stored = app.bridge.run_sync(_vault_session)
    assert stored.user == "bob"
    reused = httpx.post(
        f"{simplejwt_server.base_url}/api/token/refresh/", json={"refresh": alice_refresh}
    )
    assert reused.status_code == 401
    assert "blacklisted" in reused.json()["detail"].lower()


async def _vault_session(manager):
    return manager.vault.load()


async def _vault_refresh(manager):
    return manager.vault.load().refresh


def test_three_windows_show_the_same_state_in_one_event_loop_turn(
    qtbot, make_app, simplejwt_server
):
    app = make_app(simplejwt_server)
    sign_in(qtbot, app)
    app.open_window("security")
    app.open_window("policy")
    assert len(app.windows) == 3
    snapshots: list[set[str]] = []
    app.view_changed.connect(lambda: snapshots.append({w.indicator.text for w in app.windows}))

    async def refresh(manager):
        await manager.refresh()

    with qtbot.waitSignal(app.refreshed, timeout=10000):
        app.bridge.submit(refresh)
    assert snapshots
    assert all(len(snapshot) == 1 for snapshot in snapshots)


def test_signing_out_closes_everything_and_revokes(qtbot, make_app, simplejwt_server):
    app = make_app(simplejwt_server)
    sign_in(qtbot, app)
    with qtbot.waitSignal(app.signed_out, timeout=10000):
        app.sign_out()
    assert app.windows == []
    assert app.login_window.isVisible()
    assert app.bridge.run_sync(_vault_session) is None
    assert app.bridge.state == "logged_out"


def test_the_hidden_sign_in_window_gives_its_backing_store_back(qtbot, make_app, simplejwt_server):
    app = make_app(simplejwt_server)
    assert app.login_window.windowHandle() is not None
    sign_in(qtbot, app)
    # Hidden for the whole shift: no native window, no backing store (kiosk/qt/login.py).
    assert app.login_window.windowHandle() is None
    with qtbot.waitSignal(app.signed_out, timeout=10000):
        app.sign_out()
    assert app.login_window.isVisible()
    assert app.login_window.windowHandle() is not None
    sign_in(qtbot, app)  # and it works again
    assert [w.kind for w in app.windows] == ["ward"]


def test_a_closed_window_is_freed(qtbot, make_app, simplejwt_server):
    import gc
    import weakref

    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QTabBar

    app = make_app(simplejwt_server)
    sign_in(qtbot, app)
    closed = []
    for kind in ("chart", "security", "policy", "chart"):
        window = _chart(qtbot, app) if kind == "chart" else app.open_window(kind)
        qtbot.wait(200)
        closed.append(weakref.ref(window))
        if len(closed) < 4:
            window.close()
        else:  # the tab's close button
            bar = app.workspace.tabs.tabBar()
            button = bar.tabButton(bar.count() - 1, QTabBar.ButtonPosition.RightSide)
            qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
        del window
    qtbot.waitUntil(lambda: (gc.collect(), all(ref() is None for ref in closed))[1], timeout=5000)
    assert [w.kind for w in app.windows] == ["ward"]


def test_a_reload_changes_only_what_the_answer_changed(qtbot, make_app, simplejwt_server):
    from kiosk.qt.bridge import ApiResult

    app = make_app(simplejwt_server)
    sign_in(qtbot, app)
    board = app.windows[0]
    qtbot.waitUntil(lambda: board.table.rowCount() > 1, timeout=10000)
    changes: list[object] = []
    model = board.table.model()
    for signal in (model.dataChanged, model.rowsInserted, model.rowsRemoved, model.modelReset):
        signal.connect(lambda *args: changes.append(args))
    patients = [dict(p) for p in board.patients]
    board._show_patients(ApiResult(200, [dict(p) for p in patients], None))
    assert changes == []  # the same answer: no widget touched, nothing to repaint
    patients[1]["name"] = "Renamed Patient"
    board._show_patients(ApiResult(200, patients, None))
    assert len(changes) == 1
    assert board.table.item(1, 1).text() == "Renamed Patient"
    assert board.table.item(0, 1).text() == patients[0]["name"]
    board._show_patients(ApiResult(200, patients[:1], None))
    assert board.table.rowCount() == 1
    assert board.status.text() == "1 patients"

    chart = app.open_window("chart", patient=board.patients[0])
    with qtbot.waitSignal(chart.api_finished, timeout=10000):
        pass  # its own first load, before the answers below
    observation = {"kind": "pulse", "value": "70"}
    chart._show_observations(ApiResult(200, [observation], None))
    assert [chart.observations.item(i).text() for i in range(chart.observations.count())] == [
        "pulse: 70"
    ]
    rows: list[object] = []
    chart.observations.model().rowsInserted.connect(lambda *args: rows.append(args))
    chart.observations.model().rowsRemoved.connect(lambda *args: rows.append(args))
    chart._show_observations(ApiResult(200, [observation], None))
    assert rows == []
    chart._show_observations(ApiResult(200, [observation, {"kind": "bp", "value": "120/80"}], None))
    assert len(rows) == 1  # appended, not refilled
    assert chart.observations.item(1).text() == "bp: 120/80"
    chart._show_observations(ApiResult(200, [{"kind": "note", "value": "x"}], None))
    assert [chart.observations.item(i).text() for i in range(chart.observations.count())] == [
        "note: x"
    ]


def test_quitting_a_memory_only_icu_session_leaves_no_live_refresh_token(
    qtbot, make_app, simplejwt_server
):
    from kiosk.core import profile

    # The ICU profile never persists the refresh token: the production vault is memory.
    app = make_app(simplejwt_server, profile("icu"), vault=None)
    before = simplejwt_server.live_refresh_tokens("alice")  # the server is shared by tests
    sign_in(qtbot, app)
    assert simplejwt_server.live_refresh_tokens("alice") == before + 1
    app.shutdown()
    assert simplejwt_server.live_refresh_tokens("alice") == before
    qtbot.wait(100)  # the sign-out's queued events arrive after the windows closed
    assert [e.data.get("reason") for e in app.recent_events if e.kind.value == "logged_out"] == [
        "closed"
    ]
    assert not app.login_window.isVisible()
    assert app.windows == []


def test_quitting_leaves_a_session_in_the_keyring_for_the_next_start(
    qtbot, make_app, simplejwt_server
):
    from kiosk.core import KeyringVault
    from kiosk.testing.keyring import MemoryKeyring

    vault = KeyringVault(simplejwt_server.base_url, backend=MemoryKeyring())
    app = make_app(simplejwt_server, vault=vault)
    before = simplejwt_server.live_refresh_tokens("alice")
    sign_in(qtbot, app)
    app.shutdown()
    assert simplejwt_server.live_refresh_tokens("alice") == before + 1
    stored = vault.load()
    assert stored is not None
    assert stored.user == "alice"
