"""Why kiosk's burst is slower than authlib's: httpx's pool, and a hand-off that fixes it.

    python bench/burst_probe.py        # ~2.5 min; one JSON object on stdout, progress on stderr

Four bursts of 1,000 concurrent GETs on one ``AsyncClient`` (pool of 1,100), 30 s access tokens:

* ``static``: a valid static ``Authorization`` header - no auth logic, no refresh at all;
* ``static_anyio_lock``: the same, but each request first passes an ``anyio.Lock`` (acquire,
  release), which is all that authlib's ``ensure_active_token`` does once the token is fresh;
* ``kiosk``: ``tm.auth`` on an expired token (as in ``run.py``);
* ``kiosk_fifo_handoff``: ``tm.auth`` wrapped in :class:`FifoHandoff`, which lets requests leave
  kiosk's gate through an ``anyio.Lock`` - a prototype of the fix suggested in RESULTS.md, kept
  here (outside ``kiosk/``) as evidence.

anyio's ``Lock`` yields to the loop while held, so waiters pass one per loop iteration and enter
httpcore's pool staggered: early requests finish and their connections are reused. Released all
at once (kiosk's gate), 1,000 requests open ~1,000 connections, and httpcore 1.0.9's
``_assign_requests_to_connections`` costs O(idle x connections) per request event.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import AsyncGenerator
from pathlib import Path

import anyio
import httpx

sys.path.insert(1, str(Path(__file__).resolve().parents[1]))

from scenarios import (
    API_PATH,
    CLIENT_TIMEOUT_S,
    PASSWORD,
    USER,
    burst_limits,
    fire_burst,
    obtain_pair,
    progress,
    static_burst,
)

from kiosk.core import MemoryVault, ServerSettings, TokenManager
from kiosk.testing.server.runner import ReferenceServer

N = 1000
ACCESS_S = 30.0


class FifoHandoff(httpx.Auth):
    """Wraps another async ``httpx.Auth``: once its first request is ready, pass an anyio.Lock."""

    def __init__(self, inner: httpx.Auth) -> None:
        self._inner = inner
        self._lock = anyio.Lock()

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        flow = self._inner.async_auth_flow(request)
        outgoing = await flow.__anext__()  # kiosk's gate: waits for the refresh if needed
        async with self._lock:
            pass
        while True:
            response = yield outgoing
            try:
                outgoing = await flow.asend(response)
            except StopAsyncIteration:
                return


async def _static_locked(server: ReferenceServer) -> float:
    access, _ = await obtain_pair(server.base_url)
    lock = anyio.Lock()
    async with httpx.AsyncClient(
        base_url=server.base_url,
        headers={"Authorization": f"Bearer {access}"},
        limits=burst_limits(N),
        timeout=CLIENT_TIMEOUT_S,
    ) as client:

        async def get() -> httpx.Response:
            async with lock:
                pass
            return await client.get(API_PATH)

        return (await fire_burst(server, N, get)).wall_s


async def _kiosk(server: ReferenceServer, *, handoff: bool) -> dict[str, object]:
    tm = TokenManager(ServerSettings(base_url=server.base_url), vault=MemoryVault())
    await tm.start()
    try:
        await tm.login(USER, PASSWORD)
        # Block the loop (so kiosk's scheduler cannot renew ahead) until the token expired.
        time.sleep(ACCESS_S + 1.5)  # noqa: ASYNC251
        auth: httpx.Auth = FifoHandoff(tm.auth) if handoff else tm.auth
        async with httpx.AsyncClient(
            base_url=server.base_url, auth=auth, limits=burst_limits(N), timeout=CLIENT_TIMEOUT_S
        ) as api:
            result = await fire_burst(server, N, lambda: api.get(API_PATH))
        await tm.logout()
    finally:
        await tm.aclose()
    return {"wall_s": result.wall_s, "refreshes": result.refreshes, "failures": result.failures}


async def main() -> dict[str, object]:
    with ReferenceServer(access_s=ACCESS_S, workers=2, threads=8) as server:
        await static_burst(server, 200)  # warm-up
        out: dict[str, object] = {}
        progress("static")
        out["static_wall_s"] = (await static_burst(server, N)).wall_s
        progress("static_anyio_lock")
        out["static_anyio_lock_wall_s"] = await _static_locked(server)
        progress("kiosk")
        out["kiosk"] = await _kiosk(server, handoff=False)
        progress("kiosk_fifo_handoff")
        out["kiosk_fifo_handoff"] = await _kiosk(server, handoff=True)
        return out


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main())), flush=True)
