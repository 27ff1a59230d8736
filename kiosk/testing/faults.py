"""A fault-injecting httpx transport: the ward's flaky Wi-Fi and busy servers, on demand.

:class:`FaultInjector` wraps a real transport and, for requests whose path matches a rule,
answers with a scripted fault instead of (or after) forwarding them:

* ``status(503)`` / ``status(429, retry_after=2)`` - a synthetic HTTP error answer;
* ``connect_error()`` - the request never left (``httpx.ConnectError``);
* ``read_timeout()`` - the request *reached the server* and was processed, but the
  answer was lost (``httpx.ReadTimeout``): the "outcome unknown" case of DESIGN §3;
* ``latency(seconds)`` - the answer arrives late;
* ``corrupt_token()`` - the bearer token is damaged on the way, so the *real* server
  answers 401 ``token_not_valid`` (the reactive-refresh path, as after a server-side
  key rotation or an access token that expired while the laptop slept);
* ``outage()`` - every request fails to connect until ``restore()``;
* ``connect_timeout()`` - a timeout *before* the request was sent (``httpx.ConnectTimeout``).

Rules are consumed in order, each for ``times`` requests. Every injected fault is
recorded in :attr:`FaultInjector.log`, so tests assert on what really happened.

**Time windows.** With a ``clock`` (the client's, virtual or real), :meth:`FaultInjector.window`
schedules a fault for every matching request between two instants of that clock (seconds after
the injector's ``origin``): a five-minute Wi-Fi drop at hour 3, a 30 s 5xx burst at hour 5,
flaky roaming (``probability``). Latency then waits on that clock too, so it costs no wall time
in a virtual shift.

:attr:`FaultInjector.reached` counts, per path, the requests that reached the real server (the
inner transport did not refuse the connection): what the server's own counters see.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
from collections import Counter
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Literal

import httpx

from kiosk.core.clock import Clock

FaultKind = Literal[
    "status", "connect_error", "connect_timeout", "read_timeout", "latency", "corrupt_token"
]


@dataclass
class Fault:
    """One scripted fault.

    Attributes:
        kind: what happens to a matching request.
        path: substring of the URL path the fault applies to ("" matches all).
        times: how many matching requests it affects.
        status: the HTTP status of a ``status`` fault.
        retry_after: the ``Retry-After`` header of a ``status`` fault, if any.
        seconds: the delay of a ``latency`` fault.
    """

    kind: FaultKind
    path: str = ""
    times: int = 1
    status: int = 503
    retry_after: str | None = None
    seconds: float = 0.0
    used: int = field(default=0, init=False)


@dataclass(frozen=True)
class TimedFault:
    """A fault for every matching request between two instants of the injector's clock.

    Attributes:
        kind: what happens to a matching request.
        start_s: when it starts, in seconds after the injector's origin.
        end_s: when it ends (exclusive).
        path: substring of the URL path it applies to ("" matches all).
        status: the HTTP status of a ``status`` fault.
        retry_after: the ``Retry-After`` header of a ``status`` fault, if any.
        seconds: the delay of a ``latency`` fault.
        probability: the share of matching requests affected (flaky Wi-Fi: below 1).
    """

    kind: FaultKind
    start_s: float
    end_s: float
    path: str = ""
    status: int = 503
    retry_after: str | None = None
    seconds: float = 0.0
    probability: float = 1.0

    def active(self, elapsed: float, path: str) -> bool:
        """Whether the fault covers a request to ``path`` at ``elapsed`` seconds."""
        return self.start_s <= elapsed < self.end_s and self.path in path


@dataclass(frozen=True)
class InjectedFault:
    """A record of one fault that was injected."""

    kind: FaultKind
    method: str
    path: str
    loop_time: float
    status: int | None = None


def _retry_after_header(value: float | str | None) -> str | None:
    """The ``Retry-After`` header for ``value``: a number becomes whole delta-seconds.

    RFC 9110 delta-seconds are digits only: ``str(2.0)`` (``"2.0"``) or ``"2.5"`` is not one,
    and a client that follows the RFC (the core's ``parse_retry_after``) ignores it. Rounded up,
    so the client waits at least as long as asked. A string is sent as it is (an HTTP date, or
    a deliberately malformed header).
    """
    if value is None or isinstance(value, str):
        return value
    return str(max(0, math.ceil(value)))


class FaultInjector(httpx.AsyncBaseTransport):
    """An ``httpx.AsyncBaseTransport`` that injects scripted faults in front of a real one.

    Args:
        inner: the transport that really talks to the server (a fresh
            ``httpx.AsyncHTTPTransport`` by default).
        clock: the clock time windows and latency run on (the event loop's time, and
            ``asyncio.sleep``, without one).
        origin: the clock's monotonic time that windows count from (now by default).
        rng: the random source of ``probability`` windows.
    """

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport | None = None,
        *,
        clock: Clock | None = None,
        origin: float | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._inner = inner or httpx.AsyncHTTPTransport()
        self._rules: list[Fault] = []
        self._windows: list[TimedFault] = []
        self._outage = False
        self._clock = clock
        self._origin = origin if origin is not None or clock is None else clock.monotonic()
        self._rng = rng or random.Random(0)
        self.log: list[InjectedFault] = []
        self.forwarded = 0
        self.reached: Counter[str] = Counter()

    # -- scripting --------------------------------------------------------------------------

    def add(self, fault: Fault) -> Fault:
        """Queue ``fault`` after the rules already queued."""
        self._rules.append(fault)
        return fault

    def status(
        self, status: int, *, path: str = "", times: int = 1, retry_after: float | str | None = None
    ) -> Fault:
        """Answer the next ``times`` matching requests with ``status`` (and ``Retry-After``).

        A number of seconds for ``retry_after`` is sent as whole delta-seconds (rounded up).
        """
        header = _retry_after_header(retry_after)
        return self.add(Fault("status", path, times, status=status, retry_after=header))

    def connect_error(self, *, path: str = "", times: int = 1) -> Fault:
        """Fail the next ``times`` matching requests before they are sent."""
        return self.add(Fault("connect_error", path, times))

    def read_timeout(self, *, path: str = "", times: int = 1) -> Fault:
        """Forward the next ``times`` matching requests, then lose their answers."""
        return self.add(Fault("read_timeout", path, times))

    def connect_timeout(self, *, path: str = "", times: int = 1) -> Fault:
        """Time out the next ``times`` matching requests before they are sent."""
        return self.add(Fault("connect_timeout", path, times))

    def latency(self, seconds: float, *, path: str = "", times: int = 1) -> Fault:
        """Delay the answers of the next ``times`` matching requests by ``seconds``."""
        return self.add(Fault("latency", path, times, seconds=seconds))

    def corrupt_token(self, *, path: str = "", times: int = 1) -> Fault:
        """Damage the bearer token of the next ``times`` matching requests."""
        return self.add(Fault("corrupt_token", path, times))

    def window(
        self,
        kind: FaultKind,
        start_s: float,
        end_s: float,
        *,
        path: str = "",
        status: int = 503,
        retry_after: float | str | None = None,
        seconds: float = 0.0,
        probability: float = 1.0,
    ) -> TimedFault:
        """Inject ``kind`` into every matching request from ``start_s`` to ``end_s``.

        Times are seconds of the injector's clock after its origin.

        Raises:
            ValueError: no clock was given, or the window is empty or backwards.
        """
        if self._clock is None:
            raise ValueError("time windows need FaultInjector(clock=...)")
        if not end_s > start_s:
            raise ValueError(f"fault window ends ({end_s}) before it starts ({start_s})")
        header = _retry_after_header(retry_after)
        fault = TimedFault(
            kind, start_s, end_s, path, status, header, seconds, min(max(probability, 0.0), 1.0)
        )
        self._windows.append(fault)
        return fault

    @property
    def windows(self) -> list[TimedFault]:
        """The scheduled time windows."""
        return list(self._windows)

    def elapsed(self) -> float:
        """Seconds of the injector's clock since its origin (0 without a clock)."""
        if self._clock is None or self._origin is None:
            return 0.0
        return self._clock.monotonic() - self._origin

    def outage(self) -> None:
        """Fail every request to connect until :meth:`restore`."""
        self._outage = True

    def restore(self) -> None:
        """End an outage and drop every queued rule."""
        self._outage = False
        self._rules.clear()

    def injected(self, kind: FaultKind | None = None, *, path: str = "") -> list[InjectedFault]:
        """The faults injected so far, optionally only of ``kind`` and on ``path``."""
        return [f for f in self.log if (kind is None or f.kind == kind) and path in f.path]

    # -- transport --------------------------------------------------------------------------

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if self._outage:
            self._record("connect_error", request)
            raise httpx.ConnectError("injected outage", request=request)
        rule: Fault | TimedFault | None = self._take(path) or self._timed(path)
        if rule is None:
            return await self._forward(request)
        if rule.kind == "connect_error":
            self._record("connect_error", request)
            raise httpx.ConnectError("injected connect error", request=request)
        if rule.kind == "connect_timeout":
            self._record("connect_timeout", request)
            raise httpx.ConnectTimeout("injected: timed out before sending", request=request)
        if rule.kind == "status":
            self._record("status", request, rule.status)
            await request.aread()
            headers = {"content-type": "application/json", "date": formatdate(usegmt=True)}
            if rule.retry_after is not None:
                headers["retry-after"] = rule.retry_after
            body = json.dumps({"detail": f"injected {rule.status}"}).encode()
            return httpx.Response(rule.status, headers=headers, content=body, request=request)
        if rule.kind == "corrupt_token":
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            damaged = token[:-4] + ("BBBB" if token.endswith("AAAA") else "AAAA")
            request.headers["authorization"] = f"{scheme} {damaged}"
            self._record("corrupt_token", request)
        response = await self._forward(request)
        if rule.kind == "corrupt_token":
            return response
        if rule.kind == "read_timeout":
            await response.aread()
            await response.aclose()
            self._record("read_timeout", request)
            raise httpx.ReadTimeout(
                "injected: answer lost after the server processed it", request=request
            )
        self._record("latency", request)
        if self._clock is not None:
            await self._clock.sleep(rule.seconds)
        else:
            await asyncio.sleep(rule.seconds)
        return response

    async def _forward(self, request: httpx.Request) -> httpx.Response:
        self.forwarded += 1
        try:
            response = await self._inner.handle_async_request(request)
        except (httpx.ConnectError, httpx.ConnectTimeout):
            raise  # refused: the server never saw it
        except httpx.TransportError:
            self.reached[request.url.path] += 1  # sent; the answer went wrong
            raise
        self.reached[request.url.path] += 1
        return response

    def reached_server(self, path: str = "") -> int:
        """How many requests whose path contains ``path`` reached the real server."""
        return sum(n for p, n in self.reached.items() if path in p)

    def _timed(self, path: str) -> TimedFault | None:
        if not self._windows:
            return None
        elapsed = self.elapsed()
        for fault in self._windows:
            if fault.active(elapsed, path) and (
                fault.probability >= 1.0 or self._rng.random() < fault.probability
            ):
                return fault
        return None

    async def aclose(self) -> None:
        await self._inner.aclose()

    def _take(self, path: str) -> Fault | None:
        for rule in self._rules:
            if rule.used < rule.times and rule.path in path:
                rule.used += 1
                return rule
        return None

    def _record(self, kind: FaultKind, request: httpx.Request, status: int | None = None) -> None:
        loop_time = asyncio.get_running_loop().time()
        self.log.append(InjectedFault(kind, request.method, request.url.path, loop_time, status))
