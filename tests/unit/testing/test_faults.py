"""FaultInjector: scripted faults and time windows in front of a (here mocked) transport."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import httpx
import pytest

from kiosk.testing.clock import VirtualClock
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


# ---------------------------------------------------------------------------- time windows


def _on_clock(
    seen: list[httpx.Request], clock: VirtualClock, **kwargs: Any
) -> tuple[FaultInjector, httpx.AsyncClient]:
    faults = FaultInjector(_inner(seen), clock=clock, **kwargs)
    return faults, httpx.AsyncClient(transport=faults, base_url="http://t")


async def _outcome(client: httpx.AsyncClient, path: str = "/a") -> str:
    try:
        response = await client.get(path)
    except httpx.TransportError as exc:
        return type(exc).__name__
    return str(response.status_code)


def test_windows_need_a_clock_and_a_forward_interval():
    with pytest.raises(ValueError, match="clock"):
        FaultInjector(_inner([])).window("connect_error", 0, 10)
    faults = FaultInjector(_inner([]), clock=VirtualClock())
    for start, end in [(10, 10), (10, 5), (0, float("nan"))]:
        with pytest.raises(ValueError, match="before it starts"):
            faults.window("connect_error", start, end)
    assert faults.windows == []


async def test_a_window_covers_requests_from_its_start_until_just_before_its_end():
    seen: list[httpx.Request] = []
    clock = VirtualClock()
    faults, client = _on_clock(seen, clock)
    faults.window("connect_error", 10, 20)
    outcomes = []
    async with client:
        for at in [9.5, 10, 15, 19.999, 20, 25]:
            await clock.advance(at - clock.monotonic())
            outcomes.append((at, await _outcome(client)))
    assert outcomes == [
        (9.5, "200"),
        (10, "ConnectError"),
        (15, "ConnectError"),
        (19.999, "ConnectError"),
        (20, "200"),
        (25, "200"),
    ]
    assert len(seen) == 3
    assert len(faults.injected("connect_error")) == 3


async def test_windows_count_from_the_clock_at_construction_by_default():
    clock = VirtualClock()
    await clock.advance(100)
    faults, client = _on_clock([], clock)
    faults.window("status", 0, 5, status=503)
    assert faults.elapsed() == 0.0
    async with client:
        assert await _outcome(client) == "503"
        await clock.advance(5)
        assert faults.elapsed() == 5.0
        assert await _outcome(client) == "200"


async def test_an_explicit_origin_is_where_window_times_count_from():
    clock = VirtualClock()
    await clock.advance(100)
    faults, client = _on_clock([], clock, origin=0.0)
    faults.window("status", 100, 101, status=502)
    assert faults.elapsed() == 100.0
    async with client:
        assert await _outcome(client) == "502"
        await clock.advance(1)
        assert await _outcome(client) == "200"


def test_without_a_clock_elapsed_is_zero():
    assert FaultInjector(_inner([])).elapsed() == 0.0
    assert FaultInjector(_inner([]), origin=50.0).elapsed() == 0.0


async def test_a_window_hits_only_paths_containing_its_path():
    seen: list[httpx.Request] = []
    clock = VirtualClock()
    faults, client = _on_clock(seen, clock)
    faults.window("status", 0, 60, path="/api/token/refresh/", status=503)
    async with client:
        assert await _outcome(client, "/api/token/refresh/") == "503"
        assert await _outcome(client, "/api/me/") == "200"
    assert [r.url.path for r in seen] == ["/api/me/"]
    assert [f.path for f in faults.injected("status")] == ["/api/token/refresh/"]


async def test_status_windows_answer_with_their_status_and_retry_after():
    clock = VirtualClock()
    faults, client = _on_clock([], clock)
    faults.window("status", 0, 10, status=429, retry_after=2.5)
    faults.window("status", 10, 20, status=503, retry_after="Wed, 21 Oct 2026 07:28:00 GMT")
    faults.window("status", 20, 30, status=500)
    async with client:
        limited = await client.get("/a")
        await clock.advance(10)
        dated = await client.get("/a")
        await clock.advance(10)
        plain = await client.get("/a")
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "3"  # delta-seconds are whole; rounded up
    assert dated.headers["retry-after"] == "Wed, 21 Oct 2026 07:28:00 GMT"
    assert plain.status_code == 500
    assert "retry-after" not in plain.headers
    assert [f.status for f in faults.injected("status")] == [429, 503, 500]


@pytest.mark.parametrize(("retry_after", "header"), [(3, "3"), (2.0, "2"), (0.1, "1"), (0, "0")])
def test_numeric_retry_after_is_sent_as_delta_seconds(retry_after, header):
    faults = FaultInjector(_inner([]), clock=VirtualClock())
    assert faults.status(429, retry_after=retry_after).retry_after == header
    assert faults.window("status", 0, 1, retry_after=retry_after).retry_after == header


async def test_a_connect_timeout_window_never_sends_and_a_read_timeout_window_does():
    seen: list[httpx.Request] = []
    clock = VirtualClock()
    faults, client = _on_clock(seen, clock)
    faults.window("connect_timeout", 0, 10)
    faults.window("read_timeout", 10, 20)
    async with client:
        with pytest.raises(httpx.ConnectTimeout):
            await client.get("/api/token/refresh/")
        assert seen == []
        assert faults.reached_server() == 0
        await clock.advance(10)
        with pytest.raises(httpx.ReadTimeout):
            await client.post("/api/token/refresh/")
    assert len(seen) == 1  # processed; only the answer was lost
    assert faults.reached_server("/refresh/") == 1
    assert [f.kind for f in faults.log] == ["connect_timeout", "read_timeout"]


async def test_latency_waits_on_the_clock_after_the_server_answered():
    seen: list[httpx.Request] = []
    clock = VirtualClock()
    faults, client = _on_clock(seen, clock)
    faults.window("latency", 0, 60, seconds=5)
    async with client:
        request = asyncio.create_task(client.get("/a"))
        await clock.advance(4.9)
        assert len(seen) == 1  # the server has it ...
        assert not request.done()  # ... but the answer is late
        await clock.advance(0.1)
        assert request.done()
        response = await request
    assert response.status_code == 200
    assert clock.monotonic() == 5.0
    assert len(faults.injected("latency")) == 1


async def test_a_latency_rule_without_a_clock_sleeps_in_real_time():
    faults = FaultInjector(_inner([]))
    faults.latency(0.05)
    loop = asyncio.get_running_loop()
    async with httpx.AsyncClient(transport=faults, base_url="http://t") as client:
        started = loop.time()
        response = await client.get("/a")
    assert response.status_code == 200
    assert loop.time() - started >= 0.04


async def test_a_probability_window_hits_about_that_share_reproducibly():
    clock = VirtualClock()
    runs = []
    for _ in range(2):
        faults, client = _on_clock([], clock, rng=random.Random(42))
        faults.window("connect_error", 0, 10, probability=0.25)
        async with client:
            runs.append([await _outcome(client) for _ in range(400)])
    assert runs[0] == runs[1]  # same seed, same requests hit
    hit = runs[0].count("ConnectError")
    assert 60 <= hit <= 140  # 400 x 0.25 = 100
    assert set(runs[0]) == {"ConnectError", "200"}


async def test_probabilities_are_clamped_and_zero_never_hits():
    clock = VirtualClock()
    faults, client = _on_clock([], clock)
    assert faults.window("connect_error", 0, 1, probability=7).probability == 1.0
    never = faults.window("status", 1, 2, probability=-1)
    assert never.probability == 0.0
    await clock.advance(1)
    async with client:
        assert [await _outcome(client) for _ in range(50)] == ["200"] * 50


async def test_a_missed_probability_window_falls_through_to_the_next_one():
    clock = VirtualClock()
    faults, client = _on_clock([], clock)
    faults.window("connect_error", 0, 10, probability=0.0)
    faults.window("status", 0, 10, status=504)
    async with client:
        assert await _outcome(client) == "504"


async def test_scripted_rules_come_before_windows():
    clock = VirtualClock()
    faults, client = _on_clock([], clock)
    faults.window("connect_error", 0, 10)
    faults.status(503, times=1)
    async with client:
        assert [await _outcome(client) for _ in range(2)] == ["503", "ConnectError"]


def test_windows_lists_a_copy_of_the_schedule():
    faults = FaultInjector(_inner([]), clock=VirtualClock())
    window = faults.window("latency", 0, 1, seconds=2)
    listed = faults.windows
    listed.clear()
    assert faults.windows == [window]


async def test_reached_counts_what_the_inner_transport_did_not_refuse():
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/refused/":
            raise httpx.ConnectError("refused", request=request)
        if request.url.path == "/api/broken/":
            raise httpx.ReadError("reset mid-answer", request=request)
        return httpx.Response(200)

    faults = FaultInjector(httpx.MockTransport(handler))
    async with httpx.AsyncClient(transport=faults, base_url="http://t") as client:
        with pytest.raises(httpx.ConnectError):
            await client.get("/refused/")
        with pytest.raises(httpx.ReadError):
            await client.get("/api/broken/")
        await client.get("/api/me/")
        await client.get("/api/me/")
    assert faults.forwarded == 4
    assert faults.reached == {"/api/broken/": 1, "/api/me/": 2}
    assert faults.reached_server() == 3
    assert faults.reached_server("/api/") == 3
    assert faults.reached_server("/me/") == 2
    assert faults.reached_server("/refused/") == 0
