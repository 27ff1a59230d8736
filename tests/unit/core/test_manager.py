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
from kiosk.core.auth import GATE_TIMEOUT_EXTENSION
from kiosk.core.manager import HANDOFF_MIN_LIMIT, HANDOFF_QUEUE_HIGH, HANDOFF_STALL_S
from kiosk.core.vault import KeyringVault
from kiosk.testing.clock import VirtualClock, settle
from kiosk.testing.keyring import MemoryKeyring

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


async def test_a_memory_only_session_is_signed_out_at_exit(session):
    tm, fake, events = session
    refresh_jti = tm._refresh.jti
    assert not tm.resumable
    assert await tm.end_unresumable_session() is True
    assert tm.state is State.LOGGED_OUT
    assert refresh_jti in fake.blacklisted  # no refresh token outlives the process
    ended = [e for e in events if e.kind.value == "logged_out"]
    assert [e.data["reason"] for e in ended] == ["closed"]
    assert await tm.end_unresumable_session() is False  # nothing left to end


async def test_a_session_in_a_persistent_vault_is_left_for_the_next_process(clock):
    fake = FakeSimpleJWT(clock)
    vault = KeyringVault(BASE, backend=MemoryKeyring())  # outlives the process
    tm = TokenManager(SERVER, clock=clock, vault=vault, transport=fake.transport())
    await tm.start()
    await tm.login("alice", "alice-secret")
    assert tm.resumable
    assert await tm.end_unresumable_session() is False
    assert tm.state is State.ACTIVE
    assert fake.blacklisted == set()
    stored = vault.load()
    assert stored is not None
    assert stored.user == "alice"
    await tm.aclose()


async def test_signing_out_a_token_the_server_already_refuses_is_not_a_failed_revocation(
    session,
):
    tm, fake, events = session
    fake.blacklisted.add(tm._refresh.jti)  # revoked elsewhere: the server answers 401
    await tm.logout()
    assert tm.state is State.LOGGED_OUT
    assert fake.calls["blacklist"] == 1
    assert "logout_not_revoked" not in kinds(events)


async def test_a_refused_sign_out_for_another_reason_still_says_the_token_may_live(session):
    tm, _fake, events = session

    def forbidden(request: httpx.Request) -> httpx.Response:
        return httpx.Response(403, json={"detail": "CSRF Failed", "code": "permission_denied"})

    tm._http._transport = httpx.MockTransport(forbidden)
    await tm.logout()
    assert tm.state is State.LOGGED_OUT
    assert "logout_not_revoked" in kinds(events)


async def test_an_unresumable_session_that_cannot_be_revoked_says_so(session):
    tm, _fake, events = session

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("ward Wi-Fi is down", request=request)

    tm._http._transport = httpx.MockTransport(refuse)
    assert await tm.end_unresumable_session() is True
    assert tm.state is State.LOGGED_OUT
    assert "logout_not_revoked" in kinds(events)


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


# ----------------------------------------------------------------- the gate's hand-off
#
# Once a refresh lands, the gate lets its waiters go in FIFO order, at most
# GATE_RELEASE_BATCH per event-loop iteration (module docstring of kiosk.core.manager).
# "Loop iteration" is observed with a callback that re-schedules itself: asyncio runs the
# callbacks that were ready when an iteration began, so it runs exactly once per iteration.


class LoopTurns:
    """Counts event-loop iterations while it runs."""

    def __init__(self) -> None:
        self.n = 0
        self._loop = asyncio.get_running_loop()
        self._handle = self._loop.call_soon(self._tick)

    def _tick(self) -> None:
        self.n += 1
        self._handle = self._loop.call_soon(self._tick)

    def stop(self) -> None:
        self._handle.cancel()


class RecordingTransport(httpx.AsyncBaseTransport):
    """The fake server, noting the loop iteration at which each API request arrives."""

    def __init__(self, fake: FakeSimpleJWT, turns: LoopTurns) -> None:
        self._inner = fake.transport()
        self._turns = turns
        #: (loop iteration, x-seq header, Authorization header) per API request.
        self.arrivals: list[tuple[int, int, str]] = []
        #: If set, requests are answered only once it is set (they pile up in the transport).
        self.hold: asyncio.Event | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        seq = int(request.headers.get("x-seq", "-1"))
        self.arrivals.append((self._turns.n, seq, request.headers.get("authorization", "")))
        if self.hold is not None:
            await self.hold.wait()
        return await self._inner.handle_async_request(request)

    def per_turn(self) -> dict[int, int]:
        counts: dict[int, int] = {}
        for turn, _, _ in self.arrivals:
            counts[turn] = counts.get(turn, 0) + 1
        return counts


