"""The TokenManager: the driver that does the I/O the session state machine decides on.

One ``TokenManager`` per process (the application object owns it; windows get it).
It logs in, keeps a valid access token at hand, refreshes it before it expires on the
server's clock, retries with backoff when the network or the server fails, and hands
tokens to requests through a *gate*:

* **fast path** - a usable access token is returned at once, with no task, lock or
  timer (2,000 sequential requests must cost ≤ 5 % over a static header);
* **single flight** - when no usable token exists, the first caller starts *the*
  refresh cycle (one asyncio task: attempts, backoff, outcome-unknown probing) and
  every caller awaits that same task with its own deadline, so 1,000 concurrent
  requests on an expired token cause exactly one refresh;
* **deadlines** run on the injected clock; a waiter that gives up never cancels the
  refresh (it is shielded), and a refresh that fails for good fails every waiter at
  once with :class:`~kiosk.core.errors.NeedsReauthenticationError`.

A deliberate difference from DESIGN §3 ("while a refresh runs requests wait"): a
proactive refresh starts well before ``exp``, and during it the current access token
is still valid on the server (simplejwt never revokes access tokens on rotation). So
requests keep going out with it, and only wait when the token is within
:data:`ACCESS_EXPIRY_MARGIN_S` of expiry or was rejected. A refresh stuck in backoff
on flaky Wi-Fi then costs the nurse nothing until the access token really runs out.

Token calls use the manager's own ``httpx.AsyncClient`` (its own connection pool), so a
refresh never queues behind a burst of API requests in the application's pool - one of
the mechanics behind the hangs measured in DESIGN §9.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import random
import secrets
import ssl
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from kiosk.core.alerts import AlertMonitor
from kiosk.core.backoff import ExponentialBackoff, parse_retry_after, retry_delay
from kiosk.core.claims import Token
from kiosk.core.clock import (
    Clock,
    DeadlineExceeded,
    ServerTimeOffset,
    SystemClock,
    wait_with_deadline,
)
from kiosk.core.dialect import (
    IssuedTokens,
    RefreshRejectedError,
    WireRequest,
    WireResponse,
    make_dialect,
)
from kiosk.core.errors import (
    GateTimeoutError,
    InvalidCredentialsError,
    KioskError,
    NeedsReauthenticationError,
    NotLoggedInError,
    ServerResponseError,
    ServerUnavailableError,
    SessionEndedError,
    TokenValidationError,
)
from kiosk.core.events import AuditLog, EventBus, EventKind, SecurityEvent, Severity, Subscriber
from kiosk.core.metrics import Metrics
from kiosk.core.session import (
    LIVE_STATES,
    CredentialsRenewed,
    Event,
    LoginFailed,
    LoginStarted,
    LoginSucceeded,
    RefreshFailedTransient,
    RefreshOutcomeUnknown,
    RefreshRejected,
    RefreshStarted,
    RefreshSucceeded,
    SessionEnded,
    SessionMachine,
    SessionRevoked,
    State,
    refresh_due_at,
)
from kiosk.core.settings import ServerSettings, SessionPolicy
from kiosk.core.vault import MemoryVault, StoredSession, Vault, VaultError, open_vault

log = logging.getLogger(__name__)

#: An access token this close to ``exp`` (server time) is not handed out: it could
#: expire on its way to the server.
ACCESS_EXPIRY_MARGIN_S = 1.0
#: The scheduler never sleeps longer than this in one go, so a wall-clock jump
#: (a laptop suspended on its cart) is noticed within this long after waking.
SCHEDULER_TICK_S = 15.0
#: A wall-clock/monotonic disagreement beyond this is reported as a clock jump.
CLOCK_JUMP_S = 5.0

#: Transport failures where the request certainly did not reach the server.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)

_STATE_SEVERITY = {
    State.RETRYING: Severity.MEDIUM,
    State.OUTCOME_UNKNOWN: Severity.MEDIUM,
    State.NEEDS_REAUTH: Severity.HIGH,
}


class _OutcomeUnknown(Exception):
    """The refresh request may have reached the server; no usable answer came back."""


class TokenManager:
    """Keeps one user's session authenticated against a simplejwt-compatible server.

    Args:
        server: the server and its dialect.
        policy: the session policy (profile); the general-ward profile by default.
        clock: the time source; the system clock by default.
        vault: where the refresh token is kept; by default the OS keyring if the policy
            allows persistence and a usable backend exists, else memory.
        transport: an httpx transport for token calls (tests inject faults here).
        rng: the random source for jitter and backoff.
        audit_path: if given, every security event is appended there as JSON.

    Use it as an async context manager; ``auth`` is the ``httpx.Auth`` for API clients.
    """

    def __init__(
        self,
        server: ServerSettings,
        *,
        policy: SessionPolicy | None = None,
        clock: Clock | None = None,
        vault: Vault | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        rng: random.Random | None = None,
        audit_path: Path | None = None,
    ) -> None:
        self._server = server
        self._policy = policy or SessionPolicy()
        self._clock: Clock = clock or SystemClock()
        self._vault: Vault | None = vault
        self._transport = transport
        self._rng = rng or random.Random()
        self._dialect = make_dialect(server)
        self._machine = SessionMachine()
        self._events = EventBus()
        if audit_path is not None:
            self._events.subscribe(AuditLog(audit_path))
        self._metrics = Metrics()
        self._alerts = AlertMonitor(self._raise_alert)
        self._events.subscribe(self._check_alerts)
        self._offset = ServerTimeOffset(self._clock)
        self._http: httpx.AsyncClient | None = None
        self._scheduler: asyncio.Task[None] | None = None
        self._refresh_task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._login_lock = asyncio.Lock()
        self._auth: TokenAuth | None = None
        # The session.
        self._user: str | None = None
        self._access: Token | None = None
        self._refresh: Token | None = None
        self._rejected_jti: str | None = None
        self._generation = 0
        self._login_time: float | None = None
        self._due_at_server: float | None = None
        self._cap_warned = False
        self._reauth_reason: str | None = None
        self._skew_warned = False
        self._unlock_verifier: tuple[bytes, bytes] | None = None

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> TokenManager:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def start(self) -> None:
        """Open the token client and the vault and start the refresh scheduler."""
        if self._http is not None:
            return
        verify: ssl.SSLContext | bool = True
        if self._server.ca_bundle:
            verify = ssl.create_default_context(cafile=self._server.ca_bundle)
        self._http = httpx.AsyncClient(
            transport=self._transport,
            timeout=httpx.Timeout(self._server.timeout_s),
            verify=verify,
            follow_redirects=False,
        )
        if self._vault is None:
            self._vault, warning = open_vault(
                self._server.base_url, persist=self._policy.persist_refresh_token
            )
            if warning:
                self._emit(EventKind.KEYRING_UNAVAILABLE, Severity.MEDIUM, warning)
        self._scheduler = asyncio.create_task(self._run_scheduler(), name="kiosk-refresh-scheduler")

    async def aclose(self) -> None:
        """Stop the scheduler and close the token client (the session is not signed out)."""
        for task in (self._scheduler, self._refresh_task):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._scheduler = None
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    # ------------------------------------------------------------------ public state

    @property
    def state(self) -> State:
        """The session's lifecycle state."""
        return self._machine.state

    @property
    def user(self) -> str | None:
        """The signed-in user name, if any."""
        return self._user

    @property
    def server(self) -> ServerSettings:
        """The server this manager talks to."""
        return self._server

    @property
    def policy(self) -> SessionPolicy:
        """The session policy in force."""
        return self._policy

    @property
    def clock(self) -> Clock:
        """The clock the manager reads time from."""
        return self._clock

    @property
    def vault(self) -> Vault | None:
        """Where the refresh token is kept (None before :meth:`start`)."""
        return self._vault

    @property
    def generation(self) -> int:
        """How many token sets this session has installed (login = 1, +1 per refresh)."""
        return self._generation

    @property
    def access_jti(self) -> str | None:
        """The current access token's jti (safe to show)."""
        return None if self._access is None else self._access.jti

    @property
    def refresh_jti(self) -> str | None:
        """The current refresh token's jti (safe to show)."""
        return None if self._refresh is None else self._refresh.jti

    @property
    def server_clock_offset(self) -> float:
        """Seconds the server's clock is ahead of ours (negative: behind)."""
        return self._offset.offset

    @property
    def events(self) -> EventBus:
        """The security-event bus."""
        return self._events

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Receive every future security event; returns an unsubscribe function."""
        return self._events.subscribe(subscriber)

    def metrics(self) -> dict[str, Any]:
        """The KPI counters, as a JSON-ready dict."""
        return self._metrics.as_dict(self._clock.time())

    @property
    def auth(self) -> TokenAuth:
        """The ``httpx.Auth`` that authenticates API requests through this manager."""
        if self._auth is None:
            self._auth = TokenAuth(self)
        return self._auth

    # ------------------------------------------------------------------ login / logout

    async def login(self, username: str, password: str) -> None:
        """Log ``username`` in.

        * Nobody signed in (or the session ended): a new session.
        * The same user after a definitive refresh failure: re-authentication; the session,
          its shift clock and the application's open work continue.
        * The same user while her session is live: her password is checked again and fresh
          tokens replace the old ones (the old refresh token is revoked).
        * A different user while a session is live (tap-over): the new credentials are checked
          *first*; only when they are good is the previous user signed out (blacklist, wipe).
          A mistyped password at a colleague's locked screen leaves her session alone.

        Raises:
            InvalidCredentialsError: wrong user name or password, or an inactive account.
            ServerUnavailableError: the server could not be reached or answered 5xx/429.
            ServerResponseError: the server's answer was unusable (a security event too).
        """
        self._require_started()
        async with self._login_lock:
            state = self._machine.state
            reauth = state is State.NEEDS_REAUTH and self._user == username
            live = state in LIVE_STATES and not reauth
            if not live:
                self._transition(LoginStarted())
            issued = await self._obtain(username, password, transition=not live)
            if live and self._user == username:
                await self._renew_credentials(issued)
                return
            if live:
                await self._end_session("tap_over", by_cap=False)
                self._transition(LoginStarted())
            login_time = self._login_time if reauth and self._login_time else self._clock.time()
            if not reauth:
                self._alerts.reset()
                self._generation = 0
                self._cap_warned = False
                self._metrics.session_start = login_time
                self._metrics.session_end = None
            self._user = username
            self._login_time = login_time
            self._reauth_reason = None
            self._set_unlock_verifier(password)
            self._install(issued, fresh_login=True)
            self._metrics.logins += 1
            self._transition(LoginSucceeded())
            self._machine.locked = False
            self._emit(
                EventKind.LOGIN_SUCCEEDED,
                Severity.INFO,
                f"{username} signed in" + (" again" if reauth else ""),
                jtis=self._jtis(),
                data={"reauthentication": reauth},
            )
            self._wake_scheduler()

    async def _obtain(self, username: str, password: str, *, transition: bool) -> IssuedTokens:
        """Ask the server for tokens; on failure emit the event (and transition) and raise."""
        try:
            response = await self._call(self._dialect.obtain_request(username, password))
            issued = self._dialect.parse_obtain(response)
            self._check_usable_on_arrival(issued.access)
        except InvalidCredentialsError as exc:
            self._login_failed(
                username, "invalid_credentials", str(exc), Severity.MEDIUM, transition=transition
            )
            raise
        except ServerUnavailableError as exc:
            self._login_failed(
                username, "server_unavailable", str(exc), Severity.LOW, transition=transition
            )
            raise
        except _OutcomeUnknown as exc:
            self._login_failed(
                username, "server_unavailable", str(exc), Severity.LOW, transition=transition
            )
            raise ServerUnavailableError(f"the server did not answer the login ({exc})") from None
        except ServerResponseError as exc:
            self._bad_response(exc, user=username)
            self._login_failed(
                username, "bad_response", str(exc), Severity.HIGH, transition=transition
            )
            raise
        return issued

    async def _renew_credentials(self, issued: IssuedTokens) -> None:
        """The signed-in user logged in again: take the fresh tokens, revoke the old chain."""
        await self._settle_refresh()
        old = self._refresh
        self._install(issued, fresh_login=True)
        self._transition(CredentialsRenewed())
        self._machine.locked = False
        self._emit(
            EventKind.LOGIN_SUCCEEDED,
            Severity.INFO,
            f"{self._user} confirmed her password; session renewed",
            jtis=self._jtis(),
            data={"reauthentication": False, "renewed": True},
        )
        if old is not None and old.jti != (self._refresh.jti if self._refresh else None):
            await self._revoke(old)
        self._wake_scheduler()

    async def _revoke(self, refresh: Token) -> bool | None:
        """Blacklist ``refresh`` on the server: True/False, or None when the dialect cannot."""
        request = self._dialect.logout_request(refresh)
        if request is None:
            return None
        try:
            response = await self._call(request)
        except (KioskError, _OutcomeUnknown, httpx.HTTPError):
            return False
        return 200 <= response.status_code < 300

    # ------------------------------------------------------------------ lock / unlock

    @property
    def locked(self) -> bool:
        """Whether the workstation is locked (the session goes on underneath)."""
        return self._machine.locked

    def lock(self) -> None:
        """Lock: the UI hides everything; the session keeps refreshing for the nurse's return."""
        if self._machine.state not in LIVE_STATES or self._machine.locked:
            return
        self._machine.locked = True
        self._emit(EventKind.LOCKED, Severity.INFO, f"workstation locked ({self._user})")

    async def unlock(self, username: str, password: str) -> bool:
        """Unlock for ``username``; return True if her own session resumed.

        The same user is checked against a salted PBKDF2 hash of the password she signed in
        with, kept in memory only: resuming is instant and works while the server is
        unreachable. (After a definitive refresh failure the server must see the password:
        that is a re-authentication.) A different user is a tap-over (see :meth:`login`);
        it returns False.

        Raises:
            InvalidCredentialsError: the password is wrong (the workstation stays locked).
            NotLoggedInError: there is no session to unlock.
        """
        if self._machine.state not in LIVE_STATES:
            raise NotLoggedInError("No one is signed in.")
        same_user = username == self._user
        if same_user and self._machine.state is not State.NEEDS_REAUTH:
            if not self._check_unlock_verifier(password):
                message = "Wrong user name or password."
                self._metrics.login_failures += 1
                self._emit(
                    EventKind.LOGIN_FAILED,
                    Severity.MEDIUM,
                    f"unlock by {username} failed: wrong password",
                    data={"reason": "invalid_credentials", "unlock": True},
                )
                raise InvalidCredentialsError(message)
            self._machine.locked = False
            self._emit(EventKind.UNLOCKED, Severity.INFO, f"{username} unlocked the workstation")
            return True
        await self.login(username, password)
        if same_user:
            self._emit(EventKind.UNLOCKED, Severity.INFO, f"{username} unlocked the workstation")
        return same_user

    def _set_unlock_verifier(self, password: str) -> None:
        salt = secrets.token_bytes(16)
        self._unlock_verifier = (salt, _pbkdf2(password, salt))

    def _check_unlock_verifier(self, password: str) -> bool:
        if self._unlock_verifier is None:
            return False
        salt, digest = self._unlock_verifier
        return hmac.compare_digest(digest, _pbkdf2(password, salt))

    async def logout(self) -> None:
        """Sign out: revoke the refresh token on the server, wipe memory and the vault."""
        async with self._login_lock:
            if self._machine.state in LIVE_STATES:
                await self._end_session("signed_out", by_cap=False)

    # ------------------------------------------------------------------ the gate

    async def access_token(self, *, timeout: float | None = None) -> Token:
        """A valid access token, waiting (at most ``timeout`` s) for a refresh if needed.

        Raises:
            NotLoggedInError: no session.
            SessionEndedError: the session ended while waiting.
            NeedsReauthenticationError: the refresh failed for good.
            GateTimeoutError: no valid token within the deadline.
        """
        token = self._usable_access()
        if token is not None:
            return token
        limit = self._policy.gate_timeout_s if timeout is None else timeout
        try:
            return await wait_with_deadline(self._clock, self._wait_for_access(), limit)
        except DeadlineExceeded:
            self._metrics.gate_timeouts += 1
            message = f"no valid access token within {limit:g} s (session {self.state.value})"
            self._emit(EventKind.GATE_TIMEOUT, Severity.MEDIUM, message)
            raise GateTimeoutError(message) from None

    async def token_rejected(self, token: Token, *, timeout: float | None = None) -> Token:
        """A request that carried ``token`` got 401 ``token_not_valid``: the token to replay with.

        If ``token`` is still the current one, it is marked unusable and a refresh runs
        (single flight); if a newer token exists already, that one is returned at once.
        """
        if self._access is not None and self._access.jti == token.jti:
            self._rejected_jti = token.jti
        return await self.access_token(timeout=timeout)

    def session_revoked(self, token: Token, reason: str) -> NeedsReauthenticationError:
        """An API request carrying ``token`` got a final 401 (``password_changed``...).

        A refresh cannot help (simplejwt still refreshes after a password change, but every
        access token it issues fails the same way), so the session needs re-authentication
        at once: no refresh is attempted, every waiting request fails with the returned
        error, and the refresh token is forgotten.

        Returns:
            The error the caller raises to its own request.
        """
        current = self._access is not None and self._access.jti == token.jti
        if current and self._machine.state in LIVE_STATES - {State.NEEDS_REAUTH}:
            # A refresh in flight is left to land: it notices the new state and fails its
            # waiters with the same error (cancelling it would hand them CancelledError).
            jtis = self._jtis()
            self._transition(SessionRevoked(reason))
            self._reauth_reason = reason
            self._metrics.interruptions += 1
            self._access = None
            self._refresh = None
            self._clear_vault()
            self._emit(
                EventKind.SESSION_REVOKED,
                Severity.HIGH,
                f"the server revoked the session ({reason}); please sign in again",
                jtis=jtis,
                data={"reason": reason},
            )
        return NeedsReauthenticationError(
            f"The server ended your session ({reason}); please enter your password again.",
            reason=reason,
        )

    async def refresh(self) -> None:
        """Refresh now (joining a refresh that is already running)."""
        self._raise_if_no_session()
        await self._refresh_single_flight()

    def _usable_access(self) -> Token | None:
        token = self._access
        if token is None or self._machine.state not in LIVE_STATES:
            return None
        if token.jti == self._rejected_jti:
            return None
        if token.claims.exp - self._offset.server_time() <= ACCESS_EXPIRY_MARGIN_S:
            return None
        return token

    async def _wait_for_access(self) -> Token:
        for _ in range(3):
            self._raise_if_no_session()
            token = self._usable_access()
            if token is not None:
                return token
            await self._refresh_single_flight()
        # Refreshes succeed but never yield a usable token: refuse to loop (okta-auth-js #472).
        raise ServerResponseError("the server keeps issuing access tokens that are already expired")

    def _raise_if_no_session(self) -> None:
        state = self._machine.state
        if state is State.NEEDS_REAUTH:
            raise NeedsReauthenticationError(
                "Your session could not be renewed; please enter your password again.",
                reason=self._reauth_reason or "needs_reauth",
            )
        if state is State.ENDED:
            raise SessionEndedError("The shift session has ended; please sign in again.")
        if state not in LIVE_STATES:
            raise NotLoggedInError("No one is signed in.")

    async def _refresh_single_flight(self) -> None:
        task = self._refresh_task
        if task is None or task.done():
            task = asyncio.create_task(self._refresh_cycle(), name="kiosk-refresh")
            task.add_done_callback(_retrieve_exception)
            self._refresh_task = task
        await asyncio.shield(task)

    # ------------------------------------------------------------------ the refresh cycle

    async def _refresh_cycle(self) -> None:
        backoff = ExponentialBackoff(self._policy.backoff, self._rng)
        after_unknown = False
        while True:
            self._adopt_newer_from_vault()
            refresh = self._refresh
            if refresh is None:
                raise NotLoggedInError("No one is signed in.")
            if refresh.claims.exp <= self._offset.server_time():
                self._fail_definitively("refresh_expired", "the session's refresh token expired")
            self._transition(RefreshStarted())
            self._metrics.refresh_attempts += 1
            started = self._clock.monotonic()
            try:
                response = await self._call(self._dialect.refresh_request(refresh))
                self._abandon_if_superseded()
                issued = self._dialect.parse_refresh(response)
                self._check_usable_on_arrival(issued.access)
            except RefreshRejectedError as exc:
                self._abandon_if_superseded()
                self._metrics.refresh_failures += 1
                detail = str(exc)
                if after_unknown:
                    detail += (
                        "; an earlier refresh got no answer, so the server had probably"
                        " rotated the token already"
                    )
                self._fail_definitively(
                    exc.reason, detail, blacklisted=exc.blacklisted, after_unknown=after_unknown
                )
            except (NeedsReauthenticationError, SessionEndedError, NotLoggedInError):
                raise  # from _abandon_if_superseded: the session moved on meanwhile
            except ServerUnavailableError as exc:
                self._abandon_if_superseded()
                self._metrics.refresh_failures += 1
                self._metrics.refresh_retries += 1
                retry_after = parse_retry_after(exc.retry_after, self._offset.server_time())
                delay = retry_delay(backoff, retry_after)
                self._transition(RefreshFailedTransient(str(exc)))
                self._emit(
                    EventKind.REFRESH_RETRYING,
                    Severity.MEDIUM,
                    f"refresh failed ({exc}); retrying in {delay:.1f} s",
                    data={
                        "delay_s": delay,
                        "retry_after_s": retry_after,
                        "attempt": backoff.attempt,
                        "next_attempt_at": self._clock.time() + delay,
                    },
                )
                await self._clock.sleep(delay)
            except (_OutcomeUnknown, ServerResponseError) as exc:
                self._abandon_if_superseded()
                self._metrics.refresh_failures += 1
                self._metrics.refresh_retries += 1
                if isinstance(exc, ServerResponseError):
                    self._bad_response(exc, user=self._user)
                self._transition(RefreshOutcomeUnknown(str(exc)))
                self._emit(
                    EventKind.REFRESH_OUTCOME_UNKNOWN,
                    Severity.MEDIUM,
                    f"refresh sent but no usable answer ({exc}); trying once more",
                    jtis=(refresh.jti,),
                )
                if after_unknown:
                    await self._clock.sleep(retry_delay(backoff, None))
                after_unknown = True
            else:
                latency = self._clock.monotonic() - started
                old_refresh = refresh.jti
                self._install(issued, fresh_login=False)
                self._metrics.refresh_successes += 1
                self._metrics.refresh_latencies.append(latency)
                self._transition(RefreshSucceeded())
                self._emit(
                    EventKind.REFRESH_SUCCEEDED,
                    Severity.INFO,
                    "session renewed",
                    jtis=(old_refresh, *self._jtis()),
                    data={"latency_ms": latency * 1000, "rotated": issued.refresh is not None},
                )
                self._wake_scheduler()
                return

    def _abandon_if_superseded(self) -> None:
        """While the refresh was on the wire, the session was revoked or ended: stop here."""
        if self._machine.state is not State.REFRESHING:
            self._raise_if_no_session()
            raise NotLoggedInError("the session changed while refreshing")

    def _fail_definitively(
        self, reason: str, detail: str, *, blacklisted: bool = False, after_unknown: bool = False
    ) -> None:
        jtis = self._jtis()
        self._transition(RefreshRejected(reason))
        self._reauth_reason = reason
        self._metrics.interruptions += 1
        self._access = None
        self._refresh = None
        self._clear_vault()
        kind = EventKind.TOKEN_BLACKLISTED if blacklisted else EventKind.REFRESH_REJECTED
        self._emit(
            kind,
            Severity.HIGH,
            f"session needs re-authentication: {detail}",
            jtis=jtis,
            data={"reason": reason, "after_unknown": after_unknown},
        )
        raise NeedsReauthenticationError(
            "Your session could not be renewed "
            f"({'the server says the token was revoked' if blacklisted else reason}); "
            "please enter your password again.",
            reason=reason,
        )

    def _adopt_newer_from_vault(self) -> None:
        """Take a sibling process's newer refresh token from the workstation store."""
        if self._vault is None or self._user is None:
            return
        try:
            stored = self._vault.load()
        except VaultError:
            return
        if stored is None or stored.user != self._user or stored.generation <= self._generation:
            return
        from kiosk.core.claims import decode_token

        try:
            token = decode_token(
                stored.refresh, self._server, expected_type=self._dialect.refresh_token_type
            )
        except TokenValidationError:
            return
        self._refresh = token
        self._generation = stored.generation

    # ------------------------------------------------------------------ ending

    async def _end_session(self, reason: str, *, by_cap: bool) -> None:
        await self._settle_refresh()
        refresh = self._refresh
        jtis = self._jtis()
        revoked = None if refresh is None else await self._revoke(refresh)
        self._unlock_verifier = None
        self._access = None
        self._refresh = None
        self._rejected_jti = None
        self._clear_vault()
        self._metrics.session_end = self._clock.time()
        self._transition(SessionEnded(reason, by_cap=by_cap))
        user = self._user
        if by_cap:
            self._emit(
                EventKind.SHIFT_CAP_REACHED,
                Severity.MEDIUM,
                "the shift's session cap was reached; the session has ended",
                jtis=jtis,
            )
        else:
            self._emit(
                EventKind.LOGGED_OUT,
                Severity.INFO,
                f"{user} signed out ({reason})",
                jtis=jtis,
                data={"reason": reason},
            )
        if revoked is False or (refresh is not None and revoked is None):
            self._emit(
                EventKind.LOGOUT_NOT_REVOKED,
                Severity.HIGH,
                "the server did not confirm revoking the refresh token; it stays valid there "
                "until it expires",
                jtis=jtis,
            )
        self._user = None
        self._wake_scheduler()

    async def _settle_refresh(self) -> None:
        """Let an in-flight refresh land (so the token we revoke is the live one)."""
        task = self._refresh_task
        if task is None or task.done():
            return
        if self._machine.state is State.REFRESHING:
            with contextlib.suppress(DeadlineExceeded, Exception):
                await wait_with_deadline(self._clock, asyncio.shield(task), self._server.timeout_s)
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    # ------------------------------------------------------------------ the scheduler

    async def _run_scheduler(self) -> None:
        while True:
            try:
                await self._scheduler_step()
            except asyncio.CancelledError:
                raise
            except KioskError:
                pass  # already a state change and a security event
            except Exception:
                log.exception("refresh scheduler step failed")
                await self._clock.sleep(1.0)

    async def _scheduler_step(self) -> None:
        if self._machine.state not in LIVE_STATES or self._login_time is None:
            await self._sleep_or_wake(None)
            return
        now = self._clock.time()
        cap_at = self._login_time + self._policy.absolute_cap_s
        warn_at = cap_at - self._policy.cap_warning_s
        if now >= cap_at:
            async with self._login_lock:
                # Decide again under the lock: a tap-over that held it may have started a new
                # session (a new login time) - the previous nurse's cap must not end it.
                login_time = self._login_time
                if (
                    self._machine.state in LIVE_STATES
                    and login_time is not None
                    and self._clock.time() >= login_time + self._policy.absolute_cap_s
                ):
                    await self._end_session("shift_cap", by_cap=True)
            return
        if now >= warn_at and not self._cap_warned:
            self._cap_warned = True
            self._emit(
                EventKind.SHIFT_CAP_APPROACHING,
                Severity.MEDIUM,
                f"the session ends in {(cap_at - now) / 60:.0f} min (shift cap)",
                data={"ends_at": cap_at},
            )
        targets = [cap_at] if self._cap_warned else [warn_at, cap_at]
        refresh_idle = self._refresh_task is None or self._refresh_task.done()
        if self._machine.state is State.ACTIVE and refresh_idle and self._due_at_server is not None:
            due_local = self._due_at_server - self._offset.offset
            if now >= due_local:
                with contextlib.suppress(KioskError):
                    await self._refresh_single_flight()
                return
            targets.append(due_local)
        await self._sleep_or_wake(min(targets) - now)

    async def _sleep_or_wake(self, delay: float | None) -> None:
        """Sleep up to ``delay`` s (one tick at most), or until something changes."""
        self._wake.clear()
        tick = SCHEDULER_TICK_S if delay is None else min(delay, SCHEDULER_TICK_S)
        wall, mono = self._clock.time(), self._clock.monotonic()
        with contextlib.suppress(DeadlineExceeded):
            await wait_with_deadline(self._clock, self._wake.wait(), max(tick, 0.0))
        drift = (self._clock.time() - wall) - (self._clock.monotonic() - mono)
        if abs(drift) > CLOCK_JUMP_S and self._machine.state in LIVE_STATES:
            self._emit(
                EventKind.CLOCK_JUMP,
                Severity.LOW,
                f"the wall clock jumped {drift:+.0f} s (sleep/wake or a clock change); "
                "re-checking token expiry",
                data={"drift_s": drift},
            )

    def _wake_scheduler(self) -> None:
        self._wake.set()

    # ------------------------------------------------------------------ plumbing

    def _require_started(self) -> None:
        if self._http is None:
            raise KioskError("TokenManager is not started: use 'async with TokenManager(...)'")

    async def _call(self, request: WireRequest) -> WireResponse:
        """Send a token request; read at most ``max_body_bytes`` of the answer."""
        self._require_started()
        assert self._http is not None
        limit = self._server.max_body_bytes
        sent_at = self._clock.time()
        try:
            async with self._http.stream(
                request.method,
                self._server.url(request.path),
                json=dict(request.json),
                headers=dict(request.headers),
            ) as response:
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > limit:
                        raise ServerResponseError(
                            f"server answer is larger than the {limit} bytes accepted",
                            status_code=response.status_code,
                        )
        except _NOT_SENT as exc:
            raise ServerUnavailableError(f"server unreachable ({type(exc).__name__})") from None
        except httpx.TransportError as exc:
            raise _OutcomeUnknown(type(exc).__name__) from None
        received_at = self._clock.time()
        wire = WireResponse(
            response.status_code,
            {name.lower(): value for name, value in response.headers.items()},
            bytes(body),
            {cookie.name: cookie.value or "" for cookie in response.cookies.jar},
        )
        self._observe_server_time(wire, sent_at, received_at)
        return wire

    def _observe_server_time(
        self, response: WireResponse, sent_at: float, received_at: float
    ) -> None:
        offset = self._offset.observe(
            date_header=response.headers.get("date"), sent_at=sent_at, received_at=received_at
        )
        if offset is None:
            return
        too_far = abs(offset) > self._policy.clock_skew_warning_s
        if too_far and not self._skew_warned:
            self._emit(
                EventKind.CLOCK_SKEW,
                Severity.MEDIUM,
                f"this workstation's clock is {abs(offset):.0f} s "
                f"{'behind' if offset > 0 else 'ahead of'} the server's; using the server's time",
                data={"offset_s": offset},
            )
        self._skew_warned = too_far

    def _check_usable_on_arrival(self, access: Token) -> None:
        remaining = access.claims.exp - self._offset.server_time()
        if remaining <= ACCESS_EXPIRY_MARGIN_S:
            raise TokenValidationError(
                f"the server issued an access token that expires in {remaining:.1f} s"
            )

    def _install(self, issued: IssuedTokens, *, fresh_login: bool) -> None:
        """Take new tokens: persist the refresh token *before* anyone may use the access."""
        assert self._user is not None
        assert self._login_time is not None
        refresh = issued.refresh or self._refresh
        if refresh is None:
            raise ServerResponseError("the server issued no refresh token")
        generation = self._generation + 1
        if issued.refresh is not None or fresh_login:
            # The cookie dialect's refresh token never leaves memory: the vault gets a marker
            # (an empty token) so siblings still see who is signed in and the generation.
            secret = refresh.reveal() if self._dialect.persist_refresh else ""
            self._persist(StoredSession(self._user, secret, generation, self._login_time))
        self._refresh = refresh
        self._access = issued.access
        self._rejected_jti = None
        self._generation = generation
        self._due_at_server = refresh_due_at(
            exp=issued.access.claims.exp,
            iat=issued.access.claims.iat if fresh_login else None,
            received_at_server=self._offset.server_time(),
            policy=self._policy,
            rng=self._rng,
        )

    def _persist(self, session: StoredSession) -> None:
        assert self._vault is not None
        try:
            self._vault.store(session)
        except VaultError as exc:
            self._vault = MemoryVault()
            self._vault.store(session)
            self._emit(
                EventKind.KEYRING_UNAVAILABLE,
                Severity.MEDIUM,
                f"{exc}: the session is kept in memory only",
            )

    def _clear_vault(self) -> None:
        if self._http is not None:
            # Cookie dialect: the token client's jar holds the session's cookies too.
            self._http.cookies.clear()
        if self._vault is not None:
            try:
                self._vault.clear()
            except VaultError as exc:
                self._emit(
                    EventKind.KEYRING_UNAVAILABLE,
                    Severity.HIGH,
                    f"{exc}: the stored session could not be wiped",
                )

    def _login_failed(
        self,
        username: str,
        reason: str,
        message: str,
        severity: Severity,
        *,
        transition: bool = True,
    ) -> None:
        self._metrics.login_failures += 1
        if transition:
            self._transition(LoginFailed(reason))
        self._emit(
            EventKind.LOGIN_FAILED,
            severity,
            f"sign-in of {username} failed: {message}",
            data={"reason": reason},
            user=username,
        )

    def _bad_response(self, exc: ServerResponseError, *, user: str | None) -> None:
        kind = (
            EventKind.TOKEN_VALIDATION_FAILED
            if isinstance(exc, TokenValidationError)
            else EventKind.MALFORMED_RESPONSE
        )
        self._emit(
            kind,
            Severity.HIGH,
            f"unusable answer from the server: {exc}",
            data={"status": exc.status_code},
            user=user,
        )

    def _check_alerts(self, event: SecurityEvent) -> None:
        self._alerts.observe(event, self.metrics())

    def _raise_alert(self, rule: str, severity: Severity, message: str) -> None:
        self._emit(EventKind.ALERT, severity, message, data={"rule": rule})

    def _transition(self, event: Event) -> None:
        transition = self._machine.handle(event)
        if transition.old is transition.new:
            return
        self._emit(
            EventKind.STATE_CHANGED,
            _STATE_SEVERITY.get(transition.new, Severity.INFO),
            f"session {transition.old.value} -> {transition.new.value}",
            jtis=self._jtis(),
            data={
                "from": transition.old.value,
                "to": transition.new.value,
                "cause": type(event).__name__,
                "reason": getattr(event, "reason", None),
            },
        )

    def _jtis(self) -> tuple[str, ...]:
        return tuple(t.jti for t in (self._access, self._refresh) if t is not None)

    def _emit(
        self,
        kind: EventKind,
        severity: Severity,
        message: str,
        *,
        jtis: tuple[str, ...] = (),
        data: dict[str, Any] | None = None,
        user: str | None = None,
    ) -> None:
        self._events.publish(
            SecurityEvent(
                kind=kind,
                severity=severity,
                time=self._clock.time(),
                user=user or self._user,
                jtis=jtis,
                message=message,
                data=data or {},
            )
        )


#: PBKDF2 rounds for the in-memory unlock check: ~20 ms here, once per unlock attempt.
_UNLOCK_ROUNDS = 60_000


def _pbkdf2(password: str, salt: bytes) -> bytes:
    return hashlib.pbkdf2_hmac("sha256", password.encode(), salt, _UNLOCK_ROUNDS)


def _retrieve_exception(task: asyncio.Task[None]) -> None:
    if not task.cancelled():
        task.exception()


from kiosk.core.auth import TokenAuth  # noqa: E402 - TokenAuth needs TokenManager's module
