"""Whole-shift simulations: :class:`ShiftSimulator` plays a shift, :class:`ShiftReport` judges it.

A shift is one workstation process with ``windows`` headless core clients sharing the one
``TokenManager`` (as the Qt windows of one kiosk process do), driven by a :class:`ShiftPlan`:

* each window's **user activity** is a Poisson stream of API work (``GET /api/me/``, the
  patient list, ``POST`` observations with an ``Idempotency-Key``) at ``rate_per_s``, shaped by
  the timeline: :class:`Burst`, :class:`Quiet`, :class:`Break` (no activity: the idle lock
  comes down, and the nurse unlocks when she is back) and :class:`Handover` (the next nurse
  badges in: a tap-over);
* each window keeps an **outbox**: work that failed (connection refused, 5xx, a gate timeout...)
  stays queued, in order, and is retried with backoff - so the report can say whether work was
  *lost* or only *delayed*, and the server's own rows say whether any write was *duplicated*;
* **faults** (:mod:`kiosk.testing.spec`) hit both the token client's and the API client's
  transports (they share one Wi-Fi), and ``restart`` windows stop the real server;
* a nurse asked for her password without having caused it (``needs_reauth``, or a session
  ended under her before her part of the shift was over) types it again after
  ``reauth_delay_s``: that is an **interruption**.

Time: with a :class:`~kiosk.testing.virtual.LinkedClock` and the in-process server a 12 h
shift runs in seconds (:meth:`ShiftSimulator.in_process`); with the system clock against a
gunicorn server or any live server it runs in real time (:meth:`ShiftSimulator.against`,
:meth:`ShiftSimulator.remote`).

Counting: ``refreshes`` is the number of refresh requests that *reached the server* (counted
under the fault injector), which is what the server's own counters see; ``refresh_attempts``
also counts attempts that never left (injected connect errors, synthetic 5xx).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import httpx

from kiosk.core.clock import Clock, SystemClock
from kiosk.core.errors import (
    GateTimeoutError,
    KioskError,
    NeedsReauthenticationError,
    NotLoggedInError,
    SessionEndedError,
)
from kiosk.core.events import EventKind, SecurityEvent
from kiosk.core.manager import ACCESS_EXPIRY_MARGIN_S, TokenManager
from kiosk.core.settings import PROFILES, ServerSettings, SessionPolicy
from kiosk.core.vault import MemoryVault
from kiosk.testing.faults import FaultInjector
from kiosk.testing.spec import FaultPlan, parse_faults
from kiosk.testing.virtual import LinkedClock

#: Token lifetimes the reference server gets for each profile (CareLink guide): access, refresh.
PROFILE_LIFETIMES: dict[str, tuple[float, float]] = {
    "icu": (5 * 60, 8 * 3600),
    "general-ward": (15 * 60, 12 * 3600),
    "outpatient": (20 * 60, 16 * 3600),
    "research": (30 * 60, 24 * 3600),
}

#: KPI thresholds of the CareLink seed.
KPI_MIN_REFRESH_SUCCESS = 0.995
KPI_MAX_LOGINS_PER_NURSE = 2
KPI_MAX_SESSION_S = 12.5 * 3600
KPI_MAX_INTERRUPTIONS = 0

#: A session ended by the system this close to the end of the nurse's part of the shift (or
#: later) is the shift ending, not a forced logout.
_END_TOLERANCE_S = 1.0


# ---------------------------------------------------------------------------- the timeline


@dataclass(frozen=True)
class Burst:
    """Busier than usual: ``rate_per_s`` per window from ``at_s`` for ``duration_s``."""

    at_s: float
    duration_s: float
    rate_per_s: float


@dataclass(frozen=True)
class Quiet:
    """The nurse is there but hardly uses the kiosk (``rate_per_s``, default none)."""

    at_s: float
    duration_s: float
    rate_per_s: float = 0.0


@dataclass(frozen=True)
class Break:
    """The nurse walks away for ``duration_s``: the idle lock comes down; she unlocks on return."""

    at_s: float
    duration_s: float


@dataclass(frozen=True)
class Handover:
    """At ``at_s`` the next nurse (``to_user``) badges in: the previous session ends (tap-over)."""

    at_s: float
    to_user: str


Activity = Burst | Quiet | Break | Handover


@dataclass
class ShiftPlan:
    """What happens during a simulated shift.

    Attributes:
        duration_s: the shift's length.
        windows: kiosk windows (headless core clients) sharing the session.
        rate_per_s: each window's average requests per second (one a minute by default).
        user: the nurse who logs in at the start.
        timeline: bursts, quiet periods, breaks and handovers.
        faults: a fault spec (:func:`~kiosk.testing.spec.parse_faults`) or a parsed plan.
        profile: the session policy's profile name (sets idle lock, cap...), or a policy.
        post_fraction: share of requests that record an observation (POST).
        list_fraction: share of requests that read the patient list.
        idempotency_keys: send ``Idempotency-Key`` with each POST (off shows duplicates).
        reauth_delay_s: how long an interrupted nurse takes to type her password again.
        drain_s: after the shift, how long windows may still deliver queued work.
        seed: seed of every random choice (arrivals, jitter, request mix).
    """

    duration_s: float = 12 * 3600
    windows: int = 5
    rate_per_s: float = 1 / 60
    user: str = "alice"
    timeline: Sequence[Activity] = ()
    faults: FaultPlan | str | None = None
    profile: str | SessionPolicy = "general-ward"
    post_fraction: float = 0.05
    list_fraction: float = 0.05
    idempotency_keys: bool = True
    reauth_delay_s: float = 20.0
    drain_s: float = 60.0
    seed: int = 1

    @property
    def policy(self) -> SessionPolicy:
        """The session policy."""
        if isinstance(self.profile, SessionPolicy):
            return self.profile
        from kiosk.core.settings import profile

        return profile(self.profile)

    @property
    def fault_plan(self) -> FaultPlan:
        """The faults, parsed."""
        if isinstance(self.faults, FaultPlan):
            return self.faults
        return parse_faults(self.faults)

    @property
    def users(self) -> list[str]:
        """Every nurse of the shift: who logs in first, then each handover's."""
        return [self.user] + [h.to_user for h in self.timeline if isinstance(h, Handover)]

    def check(self, credentials: Mapping[str, str], *, can_restart: bool) -> None:
        """What any simulator needs of a plan.

        Raises:
            ValueError: no window, a nurse without a password, or restart faults against a
                server the simulator cannot stop and start.
        """
        if self.windows < 1:
            raise ValueError("a shift needs at least one window")
        for user in self.users:
            if user not in credentials:
                raise ValueError(f"no password for user {user!r}")
        if self.fault_plan.restarts and not can_restart:
            raise ValueError("restart faults need a server the simulator can stop and start")

    def rate_at(self, t: float) -> tuple[float, float]:
        """The per-window rate at ``t`` and until when it holds (the next timeline boundary).

        Where segments overlap, a :class:`Break` wins (the nurse is away, whatever else was
        planned); otherwise the segment that started last, and of those the one listed last.
        """
        rate = self.rate_per_s
        until = self.duration_s
        covering: list[tuple[float, int, Burst | Quiet | Break]] = []
        for index, item in enumerate(self.timeline):
            if isinstance(item, Handover):
                continue
            start, end = item.at_s, item.at_s + item.duration_s
            if start <= t < end:
                covering.append((start, index, item))
                until = min(until, end)
            elif start > t:
                until = min(until, start)
        if covering:
            latest = max(covering, key=lambda c: (c[0], c[1]))[2]
            away = any(isinstance(item, Break) for _, _, item in covering)
            rate = 0.0 if away or isinstance(latest, Break) else latest.rate_per_s
        return rate, until


