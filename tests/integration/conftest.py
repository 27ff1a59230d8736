"""Fixtures for tests against the real reference server: managers that record their events."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import httpx
import pytest

from kiosk.core import MemoryVault, SecurityEvent, ServerSettings, TokenManager
from kiosk.testing.server.runner import ReferenceServer

pytestmark = pytest.mark.server


class Recorder:
    """Collects a manager's security events."""

    def __init__(self) -> None:
        self.events: list[SecurityEvent] = []

    def __call__(self, event: SecurityEvent) -> None:
        self.events.append(event)

    def kinds(self) -> list[str]:
        return [e.kind.value for e in self.events]

    def of(self, kind: str) -> list[SecurityEvent]:
        return [e for e in self.events if e.kind.value == kind]


Session = tuple[TokenManager, httpx.AsyncClient, Recorder, MemoryVault]
SessionFactory = Callable[..., AbstractAsyncContextManager[Session]]


@pytest.fixture
def session_for() -> SessionFactory:
    """``async with session_for(server, **manager_kwargs) as (tm, api, recorder, vault)``.

    The manager is started, alice is logged in, ``api`` is an AsyncClient through ``tm.auth``.
    """

    @asynccontextmanager
    async def open_session(
        server: ReferenceServer, user: str = "alice", **kwargs: Any
    ) -> AsyncIterator[Session]:
        settings = ServerSettings(base_url=server.base_url)
        vault = kwargs.pop("vault", None) or MemoryVault()
        recorder = Recorder()
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=50)
        async with TokenManager(settings, vault=vault, **kwargs) as tm:
            tm.subscribe(recorder)
            await tm.login(user, server.users[user])
            async with httpx.AsyncClient(
                base_url=server.base_url, auth=tm.auth, limits=limits, timeout=30
            ) as api:
                yield tm, api, recorder, vault

    return open_session
