"""Unit tests of TokenManager's logic on a virtual clock, against an in-memory simplejwt fake."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator

import httpx
import jwt
import pytest
from fakes import FakeSimpleJWT
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiosk.core import (
    GateTimeoutError,
    InvalidCredentialsError,
    KioskError,
    MemoryVault,
    NeedsReauthenticationError,
    NotLoggedInError,
    ServerResponseError,
    ServerSettings,
    SessionPolicy,
    State,
    TokenManager,
    TokenValidationError,
)
from kiosk.testing.clock import VirtualClock, settle

BASE = "http://127.0.0.1:9"
SERVER = ServerSettings(base_url=BASE)


async def _open(
    fake: FakeSimpleJWT, clock: VirtualClock, policy: SessionPolicy | None = None
) -> tuple[TokenManager, list]:
    events: list = []
    tm = TokenManager(
        SERVER,
        clock=clock,
        vault=MemoryVault(),
        transport=fake.transport(),
        policy=policy,
        rng=random.Random(1),
    )
    await tm.start()
    tm.subscribe(events.append)
    return tm, events


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
async def session(clock) -> AsyncIterator[tuple[TokenManager, FakeSimpleJWT, list]]:
    fake = FakeSimpleJWT(clock, access_s=900)
    tm, events = await _open(fake, clock)
    await tm.login("alice", "alice-secret")
    yield tm, fake, events
    await tm.aclose()


def kinds(events) -> list[str]:
    return [e.kind.value for e in events]


async def test_not_started_manager_refuses_to_log_in():
    tm = TokenManager(SERVER, vault=MemoryVault())
    with pytest.raises(KioskError, match="not started"):
        await tm.login("alice", "alice-secret")


async def test_access_token_without_a_session_raises_not_logged_in(clock):
    fake = FakeSimpleJWT(clock)
    tm, _ = await _open(fake, clock)
    with pytest.raises(NotLoggedInError):
        await tm.access_token()
    await tm.aclose()


async def test_a_thousand_waiters_on_an_expired_token_cause_one_refresh(session, clock):
    tm, fake, _ = session
    fake.refresh_gate = asyncio.Event()
    await clock.advance(1000)  # past exp; the scheduler's refresh is held at the gate
    assert tm.state is State.REFRESHING
    waiters = [asyncio.create_task(tm.access_token()) for _ in range(1000)]
    await settle()
    assert not any(w.done() for w in waiters)
    fake.refresh_gate.set()
    tokens = await asyncio.gather(*waiters)
    assert fake.calls["refresh"] == 1
    assert len({t.jti for t in tokens}) == 1
    assert tokens[0].jti == tm.access_jti
    assert tm.state is State.ACTIVE


async def test_refresh_is_proactive_before_exp_on_server_time(session, clock):
    tm, fake, events = session
    first_exp = (await tm.access_token()).claims.exp
    await clock.advance(700)
    assert fake.calls["refresh"] == 0
    await clock.advance(150)  # lead is max(10 % of 900 s, 2 s) + up to 5 % jitter
    assert fake.calls["refresh"] == 1
    renewed = [e for e in events if e.kind.value == "refresh_succeeded"]
    assert renewed[0].time < first_exp
    assert tm.generation == 2


async def test_twelve_hours_of_refreshes_then_the_shift_cap_ends_the_session(session, clock):
    tm, fake, events = session
    for _ in range(12 * 60):
        await clock.advance(60)
        if tm.state is State.ENDED:
            break
        assert (await tm.access_token()).claims.exp > fake.now()
    # About 12 h / (900 s - lead - jitter) refreshes, each before expiry.
    assert 50 <= fake.calls["refresh"] <= 58
    assert tm.state is State.ENDED
    assert kinds(events).count("shift_cap_approaching") == 1
    assert kinds(events).count("shift_cap_reached") == 1
    assert fake.calls["blacklist"] == 1
    assert tm.vault.load() is None
    assert fake.api_401 == 0
    with pytest.raises(KioskError):
        await tm.access_token()


async def test_gate_deadline_runs_on_the_injected_clock(session, clock):
    tm, fake, events = session
    fake.refresh_gate = asyncio.Event()
    await clock.advance(1000)
    waiter = asyncio.create_task(tm.access_token(timeout=5))
    await clock.advance(4.9)
    assert not waiter.done()
    await clock.advance(0.2)
    with pytest.raises(GateTimeoutError):
        await waiter
    assert tm.metrics()["gate_timeouts"] == 1
    assert "gate_timeout" in kinds(events)
    # The refresh was not cancelled by the waiter giving up.
    fake.refresh_gate.set()
    await settle()
    assert tm.state is State.ACTIVE


async def test_server_clock_ahead_is_corrected_and_reported(clock):
    fake = FakeSimpleJWT(clock, access_s=900, server_offset=300)
    tm, events = await _open(fake, clock)
    await tm.login("alice", "alice-secret")
    assert tm.server_clock_offset == pytest.approx(300, abs=1.5)
    assert "clock_skew" in kinds(events)
    first_exp = (await tm.access_token()).claims.exp
    # exp is on the server's clock, which runs 300 s ahead: read with the local clock the
    # token would seem to live 1,200 s. The refresh must still come before 900 s.
    await clock.advance(899)
    assert fake.calls["refresh"] == 1
    refreshed = next(e for e in events if e.kind.value == "refresh_succeeded")
    assert refreshed.time + 300 < first_exp
    await tm.aclose()


async def test_wall_clock_jump_is_reported(session, clock):
    _tm, _, events = session
    clock.jump_wall(3600)
    await clock.advance(16)
    assert "clock_jump" in kinds(events)
    jump = next(e for e in events if e.kind.value == "clock_jump")
    assert jump.data["drift_s"] == pytest.approx(3600, abs=1)


async def test_wrong_password_keeps_a_needs_reauth_session_for_the_right_one(session, clock):
    tm, fake, _ = session
    fake.blacklisted.update(_jtis_of(fake.issued))  # revoke everything issued so far
    await clock.advance(1000)
    assert tm.state is State.NEEDS_REAUTH
    started = tm.metrics()["session_start"]
    with pytest.raises(InvalidCredentialsError):
        await tm.login("alice", "typo")
    assert tm.state is State.NEEDS_REAUTH
    await tm.login("alice", "alice-secret")
    assert tm.state is State.ACTIVE
    assert tm.metrics()["session_start"] == started
    assert tm.metrics()["interruptions"] == 1


async def test_a_different_user_taps_over_and_the_previous_session_is_revoked(session):
    tm, fake, events = session
    await tm.login("bob", "bob-secret")
    assert tm.user == "bob"
    assert fake.calls["blacklist"] == 1
    logged_out = [e for e in events if e.kind.value == "logged_out"]
    assert logged_out[0].data["reason"] == "tap_over"
    assert logged_out[0].user == "alice"


async def test_tokens_already_expired_on_arrival_are_refused(clock):
    fake = FakeSimpleJWT(clock)
    fake.obtain_override = lambda _request: httpx.Response(
        200,
        json={
            "refresh": fake.mint("refresh"),
            "access": fake.mint("access", lifetime=-5),
        },
    )
    tm, events = await _open(fake, clock)
    with pytest.raises(TokenValidationError, match="expires in"):
        await tm.login("alice", "alice-secret")
    assert tm.state is State.LOGGED_OUT
    assert "token_validation_failed" in kinds(events)
    await tm.aclose()


async def test_refresh_answering_expired_tokens_backs_off_instead_of_looping(session, clock):
    tm, fake, events = session
    fake.refresh_override = lambda _r: httpx.Response(
        200, json={"access": fake.mint("access", lifetime=-1)}
    )
    task = asyncio.create_task(tm.refresh())
    await clock.advance(120)
    # Backoff doubles up to 60 s: a hot loop would have made thousands of calls.
    assert 3 <= fake.calls["refresh"] <= 12
    assert tm.state in {State.OUTCOME_UNKNOWN, State.REFRESHING}
    assert "token_validation_failed" in kinds(events)
    task.cancel()


def _jtis_of(tokens: list[str]) -> set[str]:
    import jwt

    return {jwt.decode(t, options={"verify_signature": False})["jti"] for t in tokens}


# ----------------------------------------------------------------- malformed answers (fuzzed)

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
_token_like = st.one_of(
    st.text(max_size=60),
    st.just("a.b.c"),
    st.just("eyJhbGciOiJub25lIn0.eyJ0b2tlbl90eXBlIjoiYWNjZXNzIn0."),  # alg none
    st.integers(),
    st.none(),
    st.lists(st.text(max_size=5), max_size=2),
)
_bodies = st.one_of(
    st.binary(max_size=200),
    st.just(b"<html><body><h1>502 Bad Gateway</h1></body></html>"),
    _json_values.map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries({"access": _token_like, "refresh": _token_like}).map(
        lambda v: json.dumps(v).encode()
    ),
    st.fixed_dictionaries({"acess": _token_like, "refresh_token": _token_like}).map(
        lambda v: json.dumps(v).encode()
    ),
    st.just(b'{"access": "' + b"x" * 3_000_000 + b'"}'),
)
_statuses = st.sampled_from([200, 201, 204, 301, 400, 401, 403, 404, 418, 429, 500, 502, 503])
_headers = st.dictionaries(
    st.sampled_from(["retry-after", "date", "content-type", "x-junk"]),
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=30),
    max_size=3,
)

_TYPED = (KioskError,)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(status=_statuses, body=_bodies, headers=_headers)
def test_any_malformed_login_answer_is_a_typed_error_with_an_event(status, body, headers):
    async def scenario() -> None:
        clock = VirtualClock()
        fake = FakeSimpleJWT(clock)
        fake.obtain_override = lambda _r: httpx.Response(status, content=body, headers=headers)
        tm, events = await _open(fake, clock)
        try:
            await tm.login("alice", "alice-secret")
        except _TYPED as exc:
            assert tm.state is State.LOGGED_OUT
            assert "login_failed" in kinds(events)
            if type(exc) in (ServerResponseError, TokenValidationError):
                assert {"malformed_response", "token_validation_failed"} & set(kinds(events))
        else:
            # Only a genuinely usable answer may log in.
            assert 200 <= status < 300
            assert tm.state is State.ACTIVE
        finally:
            await tm.aclose()

    asyncio.run(scenario())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(status=_statuses, body=_bodies, headers=_headers)
def test_any_malformed_refresh_answer_is_handled_without_crashing(status, body, headers):
    async def scenario() -> None:
        clock = VirtualClock()
        fake = FakeSimpleJWT(clock)
        tm, events = await _open(fake, clock)
        await tm.login("alice", "alice-secret")
        fake.refresh_override = lambda _r: httpx.Response(status, content=body, headers=headers)
        task = asyncio.create_task(tm.refresh())
        await clock.advance(0.5)
        try:
            if task.done():
                exc = task.exception()
                assert exc is None or isinstance(exc, _TYPED), repr(exc)
                if isinstance(exc, NeedsReauthenticationError):
                    assert tm.state is State.NEEDS_REAUTH
                    assert {"refresh_rejected", "token_blacklisted"} & set(kinds(events))
                if exc is None:
                    assert tm.state is State.ACTIVE
            else:
                # Transient or unknown outcome: retrying, and said so.
                assert tm.state in {State.RETRYING, State.OUTCOME_UNKNOWN, State.REFRESHING}
                assert {"refresh_retrying", "refresh_outcome_unknown"} & set(kinds(events))
        finally:
            task.cancel()
            await tm.aclose()

    asyncio.run(scenario())


# ----------------------------------------------------------------- rotation and the vault


class WatchingVault(MemoryVault):
    """Records which access token the manager was handing out when each session was stored."""

    def __init__(self) -> None:
        super().__init__()
        self.manager: TokenManager | None = None
        self.stored_while: list[tuple[int, str | None]] = []

    def store(self, session) -> None:
        assert self.manager is not None
        self.stored_while.append((session.generation, self.manager.access_jti))
        super().store(session)


async def test_rotated_refresh_token_is_persisted_before_the_new_access_is_released(clock):
    fake = FakeSimpleJWT(clock)
    vault = WatchingVault()
    tm = TokenManager(SERVER, clock=clock, vault=vault, transport=fake.transport())
    vault.manager = tm
    await tm.start()
    await tm.login("alice", "alice-secret")
    before = tm.access_jti
    await tm.refresh()
    assert vault.stored_while == [(1, None), (2, before)]
    assert tm.access_jti != before
    assert vault.load().generation == 2
    await tm.aclose()


class BrokenVault(MemoryVault):
    description = "keyring: broken"

    def store(self, session) -> None:
        from kiosk.core.vault import VaultError

        raise VaultError("the keyring refused to store the session")


async def test_a_failing_keyring_falls_back_to_memory_with_a_security_event(clock):
    fake = FakeSimpleJWT(clock)
    tm = TokenManager(SERVER, clock=clock, vault=BrokenVault(), transport=fake.transport())
    events: list = []
    tm.subscribe(events.append)
    await tm.start()
    await tm.login("alice", "alice-secret")
    assert tm.state is State.ACTIVE
    assert isinstance(tm.vault, MemoryVault)
    assert tm.vault.load().user == "alice"
    warning = next(e for e in events if e.kind.value == "keyring_unavailable")
    assert "memory only" in warning.message
    await tm.aclose()


# ----------------------------------------------------------------- TokenAuth


async def test_rejected_post_is_replayed_with_its_body(session):
    tm, fake, _ = session
    seen_bodies: list[bytes] = []
    inner = fake.transport()

    class Corrupting(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            seen_bodies.append(request.content)
            if len(seen_bodies) == 1:
                request.headers["authorization"] = "Bearer broken"
            return await inner.handle_async_request(request)

    async with httpx.AsyncClient(base_url=BASE, auth=tm.auth, transport=Corrupting()) as api:
        response = await api.post("/api/patients/1/observations/", json={"pulse": 72})
    assert response.status_code == 200
    assert seen_bodies == [b'{"pulse":72}', b'{"pulse":72}']
    assert tm.metrics()["requests_replayed"] == 1


async def test_a_401_without_token_not_valid_is_not_replayed(session):
    tm, fake, events = session
    inner = fake.transport()

    class Forbidding(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            await inner.handle_async_request(request)
            return httpx.Response(403, json={"detail": "You do not have permission."})

    async with httpx.AsyncClient(base_url=BASE, auth=tm.auth, transport=Forbidding()) as api:
        response = await api.get("/api/me/")
    assert response.status_code == 403
    assert fake.calls["refresh"] == 0
    assert tm.metrics()["requests_replayed"] == 0
    assert "request_rejected" in kinds(events)


def test_token_auth_refuses_sync_clients():
    tm = TokenManager(SERVER, vault=MemoryVault())
    with (
        httpx.Client(
            auth=tm.auth, transport=httpx.MockTransport(lambda r: httpx.Response(200))
        ) as client,
        pytest.raises(KioskError, match="AsyncClient"),
    ):
        client.get("http://127.0.0.1:9/api/me/")


# ----------------------------------------------------------------- lock, unlock, tap-over


async def test_same_user_unlocks_locally_even_with_the_server_down(session):
    tm, fake, events = session
    tm.lock()
    assert tm.locked
    fake.obtain_override = lambda _r: httpx.Response(503)
    with pytest.raises(InvalidCredentialsError):
        await tm.unlock("alice", "wrong")
    assert tm.locked
    assert await tm.unlock("alice", "alice-secret") is True
    assert not tm.locked
    assert fake.calls["obtain"] == 1  # only the original login reached the server
    assert kinds(events)[-1] == "unlocked"
    assert tm.state is State.ACTIVE


async def test_a_colleague_with_a_wrong_password_leaves_the_locked_session_alone(session):
    tm, fake, _ = session
    tm.lock()
    jti = tm.refresh_jti
    with pytest.raises(InvalidCredentialsError):
        await tm.unlock("bob", "typo")
    assert tm.user == "alice"
    assert tm.refresh_jti == jti
    assert tm.locked
    assert fake.calls["blacklist"] == 0


async def test_a_colleague_unlocking_signs_the_previous_user_out(session):
    tm, fake, _events = session
    tm.lock()
    alice_refresh = tm.vault.load().refresh
    assert await tm.unlock("bob", "bob-secret") is False
    assert tm.user == "bob"
    assert not tm.locked
    assert fake.calls["blacklist"] == 1
    assert jwt.decode(alice_refresh, options={"verify_signature": False})["jti"] in fake.blacklisted
    assert tm.vault.load().user == "bob"
    assert tm.metrics()["logins"] == 2


async def test_logging_in_again_as_the_same_user_renews_tokens_and_revokes_the_old(session):
    tm, fake, _ = session
    old = tm.refresh_jti
    started = tm.metrics()["session_start"]
    await tm.login("alice", "alice-secret")
    assert tm.refresh_jti != old
    assert old in fake.blacklisted
    assert tm.state is State.ACTIVE
    assert tm.metrics()["session_start"] == started


async def test_a_blacklisted_refresh_raises_a_high_alert_event(session, clock):
    _tm, fake, events = session
    fake.blacklisted.update(_jtis_of(fake.issued))
    await clock.advance(1000)
    alerts = [e for e in events if e.kind.value == "alert"]
    assert [a.data["rule"] for a in alerts] == ["blacklisted_token"]
    assert alerts[0].severity.name == "HIGH"


async def test_the_previous_nurses_shift_cap_does_not_end_a_tap_over_session(clock):
    # Found by the QA shift simulator: a handover at the very end of the day nurse's cap. Her
    # cap came due while the night nurse's login held the login lock; once it got the lock,
    # the scheduler ended the *new* session 1.5 ms after it began.
    fake = FakeSimpleJWT(clock)
    bob_may_answer = asyncio.Event()

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/token/" and b'"bob"' in request.content:
            await bob_may_answer.wait()
        return await fake.handle(request)

    tm = TokenManager(
        SERVER,
        clock=clock,
        vault=MemoryVault(),
        transport=httpx.MockTransport(handler),
        rng=random.Random(1),
    )
    await tm.start()
    events: list = []
    tm.subscribe(events.append)
    await tm.login("alice", "alice-secret")
    for _ in range(12 * 60 - 1):
        await clock.advance(60)
    await clock.advance(59)  # alice's cap is 1 s away
    assert tm.state is State.ACTIVE
    login = asyncio.create_task(tm.login("bob", "bob-secret"))
    await settle()
    await clock.advance(2)  # her cap comes due while bob's login waits for the server
    bob_may_answer.set()
    await login
    await clock.advance(1)
    assert tm.user == "bob"
    assert tm.state is State.ACTIVE
    assert "shift_cap_reached" not in kinds(events)
    # Bob's own cap still ends his session, 12 h after *his* login.
    for _ in range(12 * 60 + 1):
        await clock.advance(60)
    assert tm.state is State.ENDED
    assert kinds(events).count("shift_cap_reached") == 1
    await tm.aclose()
