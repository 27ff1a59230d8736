"""The bridge: the thread its signals arrive in, and its two HTTP clients over HTTPS.

The ward board's requests go through the bridge's API client, not the token client: before the
bridge shared the manager's SSL context, the API client ignored ``ca_bundle`` and every ward
request failed TLS while sign-in worked.
"""

from __future__ import annotations

import threading
from collections import defaultdict

import pytest
from conftest import sign_in
from PySide6.QtCore import Qt

from kiosk.core import ServerSettings
from kiosk.testing.server.runner import ReferenceServer

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def tls_server():
    with ReferenceServer(tls=True) as server:
        yield server


def test_every_public_signal_is_emitted_in_the_ui_thread(qtbot, make_app, simplejwt_server):
    # A direct connection runs its receiver in the emitting thread, so the receivers below see
    # where the bridge emits; plain lambdas are what a hospital's own window might connect.
    app = make_app(simplejwt_server)
    threads: dict[str, set[str]] = defaultdict(set)
    bridge = app.bridge
    for name in ("security_event", "state_changed", "lock_changed"):
        getattr(bridge, name).connect(
            lambda *_, n=name: threads[n].add(threading.current_thread().name),
            Qt.ConnectionType.DirectConnection,
        )
    sign_in(qtbot, app)
    app.lock()
    qtbot.waitUntil(lambda: "lock_changed" in threads, timeout=5000)
    assert dict(threads) == {
        "security_event": {"MainThread"},
        "state_changed": {"MainThread"},
        "lock_changed": {"MainThread"},
    }


def test_the_ward_board_loads_over_https_with_the_hospital_ca(qtbot, make_app, tls_server):
    app = make_app(tls_server)
    sign_in(qtbot, app)
    board = app.windows[0]
    qtbot.waitUntil(lambda: board.table.rowCount() > 0, timeout=10000)
    assert board.indicator.text == "Signed in as alice"


def test_without_the_ca_bundle_the_nurse_is_told_to_call_it(qtbot, make_app, tls_server):
    app = make_app(tls_server, settings=ServerSettings(base_url=tls_server.base_url))
    form = app.login_window.form
    form.username.setText("alice")
    form.password.setText("alice-secret")
    form.button.click()
    expected = "Secure connection to the server failed (certificate). Tell IT."
    qtbot.waitUntil(lambda: form.error.text() == expected, timeout=10000)
    assert app.windows == []
    assert any(e.kind.value == "tls_error" for e in app.recent_events)
