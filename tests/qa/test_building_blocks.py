"""The plugin's building blocks as docs/qa.md shows them: in-process server, virtual clock,
fault injector, and a shift with a busy timeline - each example here is the docs' code."""

from __future__ import annotations

import httpx
import jwt
import pytest

from kiosk.core import MemoryVault, ServerSettings, TokenManager
from kiosk.testing.inprocess import InProcessServer
from kiosk.testing.shift import Break, Burst, Handover
from kiosk.testing.virtual import LinkedClock

pytestmark = pytest.mark.slow


@pytest.mark.simplejwt_server(in_process=True, access_s=300)
async def test_refreshes_on_virtual_time(simplejwt_server, virtual_clock, fault_injector):
    assert isinstance(simplejwt_server, InProcessServer)
    assert isinstance(virtual_clock, LinkedClock)
    settings = ServerSettings(base_url=simplejwt_server.base_url)
    fault_injector.window("connect_error", 600, 660)  # a minute without Wi-Fi
    tm = TokenManager(settings, clock=virtual_clock, vault=MemoryVault(), transport=fault_injector)
    before = simplejwt_server.stats()

    async def work():
        async with tm:
            await tm.login("alice", simplejwt_server.users["alice"])
            await virtual_clock.sleep(3600)  # an hour, in milliseconds
            metrics = tm.metrics()
            await tm.logout()  # the in-process database is shared by the whole test run
            return metrics

    metrics = await virtual_clock.run(work())
    after = simplejwt_server.stats()
    # 3600 s / (300 s - 30 s lead - ~7.5 s jitter) ~ 13 refreshes, each seen by the server.
    assert metrics["refresh_successes"] >= 12
    assert after["refresh_ok"] - before["refresh_ok"] == metrics["refresh_successes"]
    assert fault_injector.reached_server("/api/token/refresh/") == metrics["refresh_successes"]
    assert virtual_clock.monotonic() >= 3600


@pytest.mark.simplejwt_server(in_process=True, access_s=60)
async def test_the_server_issues_tokens_at_the_clients_virtual_instant(
    simplejwt_server, virtual_clock
):
    await virtual_clock.advance(5000)
    async with httpx.AsyncClient(
        base_url=simplejwt_server.base_url, transport=simplejwt_server.transport()
    ) as client:
        response = await client.post(
            "/api/token/", json={"username": "bob", "password": "bob-secret"}
        )
        assert response.status_code == 200
        revoked = await client.post(
            "/api/token/blacklist/", json={"refresh": response.json()["refresh"]}
        )
        assert revoked.status_code == 200
    claims = jwt.decode(response.json()["access"], options={"verify_signature": False})
    assert claims["iat"] == int(virtual_clock.server_time())
    assert claims["exp"] - claims["iat"] == 60


def test_a_busy_morning_a_break_and_the_night_nurse(shift):
    from kiosk.testing.inprocess import shared_server

    live_before = shared_server().live_refresh_tokens("alice")  # a database shared by the run
    report = shift.run(
        hours=13,
        windows=5,
        timeline=[
            Burst(at_s=3600, duration_s=1800, rate_per_s=0.2),
            Break(at_s=5 * 3600, duration_s=30 * 60),
            Handover(at_s=12 * 3600, to_user="bob"),
        ],
        faults="outage@3h+5m, 5xx@5h+30s",
    )
    assert report.locks == 1
    assert report.unlocks == 1
    assert report.logins_by_user == {"alice": 1, "bob": 1}
    assert shift.server.live_refresh_tokens("alice") == live_before
    assert report.interruptions == 0
    assert report.requests_lost == 0
    # The burst is there: 5 windows x 0.2/s x 1800 s ~ 1,800 requests on top of ~3,900.
    assert report.requests > 5000


@pytest.mark.simplejwt_server(access_s=120, refresh_s=3600, rotate=True)
def test_the_marker_sets_the_in_process_servers_lifetimes(shift):
    report = shift.run(hours=1, windows=2)
    # 3600 / (120 - 12 - 3) ~ 34: two-minute tokens, not the profile's 15 minutes (~4).
    assert 30 <= report.refreshes <= 36
    assert report.refreshes == report.server_refreshes
    assert report.interruptions == 0


async def test_from_an_async_test_use_arun(shift):
    with pytest.raises(RuntimeError, match="arun"):
        shift.run(hours=1)
    report = await shift.arun(hours=0.5, windows=1)
    assert report.duration_s == 1800
    assert report.interruptions == 0
