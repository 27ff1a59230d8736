"""Fixtures for pytest-qt tests of the kiosk application against the real reference server."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from kiosk.core import MemoryVault, ServerSettings, SessionPolicy
from kiosk.qt.app import KioskApp

AppFactory = Callable[..., KioskApp]


@pytest.fixture
def make_app(qtbot) -> Iterator[AppFactory]:
    """``make_app(server, policy=..., settings=..., **kwargs)``: a started KioskApp, shut down
    afterwards; its settings trust the server's ``ca_bundle`` (an HTTPS reference server's)."""
    apps: list[KioskApp] = []

    def factory(
        server: Any,
        policy: SessionPolicy | None = None,
        *,
        settings: ServerSettings | None = None,
        **kwargs: Any,
    ) -> KioskApp:
        kwargs.setdefault("vault", MemoryVault())
        if settings is None:
            settings = ServerSettings(
                base_url=server.base_url, ca_bundle=getattr(server, "ca_bundle", None)
            )
        app = KioskApp(settings, policy, **kwargs)
        app.start()
        apps.append(app)
        return app

    yield factory
    for app in apps:
        app.shutdown()


def sign_in(qtbot, app: KioskApp, user: str = "alice", password: str | None = None) -> None:
    """Type the credentials into the sign-in window and wait for the workspace."""
    form = app.login_window.form
    form.username.setText(user)
    form.password.setText(password or f"{user}-secret")
    with qtbot.waitSignal(app.signed_in, timeout=15000):
        form.button.click()