# ---------------------------------------------------------------------------- the report


@dataclass
class ShiftReport:
    """The KPIs of one simulated shift.

    Attributes:
        refreshes: refresh requests that reached the server (what its counters see).
        refresh_failures: refresh attempts that failed (transport, 5xx, rejected...).
        refresh_success_rate: successful / attempted refreshes (None without any).
        refresh_latency_p50_ms: median refresh latency (client clock).
        refresh_latency_p95_ms: 95th percentile refresh latency.
        logins: successful logins, re-authentications included.
        interruptions: login or re-authentication prompts the nurse did not cause.
        forced_logouts: sessions the system ended before the nurse's part of the shift was over.
        user_visible_401: API answers 401 that reached the application (after any replay).
        requests: API work items the windows created.
        requests_failed: delivery attempts that failed (the work stays queued and is retried).
        requests_lost: work never delivered (or acknowledged but missing on the server).
        duplicate_writes: observation rows the server holds more than once.
        locks: times the workstation locked.
        session_duration_s: the longest session, login to end.
        refresh_attempts: refresh attempts, including those that never left the workstation.
        server_refreshes: refresh requests the server counted (None if it cannot say).
        requests_recovered: work delivered after at least one failed attempt.
        unlocks: times the nurse unlocked.
        gate_timeouts: requests that gave up waiting for a valid token.
        windows: windows in the shift.
        duration_s: the simulated shift's length.
        wall_s: wall-clock seconds the simulation took.
        logins_by_user: successful logins per nurse (the KPI is per nurse and day).
        failure_reasons: failed delivery attempts by reason (exception or status).
        lost_reasons: lost work by reason (``unsent_at_end``, ``handover``, ``refused_400``...).
        events: security events of the shift, counted by kind (``refresh_succeeded``...).
    """

    refreshes: int = 0
    refresh_failures: int = 0
    refresh_success_rate: float | None = None
    refresh_latency_p50_ms: float | None = None
    refresh_latency_p95_ms: float | None = None
    logins: int = 0
    interruptions: int = 0
    forced_logouts: int = 0
    user_visible_401: int = 0
    requests: int = 0
    requests_failed: int = 0
    requests_lost: int = 0
    duplicate_writes: int = 0
    locks: int = 0
    session_duration_s: float = 0.0
    refresh_attempts: int = 0
    server_refreshes: int | None = None
    requests_recovered: int = 0
    unlocks: int = 0
    gate_timeouts: int = 0
    windows: int = 0
    duration_s: float = 0.0
    wall_s: float = 0.0
    logins_by_user: dict[str, int] = field(default_factory=dict)
    failure_reasons: dict[str, int] = field(default_factory=dict)
    events: dict[str, int] = field(default_factory=dict)
    lost_reasons: dict[str, int] = field(default_factory=dict)

    def note_failure(self, reason: str) -> None:
        """Count one failed delivery attempt and why."""
        self.requests_failed += 1
        self.failure_reasons[reason] = self.failure_reasons.get(reason, 0) + 1

    def note_lost(self, reason: str, n: int = 1) -> None:
        """Count ``n`` pieces of work as lost and why."""
        if n <= 0:
            return
        self.requests_lost += n
        self.lost_reasons[reason] = self.lost_reasons.get(reason, 0) + n

    def kpi_failures(self) -> list[str]:
        """The CareLink KPI thresholds this shift misses, in words (empty: all met)."""
        failures: list[str] = []
        rate = self.refresh_success_rate
        if rate is not None and not rate > KPI_MIN_REFRESH_SUCCESS:
            failures.append(
                f"refresh success {rate:.2%} is not above {KPI_MIN_REFRESH_SUCCESS:.1%}"
            )
        most = max(self.logins_by_user.values(), default=0)
        if most > KPI_MAX_LOGINS_PER_NURSE:
            failures.append(
                f"a nurse logged in {most} times (at most {KPI_MAX_LOGINS_PER_NURSE} a day)"
            )
        if self.session_duration_s > KPI_MAX_SESSION_S:
            failures.append(
                f"a session lasted {self.session_duration_s / 3600:.2f} h "
                f"(at most {KPI_MAX_SESSION_S / 3600:g} h)"
            )
        if self.interruptions > KPI_MAX_INTERRUPTIONS:
            failures.append(f"{self.interruptions} interruption(s) (none allowed)")
        return failures

    @property
    def ok(self) -> bool:
        """Whether every KPI threshold is met."""
        return not self.kpi_failures()

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: every field, plus ``kpi_failures``."""
        data = asdict(self)
        data["kpi_failures"] = self.kpi_failures()
        return data


# ---------------------------------------------------------------------------- counting


class EventTally:
    """What a session's security events and KPI counters put into a :class:`ShiftReport`.

    Shared by :class:`ShiftSimulator` and the Qt shift simulator
    (:mod:`kiosk.testing.qtshift`), so both count events, locks, logins per nurse and session
    durations the same way.

    Args:
        report: the report to fill in.
    """

    def __init__(self, report: ShiftReport) -> None:
        self.report = report
        self.session_starts: dict[str, float] = {}

    def observe(self, event: SecurityEvent, user: str) -> None:
        """Count ``event`` (``user``: the nurse signed in when the event names nobody)."""
        report = self.report
        kind = event.kind
        report.events[kind.value] = report.events.get(kind.value, 0) + 1
        if kind is EventKind.LOCKED:
            report.locks += 1
        elif kind is EventKind.UNLOCKED:
            report.unlocks += 1
        elif kind is EventKind.LOGIN_SUCCEEDED:
            who = event.user or user
            report.logins_by_user[who] = report.logins_by_user.get(who, 0) + 1
            if not event.data.get("reauthentication") and not event.data.get("renewed"):
                self.session_starts[who] = event.time
        elif kind in (EventKind.LOGGED_OUT, EventKind.SHIFT_CAP_REACHED):
            started = self.session_starts.pop(event.user or user, None)
            if started is not None:
                duration = event.time - started
                report.session_duration_s = max(report.session_duration_s, duration)

    def take_metrics(self, metrics: Mapping[str, Any], now: float) -> None:
        """Copy the manager's KPI counters; sessions still open at ``now`` count up to it."""
        report = self.report
        report.refresh_attempts = int(metrics["refresh_attempts"])
        report.refresh_failures = int(metrics["refresh_failures"])
        report.refresh_success_rate = metrics["refresh_success_rate"]
        report.refresh_latency_p50_ms = metrics["refresh_latency_p50_ms"]
        report.refresh_latency_p95_ms = metrics["refresh_latency_p95_ms"]
        report.logins = int(metrics["logins"])
        report.user_visible_401 = int(metrics["user_visible_401"])
        report.gate_timeouts = int(metrics["gate_timeouts"])
        for started in self.session_starts.values():
            report.session_duration_s = max(report.session_duration_s, now - started)


