"""FaultInjector: scripted faults in front of a (here mocked) transport."""

from __future__ import annotations

import httpx
import pytest

from kiosk.testing.faults import FaultInjector


def _inner(seen: list[httpx.Request]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"ok": True})

    return httpx.MockTransport(handler)


async def test_status_faults_apply_to_matching_paths_for_the_given_count():
    seen: list[httpx.Request] = []
    faults = FaultInjector(_inner(seen))
    faults.status(429, path="/refresh/", times=2, retry_after=3)
    async with httpx.AsyncClient(transport=faults, base_url="http://t") as client:
        other = await client.get("/api/me/")
        first = await client.post("/api/token/refresh/")
        second = await client.post("/api/token/refresh/")
        third = await client.post("/api/token/refresh/")
    assert other.status_code == 200
    assert [first.status_code, second.status_code, third.status_code] == [429, 429, 200]
    assert first.headers["retry-after"] == "3"
    assert len(seen) == 2
    assert len(faults.injected("status", path="/refresh/")) == 2


async def test_read_timeout_forwards_the_request_then_loses_the_answer():
    seen: list[httpx.Request] = []
    faults = FaultInjector(_inner(seen))
    faults.read_timeout()
    async with httpx.AsyncClient(transport=faults, base_url="http://t") as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.post("/api/token/refresh/")
    assert len(seen) == 1  # the server did process it


async def test_connect_errors_and_outages_never_reach_the_server():
    seen: list[httpx.Request] = []
    faults = FaultInjector(_inner(seen))
    faults.connect_error()
    async with httpx.AsyncClient(transport=faults, base_url="http://t") as client:
        with pytest.raises(httpx.ConnectError):
            await client.get("/a")
        faults.outage()
        for _ in range(3):
            with pytest.raises(httpx.ConnectError):
                await client.get("/a")
        faults.restore()
        assert (await client.get("/a")).status_code == 200
    assert len(seen) == 1
    assert len(faults.injected("connect_error")) == 4


async def test_corrupt_token_changes_the_bearer_token_sent():
    seen: list[httpx.Request] = []
    faults = FaultInjector(_inner(seen))
    faults.corrupt_token()
    async with httpx.AsyncClient(transport=faults, base_url="http://t") as client:
        await client.get("/a", headers={"Authorization": "Bearer aaa.bbb.cccAAAA"})
        await client.get("/a", headers={"Authorization": "Bearer aaa.bbb.ccc1234"})
    assert seen[0].headers["authorization"] == "Bearer aaa.bbb.cccBBBB"
    assert seen[1].headers["authorization"] == "Bearer aaa.bbb.ccc1234"