async def _expire_with_refresh_held(tm: TokenManager, fake: FakeSimpleJWT, clock) -> None:
    """Let the access token expire while the scheduler's refresh is held at the fake's gate."""
    fake.refresh_gate = asyncio.Event()
    await clock.advance(1000)
    assert tm.state is State.REFRESHING
    assert tm._usable_access() is None


@pytest.mark.parametrize("batch", [1, 4])
async def test_a_burst_enters_the_transport_at_most_a_batch_per_loop_iteration(
    session, clock, monkeypatch, batch
):
    tm, fake, _ = session
    monkeypatch.setattr("kiosk.core.manager.GATE_RELEASE_BATCH", batch)
    await _expire_with_refresh_held(tm, fake, clock)
    turns = LoopTurns()
    transport = RecordingTransport(fake, turns)
    async with httpx.AsyncClient(base_url=BASE, auth=tm.auth, transport=transport) as api:
        burst = [asyncio.create_task(api.get("/api/me/")) for _ in range(1000)]
        await settle()
        assert transport.arrivals == []  # all of them wait at the gate
        fake.refresh_gate.set()
        responses = await asyncio.gather(*burst)
    turns.stop()
    assert [r.status_code for r in responses] == [200] * 1000
    assert fake.calls["refresh"] == 1  # single flight for 1,000 requests through tm.auth
    assert fake.api_401 == 0
    per_turn = transport.per_turn()
    assert max(per_turn.values()) == batch
    assert len(per_turn) >= 1000 // batch
    assert {auth for _, _, auth in transport.arrivals} == {f"Bearer {tm._access.reveal()}"}


async def test_the_gate_releases_its_waiters_in_fifo_order(session, clock):
    tm, fake, _ = session
    await _expire_with_refresh_held(tm, fake, clock)
    turns = LoopTurns()
    transport = RecordingTransport(fake, turns)
    async with httpx.AsyncClient(base_url=BASE, auth=tm.auth, transport=transport) as api:
        burst = []
        for seq in range(300):
            burst.append(asyncio.create_task(api.get("/api/me/", headers={"x-seq": str(seq)})))
            if seq % 7 == 0:
                await asyncio.sleep(0)  # arrivals spread over several loop iterations
        await settle()
        fake.refresh_gate.set()
        await asyncio.gather(*burst)
    turns.stop()
    assert [seq for _, seq, _ in transport.arrivals] == list(range(300))


async def test_requests_arriving_while_the_gate_drains_queue_behind_its_waiters(
    session, clock, monkeypatch
):
    tm, fake, _ = session
    monkeypatch.setattr("kiosk.core.manager.GATE_RELEASE_BATCH", 1)
    await _expire_with_refresh_held(tm, fake, clock)
    turns = LoopTurns()
    transport = RecordingTransport(fake, turns)
    async with httpx.AsyncClient(base_url=BASE, auth=tm.auth, transport=transport) as api:
        waiting = [
            asyncio.create_task(api.get("/api/me/", headers={"x-seq": str(seq)}))
            for seq in range(200)
        ]
        await settle()
        fake.refresh_gate.set()
        while not transport.arrivals:
            await asyncio.sleep(0)
        # The token is valid again, but 199 waiters are still queued: a newcomer must not
        # overtake them (it would also enter the pool outside the hand-off's pace).
        assert tm._usable_access() is not None
        newcomers = [
            asyncio.create_task(api.get("/api/me/", headers={"x-seq": str(seq)}))
            for seq in range(200, 210)
        ]
        await asyncio.gather(*waiting, *newcomers)
    turns.stop()
    assert [seq for _, seq, _ in transport.arrivals] == list(range(210))
    assert max(transport.per_turn().values()) == 1


async def test_a_deadline_passes_while_waiting_for_the_handoff(session, clock, monkeypatch):
    tm, fake, events = session
    monkeypatch.setattr("kiosk.core.manager.GATE_RELEASE_BATCH", 1)
    await _expire_with_refresh_held(tm, fake, clock)
    ahead = [asyncio.create_task(tm.access_token()) for _ in range(500)]
    late = asyncio.create_task(tm.access_token(timeout=5))
    await settle()
    fake.refresh_gate.set()
    await settle(5)
    # The refresh has landed; the waiters are being handed the token one per iteration.
    assert tm.state is State.ACTIVE
    assert not late.done()
    assert sum(w.done() for w in ahead) < 100
    await clock.advance(5.1)  # runs ~50 loop iterations, then the late waiter's deadline
    assert late.done()
    with pytest.raises(GateTimeoutError):
        late.result()
    assert sum(w.done() for w in ahead) < 500  # it gave up while still queued
    assert "gate_timeout" in kinds(events)
    tokens = await asyncio.gather(*ahead)
    assert {t.jti for t in tokens} == {tm.access_jti}
    assert not tm._handoff.queue  # the one that gave up left the queue
    assert fake.calls["refresh"] == 1