# ---------------------------------------------------------------------------- backends


class _Backend(Protocol):
    """What the simulator needs from a server: a transport, counters, control."""

    settings: ServerSettings
    credentials: Mapping[str, str]
    can_restart: bool

    def transport(self) -> httpx.AsyncBaseTransport: ...

    async def stats(self) -> dict[str, int] | None: ...

    async def stop(self) -> None: ...

    async def start(self) -> None: ...

    async def observation_counts(
        self, prefix: str, api: httpx.AsyncClient, patients: Sequence[int]
    ) -> dict[str, int] | None: ...


class _InProcessBackend:
    can_restart = True

    def __init__(self, server: Any) -> None:
        self.server = server
        self.settings = ServerSettings(base_url=server.base_url)
        self.credentials: Mapping[str, str] = server.users

    def transport(self) -> httpx.AsyncBaseTransport:
        transport: httpx.AsyncBaseTransport = self.server.transport()
        return transport

    async def stats(self) -> dict[str, int] | None:
        result: dict[str, int] = self.server.stats()
        return result

    async def stop(self) -> None:
        self.server.stop()

    async def start(self) -> None:
        self.server.start()

    async def observation_counts(
        self, prefix: str, api: httpx.AsyncClient, patients: Sequence[int]
    ) -> dict[str, int] | None:
        counts: dict[str, int] = self.server.observation_counts(prefix)
        return counts


