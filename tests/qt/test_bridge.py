"""The bridge's two HTTP clients over HTTPS behind a hospital's own PKI (real server, TLS).

The ward board's requests go through the bridge's API client, not the token client: before the
bridge shared the manager's SSL context, the API client ignored ``ca_bundle`` and every ward
request failed TLS while sign-in worked.
"""

from __future__ import annotations

import pytest
from conftest import sign_in

from kiosk.core import ServerSettings
from kiosk.testing.server.runner import ReferenceServer

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def tls_server():
    with ReferenceServer(tls=True) as server:
        yield server


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