async def _finished_at(turns: LoopTurns, waiter) -> tuple[int, BaseException | None]:
    try:
        await waiter
    except Exception as exc:
        return turns.n, exc
    return turns.n, None


async def test_a_definitive_refresh_failure_fails_every_waiter_in_one_loop_iteration(
    session, clock
):
    tm, fake, _ = session
    await _expire_with_refresh_held(tm, fake, clock)
    fake.refresh_override = lambda _r: httpx.Response(
        401, json={"detail": "Token is blacklisted", "code": "token_not_valid"}
    )
    turns = LoopTurns()
    outcomes = [asyncio.create_task(_finished_at(turns, tm.access_token())) for _ in range(1000)]
    await settle()
    fake.refresh_gate.set()
    results = await asyncio.gather(*outcomes)
    turns.stop()
    assert all(isinstance(exc, NeedsReauthenticationError) for _, exc in results)
    assert len({turn for turn, _ in results}) == 1
    assert fake.calls["refresh"] == 1
    assert tm.state is State.NEEDS_REAUTH


async def test_waiters_queued_for_the_handoff_fail_at_once_when_the_session_is_revoked(
    session, clock, monkeypatch
):
    tm, fake, _ = session
    monkeypatch.setattr("kiosk.core.manager.GATE_RELEASE_BATCH", 1)
    await _expire_with_refresh_held(tm, fake, clock)
    turns = LoopTurns()
    outcomes = [asyncio.create_task(_finished_at(turns, tm.access_token())) for _ in range(500)]
    await settle()
    fake.refresh_gate.set()
    await settle(20)
    released = sum(o.done() for o in outcomes)
    assert 0 < released < 100
    # A request with the new token got a final 401 (password changed on the server).
    # (tm._access: asking the gate would queue behind the waiters.)
    revoked_at = turns.n
    tm.session_revoked(tm._access, "password_changed")
    results = await asyncio.gather(*outcomes)
    turns.stop()
    failed = [(turn, exc) for turn, exc in results if exc is not None]
    # A waiter handed the token just before is a few steps (tasks) from done: it may still
    # finish with it. Every one still queued fails together, at once.
    assert 500 - released - 3 <= len(failed) <= 500 - released
    assert all(isinstance(exc, NeedsReauthenticationError) for _, exc in failed)
    assert len({turn for turn, _ in failed}) <= 2
    assert max(turn for turn, _ in failed) - revoked_at <= 5


async def test_replays_of_rejected_requests_pass_the_handoff_too(session, clock, monkeypatch):
    # The server rejects a token the client still holds valid (revoked there): the whole
    # burst is in the transport with it, is answered 401, and replays once with the
    # refreshed token - through the gate's hand-off, so the replays are staggered too.
    tm, fake, _ = session
    monkeypatch.setattr("kiosk.core.manager.GATE_RELEASE_BATCH", 2)
    turns = LoopTurns()
    transport = RecordingTransport(fake, turns)
    transport.hold = asyncio.Event()
    fake.blacklisted.add(tm.access_jti)
    fake.refresh_gate = asyncio.Event()
    async with httpx.AsyncClient(base_url=BASE, auth=tm.auth, transport=transport) as api:
        burst = [asyncio.create_task(api.get("/api/me/")) for _ in range(400)]
        await settle()
        assert len(transport.arrivals) == 400  # the first wave, all with the rejected token
        transport.hold.set()
        await settle()
        assert fake.api_401 == 400
        assert fake.calls["refresh"] == 1
        fake.refresh_gate.set()
        responses = await asyncio.gather(*burst)
    turns.stop()
    assert [r.status_code for r in responses] == [200] * 400
    assert fake.calls["refresh"] == 1
    assert tm.metrics()["requests_replayed"] == 400
    replays: dict[int, int] = {}
    for turn, _, _ in transport.arrivals[400:]:
        replays[turn] = replays.get(turn, 0) + 1
    assert sum(replays.values()) == 400
    assert max(replays.values()) == 2