class _HttpBackend:
    """A server over TCP: a gunicorn ReferenceServer (which can restart) or any live server."""

    def __init__(
        self,
        settings: ServerSettings,
        credentials: Mapping[str, str],
        *,
        control: Any = None,
    ) -> None:
        self.settings = settings
        self.credentials = credentials
        self.control = control
        self.can_restart = control is not None and hasattr(control, "stop")

    def transport(self) -> httpx.AsyncBaseTransport:
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=20)
        verify: Any = True
        if self.settings.ca_bundle:
            import ssl

            verify = ssl.create_default_context(cafile=self.settings.ca_bundle)
        return httpx.AsyncHTTPTransport(limits=limits, verify=verify)

    async def stats(self) -> dict[str, int] | None:
        try:
            async with httpx.AsyncClient(base_url=self.settings.base_url, timeout=5) as client:
                response = await client.get("/_test/stats/")
            data = response.json()
        except (httpx.HTTPError, ValueError):
            return None
        if response.status_code != 200 or not isinstance(data, dict) or "refresh" not in data:
            return None
        return {str(k): int(v) for k, v in data.items() if isinstance(v, int)}

    async def stop(self) -> None:
        await asyncio.to_thread(self.control.stop)

    async def start(self) -> None:
        await asyncio.to_thread(self.control.start)

    async def observation_counts(
        self, prefix: str, api: httpx.AsyncClient, patients: Sequence[int]
    ) -> dict[str, int] | None:
        counts: dict[str, int] = {}
        for pk in patients:
            try:
                response = await api.get(f"/api/patients/{pk}/observations/")
            except (httpx.HTTPError, KioskError):
                return None
            if response.status_code != 200:
                return None
            for row in response.json():
                note = str(row.get("note", ""))
                if note.startswith(prefix):
                    counts[note] = counts.get(note, 0) + 1
        return counts


# ---------------------------------------------------------------------------- the simulation


@dataclass
class _Work:
    """One piece of API work a window wants done."""

    method: str
    path: str
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    note: str | None = None
    attempts: int = 0


@dataclass
class _Window:
    index: int
    outbox: deque[_Work] = field(default_factory=deque)
    new_work: asyncio.Event = field(default_factory=asyncio.Event)
    rng: random.Random = field(default_factory=random.Random)


