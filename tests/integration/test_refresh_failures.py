"""Refresh failures against the real server: outages, 5xx/429 bursts, revocation, lost answers."""

from __future__ import annotations

import asyncio
import random
import time

import httpx
import pytest

from kiosk.core import (
    GATE_TIMEOUT_EXTENSION,
    BackoffPolicy,
    GateTimeoutError,
    MemoryVault,
    NeedsReauthenticationError,
    ServerSettings,
    SessionPolicy,
    State,
    TokenManager,
)
from kiosk.testing.faults import FaultInjector

pytestmark = pytest.mark.server

FAST_BACKOFF = SessionPolicy(backoff=BackoffPolicy(base_s=0.2, factor=2.0, cap_s=2.0))


@pytest.mark.slow
@pytest.mark.simplejwt_server(access_s=3)
async def test_session_survives_a_10s_server_outage_and_queued_requests_complete(
    private_simplejwt_server, session_for
):
    server = private_simplejwt_server
    policy = SessionPolicy(gate_timeout_s=60, backoff=BackoffPolicy(base_s=0.5, cap_s=4.0))
    async with session_for(server, policy=policy) as (tm, api, recorder, _):
        assert (await api.get("/api/me/")).status_code == 200
        await asyncio.to_thread(server.stop)
        down_at = time.monotonic()
        # Wait until the access token is no longer handed out: from now on requests queue.
        while tm._usable_access() is not None:
            await asyncio.sleep(0.1)
        queued = [asyncio.create_task(api.get("/api/me/")) for _ in range(20)]
        await asyncio.sleep(max(0.0, 10.0 - (time.monotonic() - down_at)))
        assert not any(task.done() for task in queued), "requests must wait, not fail"
        assert tm.state in {State.RETRYING, State.REFRESHING}
        await asyncio.to_thread(server.start)
        responses = await asyncio.gather(*queued)
        assert [r.status_code for r in responses] == [200] * 20
        assert tm.state is State.ACTIVE
        metrics = tm.metrics()
    assert metrics["interruptions"] == 0
    assert metrics["user_visible_401"] == 0
    assert metrics["refresh_retries"] >= 3
    retrying = recorder.of("refresh_retrying")
    # A refresh in flight when the server went away is "outcome unknown", retried too.
    unknown = recorder.of("refresh_outcome_unknown")
    refresh_events = [
        (e.kind.value, e.message) for e in recorder.events if "refresh" in e.kind.value
    ]
    assert len(retrying) + len(unknown) == metrics["refresh_retries"], refresh_events
    assert len(retrying) >= 3
    assert "needs_reauth" not in [e.data.get("to") for e in recorder.of("state_changed")]


@pytest.mark.parametrize("status", [502, 503, 504])
async def test_5xx_burst_is_retried_with_exponential_backoff(simplejwt_server, status):
    faults = FaultInjector()
    faults.status(status, path="/api/token/refresh/", times=4)
    events = []
    server = ServerSettings(base_url=simplejwt_server.base_url)
    simplejwt_server.reset_stats()
    async with TokenManager(
        server, vault=MemoryVault(), transport=faults, policy=FAST_BACKOFF, rng=random.Random(7)
    ) as tm:
        tm.subscribe(events.append)
        await tm.login("alice", "alice-secret")
        started = time.monotonic()
        await tm.refresh()
        elapsed = time.monotonic() - started
        assert tm.state is State.ACTIVE
        metrics = tm.metrics()
    delays = [e.data["delay_s"] for e in events if e.kind.value == "refresh_retrying"]
    assert len(delays) == 4
    # Full jitter: attempt n waits a random time in [0, min(cap, base * 2**n)].
    for attempt, delay in enumerate(delays):
        assert 0 <= delay <= min(2.0, 0.2 * 2**attempt)
    assert elapsed >= sum(delays)
    assert metrics["refresh_retries"] == 4
    assert metrics["refresh_successes"] == 1
    assert simplejwt_server.stats()["refresh"] == 1  # the injected answers never reached it


async def test_429_with_retry_after_is_honoured(simplejwt_server):
    faults = FaultInjector()
    faults.status(429, path="/api/token/refresh/", times=2, retry_after=1)
    events = []
    server = ServerSettings(base_url=simplejwt_server.base_url)
    async with TokenManager(
        server, vault=MemoryVault(), transport=faults, policy=FAST_BACKOFF
    ) as tm:
        tm.subscribe(events.append)
        await tm.login("alice", "alice-secret")
        started = time.monotonic()
        await tm.refresh()
        elapsed = time.monotonic() - started
        assert tm.state is State.ACTIVE
    retrying = [e for e in events if e.kind.value == "refresh_retrying"]
    assert [e.data["retry_after_s"] for e in retrying] == [1.0, 1.0]
    assert all(e.data["delay_s"] >= 1.0 for e in retrying)
    assert elapsed >= 2.0