async def test_each_waiter_keeps_its_own_deadline_and_none_outlives_the_gate(session, clock):
    tm, fake, _ = session
    await _expire_with_refresh_held(tm, fake, clock)
    patient = asyncio.create_task(tm.access_token(timeout=20))
    await clock.advance(1)
    hasty = asyncio.create_task(tm.access_token(timeout=3))  # an earlier deadline, later
    steady = [asyncio.create_task(tm.access_token(timeout=60)) for _ in range(3)]
    await clock.advance(2.9)
    assert not hasty.done()
    await clock.advance(0.2)
    with pytest.raises(GateTimeoutError):
        hasty.result()
    assert not patient.done()
    await clock.advance(15.8)  # t = 19.9
    assert not patient.done()
    await clock.advance(0.2)
    with pytest.raises(GateTimeoutError):
        patient.result()
    assert not any(w.done() for w in steady)
    fake.refresh_gate.set()
    tokens = await asyncio.gather(*steady)
    assert {t.jti for t in tokens} == {tm.access_jti}
    assert tm.metrics()["gate_timeouts"] == 2
    await settle()
    # With no waiter left, no gate timer is left on the clock either: the one sleeper is
    # the scheduler's (the steady waiters' 60 s deadlines died with them).
    assert clock.pending == 1
    assert tm._handoff._keeper is None


# ----------------------------------------------------------------- the hand-off's limit
#
# Requests let go by the hand-off through tm.auth report their answers; at most
# tm._handoff.limit of them are unanswered at once, and the limit adapts (Vegas).


class HeldTransport(httpx.AsyncBaseTransport):
    """The fake server, but every API request waits until the test answers (or fails) it."""

    def __init__(self, fake: FakeSimpleJWT) -> None:
        self._inner = fake.transport()
        self.waiting: list[tuple[asyncio.Event, list[BaseException]]] = []
        self.arrived = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.arrived += 1
        event, failure = asyncio.Event(), []
        self.waiting.append((event, failure))
        await event.wait()
        if failure:
            raise failure[0]
        return await self._inner.handle_async_request(request)

    async def answer(self, n: int = 1, *, fail: BaseException | None = None) -> None:
        for _ in range(n):
            event, failure = self.waiting.pop(0)
            if fail is not None:
                failure.append(fail)
            event.set()
            await settle(10)  # the answer, then the hand-off's next releases, get through

    @property
    def unanswered(self) -> int:
        return len(self.waiting)


async def _burst_behind_a_held_refresh(tm, fake, clock, transport, n, **kwargs):
    await _expire_with_refresh_held(tm, fake, clock)
    api = httpx.AsyncClient(base_url=BASE, auth=tm.auth, transport=transport, **kwargs)
    burst = [asyncio.create_task(api.get("/api/me/")) for _ in range(n)]
    await settle()
    fake.refresh_gate.set()
    await settle(200)  # far more loop iterations than waiters: only the limit holds them
    return api, burst


async def test_the_handoff_lets_only_its_limit_of_requests_out_unanswered(session, clock):
    tm, fake, _ = session
    transport = HeldTransport(fake)
    api, burst = await _burst_behind_a_held_refresh(tm, fake, clock, transport, 100)
    assert transport.unanswered == HANDOFF_MIN_LIMIT  # a drain starts at the minimum
    assert sum(t.done() for t in burst) == 0
    # Answers at the minimum round trip (the virtual clock stands still): the limit grows
    # by one per answer, so each answer lets two more go - slow start.
    for answered in range(1, 11):
        await transport.answer()
        assert transport.unanswered == HANDOFF_MIN_LIMIT + answered
    assert tm._handoff.limit == HANDOFF_MIN_LIMIT + 10
    while transport.waiting:
        await transport.answer(len(transport.waiting))
    responses = await asyncio.gather(*burst)
    assert [r.status_code for r in responses] == [200] * 100
    assert fake.calls["refresh"] == 1
    await api.aclose()