class ShiftSimulator:
    """Plays :class:`ShiftPlan` shifts against a real simplejwt server and reports KPIs.

    Build one with :meth:`in_process` (virtual time), :meth:`against` (a ReferenceServer,
    real time) or :meth:`remote` (any server, real time); then ``report = await sim.run(plan)``
    (or ``sim.run_sync(plan)`` outside an event loop).
    """

    def __init__(self, backend: _Backend, clock: Clock) -> None:
        self._backend = backend
        self._clock = clock

    # ------------------------------------------------------------------ constructors

    @classmethod
    def in_process(
        cls, server: Any = None, *, clock: LinkedClock | None = None, **server_config: Any
    ) -> ShiftSimulator:
        """A simulator on virtual time against the in-process reference server.

        Args:
            server: an :class:`~kiosk.testing.inprocess.InProcessServer` (the shared one,
                configured with ``server_config``, by default).
            clock: the linked clock to run on (a new one per run by default).
            server_config: ``access_s``, ``refresh_s``, ``rotate``... for the shared server.
        """
        if server is None:
            from kiosk.testing.inprocess import shared_server

            server = shared_server(**server_config)
        return cls(_InProcessBackend(server), clock or LinkedClock())

    @classmethod
    def against(cls, server: Any, *, clock: Clock | None = None) -> ShiftSimulator:
        """A real-time simulator against a :class:`ReferenceServer` (gunicorn) it may restart."""
        settings = ServerSettings(base_url=server.base_url)
        return cls(_HttpBackend(settings, server.users, control=server), clock or SystemClock())

    @classmethod
    def remote(
        cls, settings: ServerSettings, credentials: Mapping[str, str], *, clock: Clock | None = None
    ) -> ShiftSimulator:
        """A real-time simulator against any live server (no restarts)."""
        return cls(_HttpBackend(settings, credentials), clock or SystemClock())

    @property
    def clock(self) -> Clock:
        """The clock the simulation runs on."""
        return self._clock

    @property
    def virtual(self) -> bool:
        """Whether the shift runs on virtual time."""
        return isinstance(self._clock, LinkedClock)

    # ------------------------------------------------------------------ running

    def run_sync(self, plan: ShiftPlan | None = None, **plan_fields: Any) -> ShiftReport:
        """:meth:`run` in a new event loop."""
        return asyncio.run(self.run(plan, **plan_fields))

    async def run(self, plan: ShiftPlan | None = None, **plan_fields: Any) -> ShiftReport:
        """Play one shift and return its report.

        Args:
            plan: the shift; or give :class:`ShiftPlan` fields as keyword arguments.

        Raises:
            ValueError: the plan asks for something this simulator cannot do (a restart of a
                server it does not control, clock skew in real time, an unknown user).
            KioskError: the first login failed.
        """
        plan = plan or ShiftPlan(**plan_fields)
        faults = plan.fault_plan
        plan.check(self._backend.credentials, can_restart=self._backend.can_restart)
        wall = time.perf_counter()
        clock = self._clock
        if isinstance(clock, LinkedClock):
            was_linked = clock.linked
            clock.link()
            clock.add_skew(faults.skew_s)
            try:
                run = _Run(self._backend, clock, plan, faults)
                report = await clock.run(run.play())
            finally:
                clock.add_skew(-faults.skew_s)
                if not was_linked:
                    clock.unlink()
        else:
            if faults.skew_s:
                raise ValueError("clock skew can only be simulated in virtual time")
            report = await _Run(self._backend, clock, plan, faults).play()
        report.wall_s = time.perf_counter() - wall
        return report


