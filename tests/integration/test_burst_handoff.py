"""A burst on an expired token against the real reference server: the gate's hand-off.

The unit tests (tests/unit/core/test_manager.py) pin the hand-off's rules on a virtual clock;
this one checks the property they exist for, with real httpx/httpcore and gunicorn: the
burst causes one refresh, every request succeeds, and the application's pool opens a
handful of connections rather than one per request (DESIGN §9, kiosk.core.manager).
"""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from kiosk.core import MemoryVault, ServerSettings, TokenManager
from kiosk.core.manager import HANDOFF_MAX_LIMIT

pytestmark = pytest.mark.server

N = 300


@pytest.mark.simplejwt_server(access_s=6)
async def test_a_burst_on_an_expired_token_refreshes_once_and_reuses_connections(
    simplejwt_server,
):
    server = ServerSettings(base_url=simplejwt_server.base_url)
    async with TokenManager(server, vault=MemoryVault()) as tm:
        await tm.login("alice", "alice-secret")
        # Block the loop (so the scheduler cannot renew ahead) until the token expired.
        time.sleep(max(tm._access.claims.exp + 1.2 - time.time(), 0.0))  # noqa: ASYNC251
        simplejwt_server.reset_stats()
        limits = httpx.Limits(max_connections=N + 100, max_keepalive_connections=N + 100)
        async with httpx.AsyncClient(
            base_url=server.base_url, auth=tm.auth, limits=limits, timeout=60
        ) as api:
            pool = api._transport._pool
            opened = [0]
            create = pool.create_connection

            def counting(origin):
                opened[0] += 1
                return create(origin)

            pool.create_connection = counting
            responses = await asyncio.gather(*(api.get("/api/me/") for _ in range(N)))
        metrics = tm.metrics()
    assert [r.status_code for r in responses] == [200] * N
    stats = simplejwt_server.stats()
    assert stats["refresh"] == 1
    assert stats["api_401"] == 0
    assert metrics["requests_replayed"] == 0
    # Released all at once, the burst opened one connection per request (N); the hand-off
    # keeps at most its limit unanswered, so the pool never needs more than about that.
    assert opened[0] <= HANDOFF_MAX_LIMIT + 8