async def test_the_limit_shrinks_when_round_trips_grow(session, clock):
    tm, fake, _ = session
    transport = HeldTransport(fake)
    api, burst = await _burst_behind_a_held_refresh(tm, fake, clock, transport, 100)
    await clock.advance(0.01)
    await transport.answer(HANDOFF_MIN_LIMIT)  # min_rtt 10 ms; the limit grows to 8
    peak = tm._handoff.limit
    assert peak == 2 * HANDOFF_MIN_LIMIT
    # The server slows down: 10x the minimum round trip means ~90 % of the requests out
    # there are queued at the server. The limit falls until fewer than 6 seem queued.
    for _ in range(12):
        await clock.advance(0.1)
        await transport.answer()
    assert tm._handoff.limit < peak
    assert tm._handoff.limit * 0.9 <= HANDOFF_QUEUE_HIGH + 1
    assert transport.unanswered <= tm._handoff.limit
    while transport.waiting:
        await transport.answer(len(transport.waiting))
    assert {r.status_code for r in await asyncio.gather(*burst)} == {200}
    await api.aclose()


async def test_long_requests_do_not_block_the_handoff(session, clock):
    # Four long polls fill the limit and are not answered for minutes: the queue behind
    # them still moves, one request per HANDOFF_STALL_S without an answer.
    tm, fake, _ = session
    transport = HeldTransport(fake)
    api, burst = await _burst_behind_a_held_refresh(tm, fake, clock, transport, 10)
    assert transport.unanswered == HANDOFF_MIN_LIMIT
    await clock.advance(HANDOFF_STALL_S * 0.9)
    assert transport.unanswered == HANDOFF_MIN_LIMIT
    await clock.advance(HANDOFF_STALL_S * 0.2)
    assert transport.unanswered == HANDOFF_MIN_LIMIT + 1
    await clock.advance(HANDOFF_STALL_S * 5)
    assert transport.unanswered == 10  # all out, well within their 30 s gate deadline
    assert tm.metrics()["gate_timeouts"] == 0
    await transport.answer(10)
    assert {r.status_code for r in await asyncio.gather(*burst)} == {200}
    await api.aclose()


async def test_a_request_that_fails_in_transport_frees_its_place(session, clock):
    tm, fake, _ = session
    transport = HeldTransport(fake)
    api, burst = await _burst_behind_a_held_refresh(tm, fake, clock, transport, 20)
    await transport.answer(HANDOFF_MIN_LIMIT, fail=httpx.ReadError("connection reset"))
    assert transport.unanswered == HANDOFF_MIN_LIMIT  # the next ones took their places
    while transport.waiting:
        await transport.answer(len(transport.waiting))
    results = await asyncio.gather(*burst, return_exceptions=True)
    assert sum(isinstance(r, httpx.ReadError) for r in results) == HANDOFF_MIN_LIMIT
    assert sum(isinstance(r, httpx.Response) and r.status_code == 200 for r in results) == 16
    assert tm._handoff.unanswered == 0
    await api.aclose()


async def test_callers_of_access_token_are_not_held_by_the_limit(session, clock):
    # Only requests through tm.auth report their answers; a direct caller gets its turn
    # (FIFO, a batch per iteration) however many requests are unanswered.
    tm, fake, _ = session
    transport = HeldTransport(fake)
    await _expire_with_refresh_held(tm, fake, clock)
    api = httpx.AsyncClient(base_url=BASE, auth=tm.auth, transport=transport)
    requests = [asyncio.create_task(api.get("/api/me/")) for _ in range(HANDOFF_MIN_LIMIT)]
    direct = [asyncio.create_task(tm.access_token()) for _ in range(10)]
    await settle()
    fake.refresh_gate.set()
    await settle(50)
    assert transport.unanswered == HANDOFF_MIN_LIMIT
    assert all(d.done() for d in direct)
    await transport.answer(HANDOFF_MIN_LIMIT)
    await asyncio.gather(*requests, *direct)
    await api.aclose()


async def test_a_gate_deadline_passes_while_held_by_the_limit(session, clock):
    tm, fake, events = session
    transport = HeldTransport(fake)
    api, burst = await _burst_behind_a_held_refresh(tm, fake, clock, transport, 6)
    # The token is valid, but two requests still queue behind the four unanswered ones:
    # a newcomer queues behind them, and its own deadline holds there too.
    late = asyncio.create_task(
        api.get("/api/me/", extensions={GATE_TIMEOUT_EXTENSION: HANDOFF_STALL_S / 2})
    )
    await settle()
    await clock.advance(HANDOFF_STALL_S / 2 + 0.01)
    with pytest.raises(GateTimeoutError, match="no turn at the gate"):
        await late
    assert transport.arrived == HANDOFF_MIN_LIMIT
    assert tm.metrics()["gate_timeouts"] == 1
    assert "gate_timeout" in kinds(events)
    while transport.waiting:
        await transport.answer(len(transport.waiting))
    assert {r.status_code for r in await asyncio.gather(*burst)} == {200}
    await api.aclose()
