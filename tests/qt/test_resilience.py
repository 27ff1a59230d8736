"""The shell under trouble: outages, slow servers, revoked sessions, many signals."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import httpx
import pytest
import shiboken6
from conftest import sign_in
from PySide6.QtCore import QCoreApplication, QEvent, Qt, QTimer

from kiosk.core import BackoffPolicy, SessionPolicy
from kiosk.testing.faults import FaultInjector

pytestmark = pytest.mark.server


@pytest.mark.slow
@pytest.mark.simplejwt_server(access_s=3)
def test_indicator_follows_an_outage_and_the_recovery(qtbot, make_app, private_simplejwt_server):
    server = private_simplejwt_server
    policy = SessionPolicy(backoff=BackoffPolicy(base_s=0.5, cap_s=2.0))
    app = make_app(server, policy)
    sign_in(qtbot, app)
    board = app.windows[0]
    seen: list[str] = []
    app.view_changed.connect(lambda: seen.append(board.indicator.text))
    server.stop()
    qtbot.waitUntil(lambda: "Server unreachable" in board.indicator.text, timeout=15000)
    assert board.indicator.view.icon == "retrying"
    server.start()
    qtbot.waitUntil(lambda: board.indicator.text == "Signed in as alice", timeout=15000)
    assert any("retrying in" in text for text in seen)
    assert not app.windows[0].locked
    assert app.reauth_dialog is None


def test_ui_stays_responsive_while_every_response_takes_2s(qtbot, make_app, simplejwt_server):
    token_faults = FaultInjector()
    api_faults = FaultInjector()
    token_faults.latency(2.0, times=100)
    api_faults.latency(2.0, times=100)
    app = make_app(simplejwt_server, transport=token_faults, api_transport=api_faults)
    gaps: list[float] = []
    last = [time.monotonic()]

    def tick() -> None:
        now = time.monotonic()
        gaps.append(now - last[0])
        last[0] = now

    timer = QTimer()
    timer.timeout.connect(tick)
    timer.start(20)
    sign_in(qtbot, app)  # 2 s login
    board = app.windows[0]
    qtbot.waitUntil(lambda: board.table.rowCount() > 0, timeout=15000)  # 2 s API call
    timer.stop()
    assert len(token_faults.injected("latency")) >= 1
    assert len(api_faults.injected("latency")) >= 1
    assert len(gaps) > 50
    # A UI thread that waited on the network would show a gap of 2 s or more.
    assert max(gaps) < 1.0


def test_a_revoked_session_asks_for_the_password_and_keeps_the_work(
    qtbot, make_app, simplejwt_server
):
    app = make_app(simplejwt_server)
    sign_in(qtbot, app)
    board = app.windows[0]
    qtbot.waitUntil(lambda: board.table.rowCount() > 0, timeout=10000)
    board.table.selectRow(0)
    board.open_button.click()
    chart = app.windows[-1]
    chart.value.setText("BP 121/79, unsent")

    async def revoke_then_refresh(manager):
        refresh = manager.vault.load().refresh
        async with httpx.AsyncClient() as raw:
            await raw.post(
                f"{simplejwt_server.base_url}/api/token/blacklist/", json={"refresh": refresh}
            )
        try:
            await manager.refresh()
        except Exception as exc:
            return type(exc).__name__
        return None

    assert app.bridge.run_sync(revoke_then_refresh) == "NeedsReauthenticationError"
    qtbot.waitUntil(lambda: app.reauth_dialog is not None, timeout=5000)
    dialog = app.reauth_dialog
    assert dialog.isVisible()
    assert board.indicator.text == "Please sign in again to continue"
    assert chart in app.windows
    assert board.banner.isVisibleTo(board)  # the board is a tab behind the chart
    assert chart.banner.isVisible()
    assert "revoked" in board.banner.text
    qtbot.keyClick(dialog, Qt.Key.Key_Escape)  # cannot be dismissed: the work needs a session
    dialog.close()
    assert dialog.isVisible()
    dialog.form.password.setText("alice-secret")
    dialog.form.button.click()
    qtbot.waitUntil(lambda: app.reauth_dialog is None, timeout=10000)
    # Freed, not only hidden (deferred deletes wait for the top event loop: deliver them).
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    assert not shiboken6.isValid(dialog)
    assert app.bridge.state == "active"
    assert chart.value.text() == "BP 121/79, unsent"
    chart.record_button.click()
    qtbot.waitUntil(lambda: chart.message.text() == "Saved.", timeout=10000)
    assert chart.value.text() == ""


def test_recording_an_observation_posts_it_once(qtbot, make_app, simplejwt_server):
    app = make_app(simplejwt_server)
    sign_in(qtbot, app)
    board = app.windows[0]
    qtbot.waitUntil(lambda: board.table.rowCount() > 0, timeout=10000)
    board.table.selectRow(1)
    board.open_button.click()
    chart = app.windows[-1]
    qtbot.waitUntil(lambda: chart.message.text() == "" and chart.observations is not None)
    before = chart.observations.count()
    chart.kind_box.setCurrentText("pulse")
    chart.value.setText("88")
    chart.record_button.click()
    qtbot.waitUntil(lambda: chart.message.text() == "Saved.", timeout=10000)
    assert chart.observations.count() == before + 1
    assert chart.observations.item(chart.observations.count() - 1).text() == "pulse: 88"


def test_100000_signal_emits_do_not_crash():
    # In a subprocess: PySide6 6.12.0 on CPython 3.11 aborts the interpreter (DESIGN §8).
    script = textwrap.dedent(
        """
        import os
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
        from PySide6.QtCore import QObject, Signal
        from PySide6.QtWidgets import QApplication

        class Emitter(QObject):
            changed = Signal(bool, object)

        app = QApplication([])
        received = []
        emitter = Emitter()
        emitter.changed.connect(lambda flag, value: received.append(flag))
        for i in range(100_000):
            emitter.changed.emit(i % 2 == 0, None)
        print(len(received))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "100000"


def test_signing_out_from_the_reauthentication_dialog_ends_the_session(
    qtbot, make_app, simplejwt_server
):
    app = make_app(simplejwt_server)
    before = simplejwt_server.live_refresh_tokens("alice")  # the server is shared by tests
    sign_in(qtbot, app)
    assert app.bridge.run_sync(_revoke_then_refresh(simplejwt_server)) == (
        "NeedsReauthenticationError"
    )
    qtbot.waitUntil(lambda: app.reauth_dialog is not None, timeout=5000)
    dialog = app.reauth_dialog
    assert dialog.sign_out_button.accessibleName() == "Sign out instead"
    with qtbot.waitSignal(app.signed_out, timeout=10000) as ended:
        dialog.sign_out_button.click()
    assert ended.args == ["signed_out"]
    assert app.reauth_dialog is None
    assert app.windows == []
    assert app.login_window.isVisible()
    assert app.bridge.state == "logged_out"
    assert simplejwt_server.live_refresh_tokens("alice") == before


def _revoke_then_refresh(server):
    async def job(manager):
        refresh = manager.vault.load().refresh
        async with httpx.AsyncClient() as raw:
            await raw.post(f"{server.base_url}/api/token/blacklist/", json={"refresh": refresh})
        try:
            await manager.refresh()
        except Exception as exc:
            return type(exc).__name__
        return None

    return job