class _Run:
    """One shift being played (all its state)."""

    def __init__(self, backend: _Backend, clock: Clock, plan: ShiftPlan, faults: FaultPlan) -> None:
        self.backend = backend
        self.clock = clock
        self.plan = plan
        self.faults = faults
        self.policy = plan.policy
        self.rng = random.Random(plan.seed)
        # Unique per run (not per seed): notes and Idempotency-Keys must not collide with an
        # earlier run's rows in the same database.
        self.run_id = uuid.uuid4().hex[:12]
        self.t0 = clock.monotonic()
        self.report = ShiftReport(windows=plan.windows, duration_s=plan.duration_s)
        self.windows = [
            _Window(i, rng=random.Random(plan.seed * 1000 + i)) for i in range(plan.windows)
        ]
        self.user = plan.user
        self.ready = asyncio.Event()
        self.last_activity = 0.0
        self.expected_end = False
        self.finished = False
        self.patients: list[int] = []
        self.sent_notes: set[str] = set()
        self.acknowledged: set[str] = set()
        self.tally = EventTally(self.report)
        self.tasks: list[asyncio.Task[Any]] = []
        self.relogin: asyncio.Task[None] | None = None
        self.counter = itertools.count(1)
        self.tm: TokenManager | None = None

    # ------------------------------------------------------------------ helpers

    def now(self) -> float:
        """Seconds since the start of the shift."""
        return self.clock.monotonic() - self.t0

    async def sleep_until(self, t: float) -> None:
        delay = t - self.now()
        if delay > 0:
            await self.clock.sleep(delay)

    def planned_end(self, user: str) -> float:
        """When ``user``'s part of the shift ends (the next handover, or the shift's end)."""
        now = self.now()
        # A handover due this very instant still counts: the shift cap and the badge-in of the
        # next nurse may land on the same virtual instant, in either order.
        later = [
            h.at_s
            for h in self.plan.timeline
            if isinstance(h, Handover) and h.at_s >= now - _END_TOLERANCE_S
        ]
        return min(later, default=self.plan.duration_s)

    def injector(self, inner: httpx.AsyncBaseTransport, seed: int) -> FaultInjector:
        injector = FaultInjector(
            inner, clock=self.clock, origin=self.t0, rng=random.Random(self.plan.seed + seed)
        )
        self.faults.apply(injector)
        return injector

    def spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self.tasks.append(task)
        return task

    # ------------------------------------------------------------------ the play

    async def play(self) -> ShiftReport:
        plan, report = self.plan, self.report
        token_faults = self.injector(self.backend.transport(), 1)
        api_faults = self.injector(self.backend.transport(), 2)
        stats_before = await self.backend.stats()
        tm = TokenManager(
            self.backend.settings,
            policy=self.policy,
            clock=self.clock,
            vault=MemoryVault(),
            transport=token_faults,
            rng=random.Random(plan.seed + 3),
        )
        self.tm = tm
        tm.subscribe(self.on_event)
        timeout = httpx.Timeout(self.backend.settings.timeout_s)
        async with (
            tm,
            httpx.AsyncClient(
                base_url=self.backend.settings.base_url,
                auth=tm.auth,
                transport=api_faults,
                timeout=timeout,
            ) as api,
        ):
            await tm.login(self.user, self.backend.credentials[self.user])
            self.ready.set()
            self.last_activity = self.now()
            self.patients = await self.discover_patients(api)
            for window in self.windows:
                self.spawn(self.generate(window))
                self.spawn(self.send(window, api))
            self.spawn(self.idle_lock())
            self.spawn(self.follow_timeline())
            for fault in self.faults.restarts:
                self.spawn(self.restart(fault.start_s, fault.end_s))
            await self.sleep_until(plan.duration_s)
            self.finished = True
            # The windows may still deliver what is queued, for a little while.
            drain_until = plan.duration_s + plan.drain_s
            while any(w.outbox for w in self.windows) and self.now() < drain_until:
                await self.clock.sleep(min(1.0, drain_until - self.now()))
            for task in self.tasks:
                task.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)
            if self.relogin is not None:
                self.relogin.cancel()
                await asyncio.gather(self.relogin, return_exceptions=True)
            report.note_lost("unsent_at_end", sum(len(w.outbox) for w in self.windows))
            await self.count_writes(api)
            self.expected_end = True
            with contextlib.suppress(KioskError, httpx.HTTPError):
                await tm.logout()
        self.collect(tm, token_faults, stats_before, await self.backend.stats())
        return report

    async def discover_patients(self, api: httpx.AsyncClient) -> list[int]:
        """The ward API's patient ids, or none (then only ``/api/me/`` is used)."""
        try:
            response = await api.get("/api/patients/")
            rows = response.json() if response.status_code == 200 else []
        except (httpx.HTTPError, KioskError, ValueError):
            return []
        if not isinstance(rows, list):
            return []
        return [int(r["id"]) for r in rows if isinstance(r, dict) and isinstance(r.get("id"), int)]

    # ------------------------------------------------------------------ user activity

    def make_work(self, window: _Window) -> _Work:
        pick = window.rng.random()
        plan = self.plan
        if self.patients and pick < plan.post_fraction:
            n = next(self.counter)
            note = f"sim {self.run_id} {window.index}-{n}"
            patient = window.rng.choice(self.patients)
            headers = {}
            if plan.idempotency_keys:
                headers["Idempotency-Key"] = f"sim-{self.run_id}-{window.index}-{n}"
            self.sent_notes.add(note)
            return _Work(
                "POST",
                f"/api/patients/{patient}/observations/",
                {"kind": "pulse", "value": str(60 + n % 40), "note": note},
                headers,
                note,
            )
        if self.patients and pick < plan.post_fraction + plan.list_fraction:
            return _Work("GET", "/api/patients/")
        return _Work("GET", "/api/me/")

    async def generate(self, window: _Window) -> None:
        """The nurse's activity in one window: Poisson arrivals at the timeline's rate."""
        while True:
            now = self.now()
            if now >= self.plan.duration_s:
                return
            rate, until = self.plan.rate_at(now)
            if rate <= 0:
                await self.sleep_until(until)
                continue
            gap = window.rng.expovariate(rate)
            if now + gap >= until:
                # Memoryless: start afresh at the boundary with the next segment's rate.
                await self.sleep_until(until)
                continue
            await self.clock.sleep(gap)
            await self.user_present()
            self.report.requests += 1
            window.outbox.append(self.make_work(window))
            window.new_work.set()

    async def user_present(self) -> None:
        """The nurse touches the kiosk: activity resets the idle timer; a locked screen unlocks."""
        self.last_activity = self.now()
        tm = self.tm
        assert tm is not None
        if tm.locked:
            with contextlib.suppress(KioskError):
                await tm.unlock(self.user, self.backend.credentials[self.user])

    async def idle_lock(self) -> None:
        """Lock the workstation after the profile's idle time without activity."""
        tm = self.tm
        assert tm is not None
        idle = self.policy.idle_lock_s
        while True:
            due = self.last_activity + idle
            if self.now() < due:
                await self.sleep_until(due)
                continue
            if not tm.locked and self.ready.is_set():
                tm.lock()
            # Wait for the next activity.
            seen = self.last_activity
            while self.last_activity == seen:
                await self.clock.sleep(min(idle, 15.0))

    async def follow_timeline(self) -> None:
        """Breaks end with the nurse unlocking; handovers are tap-overs."""
        events: list[tuple[float, Activity]] = []
        for item in self.plan.timeline:
            if isinstance(item, Break):
                events.append((item.at_s + item.duration_s, item))
            elif isinstance(item, Handover):
                events.append((item.at_s, item))
        for at, item in sorted(events, key=lambda e: e[0]):
            await self.sleep_until(at)
            if isinstance(item, Break):
                await self.user_present()
            elif isinstance(item, Handover):
                await self.handover(item.to_user)

    async def handover(self, to_user: str) -> None:
        tm = self.tm
        assert tm is not None
        previous = self.user
        self.ready.clear()
        if self.relogin is not None and not self.relogin.done():
            self.relogin.cancel()  # the previous nurse is not coming back to type her password
        # What the previous nurse had not sent is hers: nothing of her session remains.
        for window in self.windows:
            self.report.note_lost("handover", len(window.outbox))
            window.outbox.clear()
        self.expected_end = True
        self.user = to_user
        password = self.backend.credentials[to_user]
        try:
            if tm.locked:
                await tm.unlock(to_user, password)
            else:
                await tm.login(to_user, password)
        except KioskError:
            self.user = previous
            raise
        finally:
            self.expected_end = False
        self.last_activity = self.now()
        self.ready.set()

    # ------------------------------------------------------------------ delivery

    async def send(self, window: _Window, api: httpx.AsyncClient) -> None:
        """Deliver the window's outbox in order; failed work stays queued and is retried."""
        failures = 0
        while True:
            while not window.outbox:
                window.new_work.clear()
                await window.new_work.wait()
            await self.ready.wait()
            work = window.outbox[0]
            retry_after = await self.deliver(work, api)
            if retry_after is None:
                if window.outbox and window.outbox[0] is work:
                    window.outbox.popleft()
                failures = 0
                continue
            failures += 1
            backoff = min(30.0, 2.0 ** min(failures - 1, 6))
            await self.clock.sleep(max(retry_after, window.rng.uniform(backoff / 2, backoff)))

    async def deliver(self, work: _Work, api: httpx.AsyncClient) -> float | None:
        """Send ``work`` once: None when done, else the seconds to wait before retrying."""
        report = self.report
        work.attempts += 1
        try:
            response = await api.request(
                work.method, work.path, json=work.body, headers=work.headers
            )
        except (
            NeedsReauthenticationError,  # the nurse is being asked for her password
            SessionEndedError,
            NotLoggedInError,
            GateTimeoutError,
        ) as exc:
            report.note_failure(type(exc).__name__)
            return 1.0  # the work waits in the outbox
        except (httpx.TransportError, KioskError) as exc:
            report.note_failure(type(exc).__name__)
            return 0.0
        status = response.status_code
        if status < 300:
            if work.attempts > 1:
                report.requests_recovered += 1
            if work.note is not None:
                self.acknowledged.add(work.note)
            return None
        report.note_failure(f"http_{status}")
        if status == 429 or status >= 500 or status in (401, 403):
            from kiosk.core.backoff import parse_retry_after

            retry_after = parse_retry_after(response.headers.get("retry-after"), self.clock.time())
            return retry_after or 0.0
        # Refused for good (400, 404, 409...): the work cannot be done.
        report.note_lost(f"refused_{status}")
        return None

    async def count_writes(self, api: httpx.AsyncClient) -> None:
        """Compare the observations the server holds with the ones the windows wrote."""
        if not self.sent_notes:
            return
        prefix = f"sim {self.run_id} "
        counts = await self.backend.observation_counts(prefix, api, self.patients)
        if counts is None:
            return
        self.report.duplicate_writes = sum(n - 1 for n in counts.values() if n > 1)
        missing = {note for note in self.acknowledged if counts.get(note, 0) == 0}
        self.report.note_lost("acknowledged_but_missing", len(missing))

    # ------------------------------------------------------------------ faults

    async def restart(self, start_s: float, end_s: float) -> None:
        await self.sleep_until(start_s)
        await self.backend.stop()
        try:
            await self.sleep_until(end_s)
        finally:
            await self.backend.start()

    # ------------------------------------------------------------------ the session

    def on_event(self, event: SecurityEvent) -> None:
        self.tally.observe(event, self.user)
        kind = event.kind
        if kind in (EventKind.LOGGED_OUT, EventKind.SHIFT_CAP_REACHED):
            self.session_ended(event)
        elif kind is EventKind.STATE_CHANGED and event.data.get("to") == "needs_reauth":
            self.report.interruptions += 1
            self.ready.clear()
            self.ask_password(self.plan.reauth_delay_s)

    def session_ended(self, event: SecurityEvent) -> None:
        user = event.user or self.user
        if self.expected_end or self.finished:
            return
        if self.now() >= self.planned_end(user) - _END_TOLERANCE_S:
            self.ready.clear()  # her part of the shift is over; the next nurse badges in
            return
        self.report.forced_logouts += 1
        self.report.interruptions += 1
        self.ready.clear()
        self.ask_password(self.plan.reauth_delay_s)

    def ask_password(self, delay: float) -> None:
        """The nurse is prompted for her password and types it after ``delay`` seconds."""
        if self.relogin is not None and not self.relogin.done():
            return
        self.relogin = asyncio.ensure_future(self.log_in_again(delay))

    async def log_in_again(self, delay: float) -> None:
        tm = self.tm
        assert tm is not None
        attempt = 0
        while not self.finished:
            await self.clock.sleep(delay if attempt == 0 else min(60.0, 5.0 * attempt))
            attempt += 1
            try:
                await tm.login(self.user, self.backend.credentials[self.user])
            except KioskError:
                continue
            self.last_activity = self.now()
            self.ready.set()
            return

    # ------------------------------------------------------------------ the figures

    def collect(
        self,
        tm: TokenManager,
        token_faults: FaultInjector,
        before: dict[str, int] | None,
        after: dict[str, int] | None,
    ) -> None:
        report = self.report
        metrics = tm.metrics()
        refresh_path = self.backend.settings.refresh_path
        report.refreshes = token_faults.reached_server(refresh_path)
        self.tally.take_metrics(metrics, self.clock.time())
        if before is not None and after is not None:
            report.server_refreshes = after.get("refresh", 0) - before.get("refresh", 0)


