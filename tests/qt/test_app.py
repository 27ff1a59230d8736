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
