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
* ``outage()`` - every request fails to connect until ``restore()``.

Rules are consumed in order, each for ``times`` requests. Every injected fault is
recorded in :attr:`FaultInjector.log`, so tests assert on what really happened.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Literal

import httpx

FaultKind = Literal["status", "connect_error", "read_timeout", "latency", "corrupt_token"]


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
class InjectedFault:
    """A record of one fault that was injected."""

    kind: FaultKind
    method: str
    path: str
    loop_time: float
    status: int | None = None


class FaultInjector(httpx.AsyncBaseTransport):
    """An ``httpx.AsyncBaseTransport`` that injects scripted faults in front of a real one.

    Args:
        inner: the transport that really talks to the server (a fresh
            ``httpx.AsyncHTTPTransport`` by default).
    """

    def __init__(self, inner: httpx.AsyncBaseTransport | None = None) -> None:
        self._inner = inner or httpx.AsyncHTTPTransport()
        self._rules: list[Fault] = []
        self._outage = False
        self.log: list[InjectedFault] = []
        self.forwarded = 0

    # -- scripting --------------------------------------------------------------------------

    def add(self, fault: Fault) -> Fault:
        """Queue ``fault`` after the rules already queued."""
        self._rules.append(fault)
        return fault

    def status(
        self, status: int, *, path: str = "", times: int = 1, retry_after: float | str | None = None
    ) -> Fault:
        """Answer the next ``times`` matching requests with ``status`` (and ``Retry-After``)."""
        header = None if retry_after is None else str(retry_after)
        return self.add(Fault("status", path, times, status=status, retry_after=header))

    def connect_error(self, *, path: str = "", times: int = 1) -> Fault:
        """Fail the next ``times`` matching requests before they are sent."""
        return self.add(Fault("connect_error", path, times))

    def read_timeout(self, *, path: str = "", times: int = 1) -> Fault:
        """Forward the next ``times`` matching requests, then lose their answers."""
        return self.add(Fault("read_timeout", path, times))

    def latency(self, seconds: float, *, path: str = "", times: int = 1) -> Fault:
        """Delay the answers of the next ``times`` matching requests by ``seconds``."""
        return self.add(Fault("latency", path, times, seconds=seconds))

    def corrupt_token(self, *, path: str = "", times: int = 1) -> Fault:
        """Damage the bearer token of the next ``times`` matching requests."""
        return self.add(Fault("corrupt_token", path, times))

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
        rule = self._take(path)
        if rule is None:
            self.forwarded += 1
            return await self._inner.handle_async_request(request)
        if rule.kind == "connect_error":
            self._record("connect_error", request)
            raise httpx.ConnectError("injected connect error", request=request)
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
        self.forwarded += 1
        response = await self._inner.handle_async_request(request)
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
        await asyncio.sleep(rule.seconds)
        return response

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