# ---------------------------------------------------------------------------- entry points


def virtual_shift(
    hours: float = 12.0,
    *,
    profile: str = "general-ward",
    windows: int = 5,
    faults: str | FaultPlan | None = None,
    access_s: float | None = None,
    refresh_s: float | None = None,
    **plan_fields: Any,
) -> ShiftReport:
    """Run a shift on virtual time against the in-process reference server (blocking).

    The server's token lifetimes follow the profile (:data:`PROFILE_LIFETIMES`) unless given.
    """
    default_access, default_refresh = PROFILE_LIFETIMES.get(profile, (900.0, 43200.0))
    simulator = ShiftSimulator.in_process(
        access_s=access_s or default_access, refresh_s=refresh_s or default_refresh
    )
    plan = ShiftPlan(
        duration_s=hours * 3600, profile=profile, windows=windows, faults=faults, **plan_fields
    )
    return simulator.run_sync(plan)


def measure_shift_12h() -> float:
    """Wall seconds of a 12 h general-ward shift: 5 windows, one request a minute each.

    About 3,600 requests and ~55 refreshes through the real Django + simplejwt code, in
    virtual time (the figure ``bench/run.py`` reports as ``shift_12h_wall_s``).
    """
    report = virtual_shift(12.0, profile="general-ward", windows=5)
    return report.wall_s


