"""The TokenManager: the driver that does the I/O the session state machine decides on.

One ``TokenManager`` per process (the application object owns it; windows get it).
It logs in, keeps a valid access token at hand, refreshes it before it expires on the
server's clock, retries with backoff when the network or the server fails, and hands
tokens to requests through a *gate*:

* **fast path** - a usable access token is returned at once, with no task, lock or
  timer (2,000 sequential requests must cost ≤ 5 % over a static header);
* **single flight** - when no usable token exists, the first caller starts *the*
  refresh cycle (one asyncio task: attempts, backoff, outcome-unknown probing) and
  every caller waits for that same task with its own deadline, so 1,000 concurrent
  requests on an expired token cause exactly one refresh;
* **deadlines** run on the injected clock; a waiter that gives up never cancels the
  refresh, and a refresh that fails for good fails every waiter at once (in one loop
  iteration) with :class:`~kiosk.core.errors.NeedsReauthenticationError`;
* **hand-off** - when the refresh lands, the waiters are let go in FIFO order, at most
  :data:`GATE_RELEASE_BATCH` per event-loop iteration, and at most an adaptive limit of
  the requests let go (those of :class:`TokenAuth`) unanswered at once; requests that
  arrive meanwhile, replays of 401s included, queue behind them (:class:`_Handoff`).

A deliberate difference from DESIGN §3 ("while a refresh runs requests wait"): a
proactive refresh starts well before ``exp``, and during it the current access token
is still valid on the server (simplejwt never revokes access tokens on rotation). So
requests keep going out with it, and only wait when the token is within
:data:`ACCESS_EXPIRY_MARGIN_S` of expiry or was rejected. A refresh stuck in backoff
on flaky Wi-Fi then costs the nurse nothing until the access token really runs out.

Token calls use the manager's own ``httpx.AsyncClient`` (its own connection pool), so a
refresh never queues behind a burst of API requests in the application's pool - one of
the mechanics behind the hangs measured in DESIGN §9.

Why the hand-off (measured on the shared 2-core bench machine, reference server gunicorn
gthread 2x8, simplejwt rotation + blacklist, 1,000 concurrent GETs on an expired token,
httpx 0.29 / httpcore 1.0.9):

* The gate used to let every waiter go in the loop iteration the refresh landed in. All
  1,000 requests then entered the application's pool together, found no idle connection
  and opened ~1,000; httpcore's ``_assign_requests_to_connections`` runs on every request
  start and response close and costs O(connections) plus, per *idle* connection, a socket
  check and another O(connections) scan, so the burst spent its time in the pool:
  ``bench/run.py --quick --json`` (bench/out/quick1.json) kiosk 25.8 s against authlib's
  AsyncOAuth2Client 5.4 s in the same run (``burst_wall_ratio`` 4.80); a *valid* static
  token sent all at once costs the same (bench/burst_probe.py: 24-30 s, 1,000 connections).
* One waiter per loop iteration, FIFO (what authlib's ``anyio.Lock`` amounts to, and the
  first version of this hand-off) fixes the worst of it - 3.8-9.9 s, ``burst_wall_ratio``
  1.23, 1.45, 1.59 in three quick runs (quick2-4.json) - but does not beat authlib: nothing
  keeps the entries from outrunning the server, so requests pile up in flight until the
  pool's own bookkeeping has slowed the client down to the server's pace. How many
  connections that takes (14 to 86 here) depends on how fast the first answers come back
  (probably against kiosk in run.py, whose burst meets the server first after the idle
  wait). Releasing more per iteration is worse still (4-16 per iteration: 14-15 s; 8 per
  iteration opened 150-170 connections).
* So the hand-off also limits how many of the requests it let go may be unanswered at
  once. :class:`TokenAuth` returns each request's *ticket* when its answer arrives; the
  limit starts at :data:`HANDOFF_MIN_LIMIT` when a refresh lands and adapts like TCP Vegas
  (the Netflix concurrency-limits formulation): from the round-trip times on the injected
  clock it estimates how many requests queue at the server, ``limit * (1 - min_rtt/rtt)``,
  grows by one per answer below :data:`HANDOFF_QUEUE_LOW`, shrinks by one above
  :data:`HANDOFF_QUEUE_HIGH`, within [:data:`HANDOFF_MIN_LIMIT`, :data:`HANDOFF_MAX_LIMIT`].
  A fast parallel server is filled (the limit doubles per round trip while nothing
  queues); a CPU-bound one gets a few more requests than it serves at once, and the pool
  stays at a handful of busy connections. If the limit is full and no answer comes for
  :data:`HANDOFF_STALL_S` (long polls, uploads), it widens by one, so long requests delay
  the queue behind them but never block it. Requests that do not report (callers of
  :meth:`TokenManager.access_token`) only take their FIFO turn.
* Each waiter is one future (queued behind the refresh, then in the hand-off) and one
  entry in a deadline heap kept by a single task on the injected clock, instead of the
  two tasks per waiter of ``wait_with_deadline``: 1,000 waiters no longer cost a loop
  iteration of 2,000 task steps before the refresh even starts.

After (``bench/run.py --quick --json``, bench/out/quick5-7.json): kiosk 2.38 / 1.70 /
1.93 s against authlib 3.79 / 2.35 / 2.76 s, ``burst_wall_ratio`` 0.63 / 0.73 / 0.70,
1 refresh and 0 failures each; ``overhead_ratio`` 0.95 / 0.93 / 1.01 and
``refresh_latency_ratio`` 1.05 / 1.09 / 1.09 (1.096 before the change: ``refresh()`` and the
fast path do not go through the hand-off). ``python bench/burst_probe.py``
(bench/out/probe_after.json, two rounds each, medians): kiosk 2.67 s (10-12 connections,
1.5-1.8 s client CPU), authlib 4.16 s (15-29 connections, 2.3-4.9 s), one per iteration
without the limit 6.64 s (53-86 connections), all at once (the old gate) 25.2 s (1,000).
The machine is shared and noisy: single runs of the same code vary by +-30 %.

At a distance (``bench/burst_probe.py --rtt-ms 100``: a proxy adds 100 ms of round trip) the
limit matters more: kiosk 5.2-6.2 s with ~50 connections in five rounds, one per iteration
without it 12-20 s (300-630), a valid static token all at once 28.6 s (1,000), authlib
16-41 s, with up to 241 refreshes and 240 failed requests. A ceiling of 128 or 256 instead
of 64 changed nothing measurable there (bench/RESULTS.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import heapq
import hmac
import itertools
import logging
import math
import random
import secrets
import ssl
from collections import deque
from collections.abc import Callable, Iterable
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
    error_code,
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
    TlsVerificationError,
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

#: Waiters the gate lets go per event-loop iteration once a token is there (FIFO). See the
#: module docstring for why and for the figures behind the values.
GATE_RELEASE_BATCH = 1
#: Requests let go by the gate's hand-off that may be unanswered at once: the limit starts
#: at the minimum after each refresh and adapts (Vegas) between the minimum and maximum.
HANDOFF_MIN_LIMIT = 4
HANDOFF_MAX_LIMIT = 64
#: Vegas thresholds: the limit grows while fewer than ``LOW`` of the unanswered requests
#: seem to queue at the server (estimated from the round-trip times), shrinks above ``HIGH``.
HANDOFF_QUEUE_LOW = 3.0
HANDOFF_QUEUE_HIGH = 6.0
#: The limit is full and no answer came for this long (or 8 minimum round trips, if longer):
#: the requests out there are long ones (long polls, uploads); widen the limit by one.
HANDOFF_STALL_S = 1.0
#: Refreshes one waiter may sit through before giving up on a server whose fresh access
#: tokens are never usable.
_MAX_GATE_REFRESHES = 3

#: Transport failures where the request certainly did not reach the server.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)

#: States in which a waiter at the gate may still get a token.
_GATE_OPEN_STATES = LIVE_STATES - {State.NEEDS_REAUTH}

_STATE_SEVERITY = {
    State.RETRYING: Severity.MEDIUM,
    State.OUTCOME_UNKNOWN: Severity.MEDIUM,
    State.NEEDS_REAUTH: Severity.HIGH,
}


def _tls_failure(exc: BaseException) -> str | None:
    """Why TLS failed, if ``exc`` (or what it wraps) is a certificate or handshake failure."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError):
            return str(current.verify_message or "certificate verify failed")
        if isinstance(current, ssl.SSLError):
            return str(current.reason or "TLS handshake failed")
        current = current.__cause__ or current.__context__
    text = str(exc)
    if "CERTIFICATE_VERIFY_FAILED" in text:  # httpcore may keep only the message
        return "certificate verify failed"
    return None