async def test_gate_deadline_gives_a_typed_error_not_a_hang(simplejwt_server):
    faults = FaultInjector()
    server = ServerSettings(base_url=simplejwt_server.base_url)
    async with TokenManager(server, vault=MemoryVault(), transport=faults) as tm:
        await tm.login("alice", "alice-secret")
        faults.outage()
        faults_api = FaultInjector()
        faults_api.corrupt_token(path="/api/me/")
        async with httpx.AsyncClient(
            base_url=server.base_url, auth=tm.auth, transport=faults_api
        ) as api:
            started = time.monotonic()
            with pytest.raises(GateTimeoutError, match=r"no valid access token within 0\.5 s"):
                await api.get("/api/me/", extensions={GATE_TIMEOUT_EXTENSION: 0.5})
            assert time.monotonic() - started < 5
        assert tm.metrics()["gate_timeouts"] == 1
        faults.restore()


@pytest.mark.simplejwt_server(access_s=3)
async def test_blacklisted_refresh_fails_every_queued_request_at_once(simplejwt_server):
    server = ServerSettings(base_url=simplejwt_server.base_url)
    vault = MemoryVault()
    events = []
    # No proactive lead: the refresh starts when the requests find the token expiring.
    policy = SessionPolicy(
        refresh_lead_fraction=0.0, refresh_lead_min_s=0.0, refresh_jitter_fraction=0.0
    )
    async with TokenManager(server, vault=vault, policy=policy) as tm:
        tm.subscribe(events.append)
        await tm.login("alice", "alice-secret")
        # Someone (an administrator, another kiosk) revokes the refresh token.
        async with httpx.AsyncClient() as raw:
            revoked = await raw.post(
                f"{server.base_url}/api/token/blacklist/", json={"refresh": vault.load().refresh}
            )
        assert revoked.status_code == 200
        simplejwt_server.reset_stats()
        while tm._usable_access() is not None:
            await asyncio.sleep(0.05)
        finished: list[float] = []

        async def call(api: httpx.AsyncClient) -> BaseException | httpx.Response:
            try:
                return await api.get("/api/me/")
            except BaseException as exc:
                return exc
            finally:
                finished.append(time.monotonic())

        async with httpx.AsyncClient(base_url=server.base_url, auth=tm.auth) as api:
            results = await asyncio.gather(*(call(api) for _ in range(50)))
        assert tm.state is State.NEEDS_REAUTH
        assert vault.load() is None
        metrics = tm.metrics()
    assert all(isinstance(r, NeedsReauthenticationError) for r in results), results[:3]
    assert {r.reason for r in results} == {"token_not_valid"}
    assert "password" in str(results[0])
    assert max(finished) - min(finished) < 0.5  # all at once, not one by one
    assert simplejwt_server.stats()["refresh"] == 1
    assert metrics["interruptions"] == 1
    assert [e.kind.value for e in events].count("token_blacklisted") == 1


@pytest.mark.simplejwt_server(extra_env={"KIOSK_SERVER_CHECK_REVOKE": "1"})
async def test_password_changed_is_final_and_reauthentication_restores_the_session(
    simplejwt_server, session_for
):
    async with session_for(simplejwt_server, user="bob") as (tm, api, recorder, vault):
        assert (await api.get("/api/me/")).status_code == 200
        started = tm.metrics()["session_start"]
        simplejwt_server.reset_stats()
        async with httpx.AsyncClient() as raw:
            changed = await raw.post(
                f"{simplejwt_server.base_url}/_test/set-password/",
                json={"username": "bob", "password": "bob-secret"},
            )
        assert changed.status_code == 200
        with pytest.raises(NeedsReauthenticationError) as caught:
            await api.get("/api/me/")
        assert caught.value.reason == "password_changed"
        assert tm.state is State.NEEDS_REAUTH
        assert vault.load() is None
        # Final: no refresh was tried, and later requests fail the same way without I/O.
        with pytest.raises(NeedsReauthenticationError):
            await api.get("/api/patients/")
        assert simplejwt_server.stats()["refresh"] == 0
        assert len(recorder.of("session_revoked")) == 1
        # The nurse types her password again: same session, same shift clock.
        await tm.login("bob", "bob-secret")
        assert tm.state is State.ACTIVE
        assert tm.metrics()["session_start"] == started
        assert (await api.get("/api/me/")).status_code == 200


async def test_lost_refresh_answer_then_blacklisted_needs_reauth_with_the_reason(
    simplejwt_server, session_for
):
    faults = FaultInjector()
    faults.read_timeout(path="/api/token/refresh/")
    async with session_for(simplejwt_server, transport=faults, policy=FAST_BACKOFF) as (
        tm,
        _api,
        recorder,
        _vault,
    ):
        with pytest.raises(NeedsReauthenticationError) as caught:
            await tm.refresh()
        assert tm.state is State.NEEDS_REAUTH
    assert len(faults.injected("read_timeout")) == 1
    kinds = recorder.kinds()
    assert kinds.index("refresh_outcome_unknown") < kinds.index("token_blacklisted")
    message = recorder.of("token_blacklisted")[0].message
    assert "earlier refresh got no answer" in message
    assert caught.value.reason == "token_not_valid"
