"""Login, proactive and reactive refresh, rotation, blacklist and logout against the real server."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from kiosk.core import (
    InvalidCredentialsError,
    MemoryVault,
    ServerSettings,
    State,
    TokenManager,
)
from kiosk.testing.faults import FaultInjector

pytestmark = pytest.mark.server


async def test_login_then_api_call_is_authenticated(simplejwt_server, session_for):
    async with session_for(simplejwt_server) as (tm, api, recorder, vault):
        response = await api.get("/api/me/")
        assert response.status_code == 200
        assert response.json()["username"] == "alice"
        assert tm.state is State.ACTIVE
        assert tm.user == "alice"
        assert tm.metrics()["logins"] == 1
        assert "login_succeeded" in recorder.kinds()
        stored = vault.load()
        assert stored is not None
        assert stored.user == "alice"
        assert stored.generation == 1


async def test_public_api_example_from_the_issue(simplejwt_server):
    server = ServerSettings(base_url=simplejwt_server.base_url)
    async with TokenManager(server, vault=MemoryVault()) as tm:
        await tm.login("alice", "alice-secret")
        async with httpx.AsyncClient(base_url=server.base_url, auth=tm.auth) as api:
            r = await api.get("/api/me/")
        await tm.logout()
    assert r.status_code == 200
    assert tm.state is State.LOGGED_OUT


@pytest.mark.parametrize(
    ("user", "password"),
    [("alice", "wrong"), ("nobody", "x"), ("dave", "dave-secret")],
    ids=["wrong-password", "unknown-user", "inactive-user"],
)
async def test_wrong_credentials_raise_a_typed_error_and_an_event(simplejwt_server, user, password):
    events = []
    server = ServerSettings(base_url=simplejwt_server.base_url)
    async with TokenManager(server, vault=MemoryVault()) as tm:
        tm.subscribe(events.append)
        with pytest.raises(InvalidCredentialsError, match="Wrong user name or password"):
            await tm.login(user, password)
        assert tm.state is State.LOGGED_OUT
        assert tm.metrics()["login_failures"] == 1
    failed = [e for e in events if e.kind.value == "login_failed"]
    assert len(failed) == 1
    assert failed[0].data["reason"] == "invalid_credentials"


@pytest.mark.simplejwt_server(access_s=3)
async def test_proactive_refresh_happens_before_expiry_without_any_401(
    simplejwt_server, session_for
):
    simplejwt_server.reset_stats()
    async with session_for(simplejwt_server) as (tm, api, recorder, _):
        first_exp = None
        statuses = []
        loop = asyncio.get_running_loop()
        end = loop.time() + 7.0
        while loop.time() < end:
            statuses.append((await api.get("/api/me/")).status_code)
            if first_exp is None:
                first_exp = tm._access.claims.exp
            await asyncio.sleep(0.05)
        refreshes = recorder.of("refresh_succeeded")
        metrics = tm.metrics()
    assert set(statuses) == {200}
    # 7 s of 3 s tokens: the session renewed itself at least twice, ahead of expiry.
    assert len(refreshes) >= 2
    assert refreshes[0].time < first_exp
    assert metrics["user_visible_401"] == 0
    assert metrics["requests_replayed"] == 0
    stats = simplejwt_server.stats()
    assert stats["api_401"] == 0
    assert stats["refresh"] == metrics["refresh_attempts"] == len(refreshes)


async def test_reactive_refresh_on_401_token_not_valid_replays_once(simplejwt_server):
    faults = FaultInjector()
    faults.corrupt_token(path="/api/me/")
    server = ServerSettings(base_url=simplejwt_server.base_url)
    simplejwt_server.reset_stats()
    async with TokenManager(server, vault=MemoryVault()) as tm:
        await tm.login("alice", "alice-secret")
        old_jti = tm.access_jti
        async with httpx.AsyncClient(
            base_url=server.base_url, auth=tm.auth, transport=faults
        ) as api:
            response = await api.get("/api/me/")
        assert response.status_code == 200
        assert tm.access_jti != old_jti
        metrics = tm.metrics()
    assert len(faults.injected("corrupt_token")) == 1
    assert metrics["requests_replayed"] == 1
    assert metrics["user_visible_401"] == 0
    stats = simplejwt_server.stats()
    assert stats["api_401"] == 1  # the real server refused the damaged token
    assert stats["refresh"] == 1


async def test_a_request_rejected_twice_is_not_replayed_again(simplejwt_server):
    faults = FaultInjector()
    faults.corrupt_token(path="/api/me/", times=2)
    server = ServerSettings(base_url=simplejwt_server.base_url)
    async with TokenManager(server, vault=MemoryVault()) as tm:
        await tm.login("alice", "alice-secret")
        async with httpx.AsyncClient(
            base_url=server.base_url, auth=tm.auth, transport=faults
        ) as api:
            response = await api.get("/api/me/")
        metrics = tm.metrics()
    assert response.status_code == 401
    assert len(faults.injected("corrupt_token")) == 2
    assert metrics["requests_replayed"] == 1
    assert metrics["user_visible_401"] == 1


async def test_rotation_blacklists_the_old_refresh_token(simplejwt_server, session_for):
    async with session_for(simplejwt_server) as (tm, api, _recorder, vault):
        old = vault.load()
        await tm.refresh()
        new = vault.load()
        assert new.generation == old.generation + 1
        assert new.refresh != old.refresh
        assert (await api.get("/api/me/")).status_code == 200
        refresh_url = f"{simplejwt_server.base_url}/api/token/refresh/"
        async with httpx.AsyncClient() as raw:
            reused = await raw.post(refresh_url, json={"refresh": old.refresh})
    assert reused.status_code == 401
    assert reused.json()["code"] == "token_not_valid"
    assert "blacklisted" in reused.json()["detail"].lower()


async def test_signing_out_a_session_revoked_elsewhere_is_not_a_failed_revocation(
    simplejwt_server, session_for
):
    # IT blacklisted the token (or a definitive refresh failure preceded the sign-out): the
    # server answers the blacklist call 401 token_not_valid, and nothing of it is live there.
    async with session_for(simplejwt_server) as (tm, _api, recorder, vault):
        stored = vault.load()
        async with httpx.AsyncClient() as raw:
            first = await raw.post(
                f"{simplejwt_server.base_url}/api/token/blacklist/",
                json={"refresh": stored.refresh},
            )
            again = await raw.post(
                f"{simplejwt_server.base_url}/api/token/blacklist/",
                json={"refresh": stored.refresh},
            )
        assert first.status_code == 200
        assert (again.status_code, again.json()["code"]) == (401, "token_not_valid")
        await tm.logout()
        assert tm.state is State.LOGGED_OUT
        assert "logged_out" in recorder.kinds()
        assert "logout_not_revoked" not in recorder.kinds()


async def test_logout_blacklists_the_refresh_token_and_wipes_the_vault(
    simplejwt_server, session_for
):
    async with session_for(simplejwt_server) as (tm, _api, recorder, vault):
        stored = vault.load()
        await tm.logout()
        assert tm.state is State.LOGGED_OUT
        assert vault.load() is None
        assert tm.refresh_jti is None
        assert "logged_out" in recorder.kinds()
        assert "logout_not_revoked" not in recorder.kinds()
        async with httpx.AsyncClient() as raw:
            after = await raw.post(
                f"{simplejwt_server.base_url}/api/token/refresh/",
                json={"refresh": stored.refresh},
            )
    assert after.status_code == 401
    assert after.json()["code"] == "token_not_valid"