class _OutcomeUnknown(Exception):
    """The refresh request may have reached the server; no usable answer came back."""


class _Ticket:
    """One request the hand-off let go: :class:`TokenAuth` reports when it is answered."""

    __slots__ = ("epoch", "open", "sent_at")

    def __init__(self, epoch: int, sent_at: float) -> None:
        self.epoch = epoch
        self.sent_at = sent_at
        self.open = True


#: A gate waiter: its future and whether its request will report its answer (TokenAuth).
_Waiter = tuple[asyncio.Future["_Ticket | None"], bool]


class _Handoff:
    """How the gate lets its waiters go once a token is there (see the module docstring).

    * FIFO: waiters get their turn in the order they arrived;
    * at most :data:`GATE_RELEASE_BATCH` per event-loop iteration;
    * at most :attr:`limit` of the requests let go that report their answers (those of
      :class:`TokenAuth`) unanswered at once. The limit is adaptive, after TCP Vegas: from
      the round-trip times it estimates how many requests queue at the server
      (``limit * (1 - min_rtt / rtt)``) and grows while that is below
      :data:`HANDOFF_QUEUE_LOW`, shrinks above :data:`HANDOFF_QUEUE_HIGH`;
    * every waiter's deadline, on the injected clock, kept by one task for all of them;
    * once the session is gone every waiter goes at once (they all fail the same way).
    """

    def __init__(self, clock: Clock, session_gone: Callable[[], bool]) -> None:
        self._clock = clock
        self._session_gone = session_gone
        self.queue: deque[_Waiter] = deque()
        self._scheduled = False
        self._blocked = False
        # The adaptive limit, for the current drain (a refresh landing starts a new one).
        self._epoch = 0
        self.limit = float(HANDOFF_MIN_LIMIT)
        self._min_rtt = math.inf
        self.unanswered = 0
        self._progress_at = 0.0
        # Deadlines (clock monotonic) and the one task that keeps them.
        self._deadlines: list[tuple[float, int, asyncio.Future[_Ticket | None]]] = []
        self._seq = itertools.count()
        self._keeper: asyncio.Task[None] | None = None
        self._keeper_target = math.inf

    # -------------------------------------------------------------- queue and release

    def new_drain(self) -> None:
        """A refresh landed: start the limit afresh (the server's state is not known)."""
        self._epoch += 1
        self.limit = float(HANDOFF_MIN_LIMIT)
        self._min_rtt = math.inf
        self.unanswered = 0
        self._progress_at = self._clock.monotonic()

    def enqueue(self, waiters: Iterable[_Waiter]) -> None:
        self.queue.extend(waiters)
        self.poke()

    def poke(self) -> None:
        """Something changed (an answer, a waiter gave up, the session state): release."""
        if self.queue and not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._release)

    def _release(self) -> None:
        """One loop iteration's hand-off."""
        self._scheduled = False
        queue = self.queue
        gone = self._session_gone()
        budget = len(queue) if gone else GATE_RELEASE_BATCH
        blocked = False
        while queue and budget > 0:
            waiter, reports = queue[0]
            if waiter.done():
                queue.popleft()
                continue
            ticket = None
            if reports and not gone:
                if self.unanswered >= self.limit:
                    blocked = True  # FIFO: everyone behind waits for an answer too
                    break
                self.unanswered += 1
                ticket = _Ticket(self._epoch, self._clock.monotonic())
            queue.popleft()
            waiter.set_result(ticket)
            budget -= 1
        if blocked and not self._blocked:
            self._progress_at = self._clock.monotonic()
            self._wake_keeper_by(self._stall_at())
        self._blocked = blocked
        if queue and not blocked:
            self.poke()

    def answered(self, ticket: _Ticket, *, sample: bool = True) -> None:
        """The request ``ticket`` let go was answered (or will not be sent after all)."""
        if not ticket.open:
            return
        ticket.open = False
        if ticket.epoch != self._epoch:
            return
        self.unanswered -= 1
        now = self._clock.monotonic()
        self._progress_at = now
        if sample:
            rtt = now - ticket.sent_at
            self._min_rtt = min(self._min_rtt, rtt)
            queued = self.limit * (1.0 - self._min_rtt / rtt) if rtt > 0 else 0.0
            if queued < HANDOFF_QUEUE_LOW:
                self.limit = min(self.limit + 1.0, float(HANDOFF_MAX_LIMIT))
            elif queued > HANDOFF_QUEUE_HIGH:
                self.limit = max(self.limit - 1.0, float(HANDOFF_MIN_LIMIT))
        self.poke()

    def _stall_at(self) -> float:
        rtt = self._min_rtt if math.isfinite(self._min_rtt) else 0.0
        return self._progress_at + max(HANDOFF_STALL_S, 8.0 * rtt)

    # -------------------------------------------------------------- deadlines

    def arm(self, deadline: float, waiter: asyncio.Future[_Ticket | None]) -> None:
        """Fail ``waiter`` with :class:`DeadlineExceeded` at ``deadline`` (clock monotonic)."""
        if math.isfinite(deadline):
            heapq.heappush(self._deadlines, (deadline, next(self._seq), waiter))
            self._wake_keeper_by(deadline)

    def disarm(self) -> None:
        """No waiter is left: drop the deadlines and stop the keeper (no timer lingers)."""
        self._deadlines.clear()
        self._keeper_target = math.inf
        keeper, self._keeper = self._keeper, None
        if keeper is not None and not keeper.done():
            keeper.cancel()

    def close(self) -> None:
        self.disarm()

    def _wake_keeper_by(self, when: float) -> None:
        keeper = self._keeper
        if keeper is not None and not keeper.done():
            if when >= self._keeper_target:
                return
            keeper.cancel()  # it sleeps until later than ``when``
        self._keeper = asyncio.create_task(self._keep(), name="kiosk-gate-deadlines")
        self._keeper_target = when  # the new keeper wakes by then at the latest

    async def _keep(self) -> None:
        heap = self._deadlines
        while True:
            now = self._clock.monotonic()
            while heap and (heap[0][2].done() or heap[0][0] <= now):
                _, _, waiter = heapq.heappop(heap)
                if not waiter.done():
                    waiter.set_exception(DeadlineExceeded("the gate's deadline passed"))
            wake = heap[0][0] if heap else math.inf
            if self._blocked:
                stall_at = self._stall_at()
                if stall_at <= now:
                    # The limit is full of requests that take long: let one more go
                    # (past HANDOFF_MAX_LIMIT too - long requests must not block the queue).
                    self.limit += 1.0
                    self._progress_at = now
                    self.poke()
                    stall_at = self._stall_at()
                wake = min(wake, stall_at)
            if not math.isfinite(wake):
                break
            self._keeper_target = wake
            await self._clock.sleep(wake - now)
        self._keeper_target = math.inf


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
        self._ssl_context: ssl.SSLContext | None = None
        self._tls_warned = False
        self._scheduler: asyncio.Task[None] | None = None
        self._refresh_task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._login_lock = asyncio.Lock()
        # The gate: the waiters of the refresh in flight, the hand-off, how many wait.
        self._refresh_waiters: list[_Waiter] = []
        self._handoff = _Handoff(self._clock, self._session_gone)
        self._gate_waiters = 0
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
        self._http = httpx.AsyncClient(
            transport=self._transport,
            timeout=httpx.Timeout(self._server.timeout_s),
            verify=self.ssl_context,
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
        self._handoff.close()
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
    def ssl_context(self) -> ssl.SSLContext:
        """The TLS settings for API clients of this session: ``httpx.AsyncClient(verify=...)``.

        The server's ``ca_bundle`` (the hospital's PKI) when configured, else the default trust
        store. The token client uses the same context: one CA-bundle parse (~0.8 MB) per
        process, and API calls can never trust less or more than token calls.
        """
        if self._ssl_context is None:
            if self._server.ca_bundle:
                self._ssl_context = ssl.create_default_context(cafile=self._server.ca_bundle)
            else:
                self._ssl_context = httpx.create_ssl_context()
        return self._ssl_context

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
        if 200 <= response.status_code < 300:
            return True
        # The server refused the token itself (blacklisted already, expired): nothing valid is
        # left there, which is all revoking is for. Signing out after a definitive refresh
        # failure used to report "stays valid on the server" for a token the server had killed.
        return (
            response.status_code == 401
            and error_code(response, self._server.max_body_bytes) == "token_not_valid"
        )

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
        await self._sign_out("signed_out")

    @property
    def resumable(self) -> bool:
        """Whether a later process could resume this session once this one has ended.

        Only when its refresh token is kept outside the process: a vault other than memory,
        and a dialect whose refresh token may be persisted (dj-rest-auth's cookie may not).
        """
        return (
            self._vault is not None
            and not isinstance(self._vault, MemoryVault)
            and self._dialect.persist_refresh
        )

    async def end_unresumable_session(self) -> bool:
        """Sign out a live session that no later process could resume; True if it did.

        For the application's exit. A memory-only session (the ICU profile, a workstation
        without a usable keyring, dj-rest-auth's cookie) dies with the process anyway; leaving
        its refresh token valid on the server until it expires would leave a credential nobody
        can use or revoke any more. The event is ``logged_out`` with reason ``closed``; when the
        server cannot be reached, ``logout_not_revoked`` says the token stays valid there.
        """
        return not self.resumable and await self._sign_out("closed")

    async def _sign_out(self, reason: str) -> bool:
        """End a live session (revoke, wipe) with ``reason``; True if there was one."""
        async with self._login_lock:
            if self._machine.state not in LIVE_STATES:
                return False
            await self._end_session(reason, by_cap=False)
        return True

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
        if token is not None and not self._handoff.queue:
            return token
        return (await self._wait_at_gate(timeout, reports=False))[0]

    async def _token_for_request(
        self, timeout: float | None = None
    ) -> tuple[Token, _Ticket | None]:
        """:meth:`access_token` for :class:`TokenAuth`, with the hand-off's ticket if any.

        A ticket (the request was let go by the hand-off) must be given back to
        :meth:`_request_answered` when the request's answer arrives or it fails.
        """
        token = self._usable_access()
        if token is not None and not self._handoff.queue:
            return token, None
        return await self._wait_at_gate(timeout, reports=True)

    def _request_answered(self, ticket: _Ticket, *, sample: bool = True) -> None:
        self._handoff.answered(ticket, sample=sample)

    async def _wait_at_gate(
        self, timeout: float | None, *, reports: bool
    ) -> tuple[Token, _Ticket | None]:
        limit = self._policy.gate_timeout_s if timeout is None else timeout
        try:
            return await self._wait_for_access(limit, reports=reports)
        except DeadlineExceeded:
            self._metrics.gate_timeouts += 1
            if self._usable_access() is not None:
                message = (
                    f"no turn at the gate within {limit:g} s: the requests let go before "
                    "this one were still waiting for the server's answers"
                )
            else:
                message = f"no valid access token within {limit:g} s (session {self.state.value})"
            self._emit(EventKind.GATE_TIMEOUT, Severity.MEDIUM, message)
            raise GateTimeoutError(message) from None

    async def token_rejected(self, token: Token, *, timeout: float | None = None) -> Token:
        """A request that carried ``token`` got 401 ``token_not_valid``: the token to replay with.

        If ``token`` is still the current one, it is marked unusable and a refresh runs
        (single flight); if a newer token exists already, that one is returned at once.
        """
        self._mark_rejected(token)
        return await self.access_token(timeout=timeout)

    async def _replacement_for_request(
        self, token: Token, timeout: float | None = None
    ) -> tuple[Token, _Ticket | None]:
        """:meth:`token_rejected` for :class:`TokenAuth` (see :meth:`_token_for_request`)."""
        self._mark_rejected(token)
        return await self._token_for_request(timeout)

    def _mark_rejected(self, token: Token) -> None:
        if self._access is not None and self._access.jti == token.jti:
            self._rejected_jti = token.jti

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

    async def _wait_for_access(
        self, limit: float, *, reports: bool
    ) -> tuple[Token, _Ticket | None]:
        """The gate's slow path: wait for the refresh and then for this waiter's turn.

        Each pass waits on one future of its own, queued either behind the refresh in
        flight (:meth:`_refresh_landed` fails them all at once, or hands them to the
        hand-off in order) or directly in the hand-off's queue; the hand-off's keeper
        fails it with :class:`DeadlineExceeded` when ``limit`` runs out first.
        """
        loop = asyncio.get_running_loop()
        handoff = self._handoff
        deadline = self._clock.monotonic() + limit
        self._gate_waiters += 1
        try:
            refreshes = 0
            while True:
                self._raise_if_no_session()
                waiter: asyncio.Future[_Ticket | None] = loop.create_future()
                if self._usable_access() is None:
                    if refreshes == _MAX_GATE_REFRESHES:
                        # Refreshes succeed but never yield a usable token: refuse to loop
                        # (okta-auth-js #472).
                        raise ServerResponseError(
                            "the server keeps issuing access tokens that are already expired"
                        )
                    refreshes += 1
                    self._ensure_refresh()
                    self._refresh_waiters.append((waiter, reports))
                else:
                    # A token is there but earlier waiters are still being handed theirs.
                    handoff.enqueue(((waiter, reports),))
                handoff.arm(deadline, waiter)
                try:
                    ticket = await waiter
                except BaseException:
                    if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                        ticket = waiter.result()  # let go just before this task was cancelled
                        if ticket is not None:
                            handoff.answered(ticket, sample=False)
                    handoff.poke()  # the queue may have been waiting on this one
                    raise
                token = None if self._session_gone() else self._usable_access()
                if token is not None:
                    return token, ticket
                if ticket is not None:
                    handoff.answered(ticket, sample=False)  # nothing will be sent with it
        finally:
            self._gate_waiters -= 1
            if not self._gate_waiters:
                handoff.disarm()

    def _refresh_landed(self, waiters: list[_Waiter], task: asyncio.Task[None]) -> None:
        """The refresh ``waiters`` waited for is over: fail them all, or queue them in order."""
        if task.cancelled():
            for waiter, _ in waiters:
                if not waiter.done():
                    waiter.cancel()
            return
        exc = task.exception()
        if exc is not None:
            for waiter, _ in waiters:
                if not waiter.done():
                    waiter.set_exception(exc)
            return
        self._handoff.new_drain()
        self._handoff.enqueue(w for w in waiters if not w[0].done())

    def _session_gone(self) -> bool:
        """Whether :meth:`_raise_if_no_session` would raise."""
        return self._machine.state not in _GATE_OPEN_STATES

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
        await asyncio.shield(self._ensure_refresh())

    def _ensure_refresh(self) -> asyncio.Task[None]:
        """The refresh in flight, started if there is none (single flight)."""
        task = self._refresh_task
        if task is None or task.done():
            task = asyncio.create_task(self._refresh_cycle(), name="kiosk-refresh")
            task.add_done_callback(_retrieve_exception)
            # The gate's waiters for *this* refresh: a later refresh gets its own list.
            self._refresh_waiters = []
            task.add_done_callback(functools.partial(self._refresh_landed, self._refresh_waiters))
            self._refresh_task = task
        return task

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
            reason = _tls_failure(exc)
            if reason is not None:
                self._report_tls_failure(reason)
                raise TlsVerificationError(
                    f"the server's certificate could not be verified ({reason})"
                ) from None
            raise ServerUnavailableError(f"server unreachable ({type(exc).__name__})") from None
        except httpx.TransportError as exc:
            raise _OutcomeUnknown(type(exc).__name__) from None
        self._tls_warned = False
        received_at = self._clock.time()
        wire = WireResponse(
            response.status_code,
            {name.lower(): value for name, value in response.headers.items()},
            bytes(body),
            {cookie.name: cookie.value or "" for cookie in response.cookies.jar},
        )
        self._observe_server_time(wire, sent_at, received_at)
        return wire

    def _report_tls_failure(self, reason: str) -> None:
        """One HIGH event per run of TLS failures (a retrying refresh would repeat it)."""
        if self._tls_warned:
            return
        self._tls_warned = True
        hint = (
            f"check ca_bundle ({self._server.ca_bundle})"
            if self._server.ca_bundle
            else "set ca_bundle to the hospital's CA bundle if the server uses its own PKI"
        )
        self._emit(
            EventKind.TLS_ERROR,
            Severity.HIGH,
            f"the server's TLS certificate could not be verified: {reason}; {hint}",
            data={"reason": reason},
        )

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
        self._alerts.observe(event, self._metrics.counters(self._clock.time()))

    def _raise_alert(self, rule: str, severity: Severity, message: str) -> None:
        self._emit(EventKind.ALERT, severity, message, data={"rule": rule})

    def _transition(self, event: Event) -> None:
        transition = self._machine.handle(event)
        if transition.old is transition.new:
            return
        if self._handoff.queue:
            self._handoff.poke()  # the session may be gone: its waiters fail at once
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