def expected_refreshes(duration_s: float, access_s: float, policy: SessionPolicy) -> float:
    """About how many proactive refreshes ``duration_s`` takes against simplejwt.

    Roughly ``duration / (lifetime - lead)``, where the lead is the policy's fraction of the
    lifetime (at least its minimum) plus half the jitter on average. Three details of the real
    wire matter for the short lifetimes of a compressed real-time shift (and change a 12 h
    shift's figure by less than one):

    * simplejwt writes ``exp`` in whole seconds (DESIGN §4), so a token lives half a second
      less than its lifetime on average;
    * the lead is at most half the lifetime (:func:`kiosk.core.session.refresh_due_at`);
    * a request sent within ``ACCESS_EXPIRY_MARGIN_S`` of ``exp`` refreshes first, so with
      windows busy enough for one to fall in that second the lead is at least the margin.

    Measured here: 54 for a 12 h general-ward shift (15 min tokens, the CareLink guide counts
    ~55), 109 for an 8 h ICU shift (5 min), within one refresh of this figure for 3 s tokens
    over 16-30 s of real time.

    Raises:
        ValueError: the lead leaves under half a second of each token (the client would
            refresh about as soon as each token arrives).
    """

    def lead(lifetime: float) -> float:
        base = max(policy.refresh_lead_min_s, policy.refresh_lead_fraction * lifetime)
        base = min(base + policy.refresh_jitter_fraction * lifetime / 2, lifetime / 2)
        return max(base, ACCESS_EXPIRY_MARGIN_S)

    seen = access_s - 0.5
    interval = seen - lead(seen)
    if interval < 0.5:
        raise ValueError(f"a {access_s:g} s token leaves {interval:.2f} s between refreshes")
    first = seen - lead(access_s)
    if duration_s < first:
        return 0.0
    # floor((duration - first) / interval) + 1 refreshes, averaged over the unknown phase.
    return (duration_s - first) / interval + 0.5


ProgressCallback = Callable[[ShiftReport], None]

__all__ = [
    "KPI_MAX_INTERRUPTIONS",
    "KPI_MAX_LOGINS_PER_NURSE",
    "KPI_MAX_SESSION_S",
    "KPI_MIN_REFRESH_SUCCESS",
    "PROFILES",
    "PROFILE_LIFETIMES",
    "Activity",
    "Break",
    "Burst",
    "EventTally",
    "Handover",
    "Quiet",
    "ShiftPlan",
    "ShiftReport",
    "ShiftSimulator",
    "expected_refreshes",
    "measure_shift_12h",
    "virtual_shift",
]
