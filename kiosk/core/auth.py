"""The ``httpx.Auth`` adapter: API requests authenticated through the TokenManager.

Like httpx's own auth classes it is one flow per request: take a token from the gate,
send, and on a 401 whose body ``code`` is ``token_not_valid`` replay *once* - with the
token that replaced the rejected one (refreshing if the rejected one was current). The
401's body is read before waiting, which returns its pooled connection: a waiter still
holding its connection can starve the very refresh it waits for (DESIGN §9).

A request that waited at the gate may come back with a *ticket* from the gate's hand-off:
the flow hands it back as soon as the answer (or a failure) arrives, which is how the
hand-off keeps only so many of the requests it let go unanswered at once (see
kiosk.core.manager).

Only the async flow exists: the manager's state lives on one asyncio loop; the Qt shell
reaches it through its bridge, not through a sync client.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Generator
from typing import TYPE_CHECKING

import httpx

from kiosk.core.claims import Token
from kiosk.core.errors import KioskError
from kiosk.core.events import EventKind, Severity

if TYPE_CHECKING:
    from kiosk.core.manager import TokenManager

#: 401/403 codes that no refresh can cure: the session needs re-authentication at once.
FINAL_CODES = frozenset({"password_changed", "user_inactive", "user_not_found"})

#: ``request.extensions`` key: how long this request may wait at the gate (seconds).
GATE_TIMEOUT_EXTENSION = "kiosk.gate_timeout"


def _rejection_code(response: httpx.Response) -> str | None:
    try:
        data = json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        return None
    code = data.get("code") if isinstance(data, dict) else None
    return code if isinstance(code, str) else None


class TokenAuth(httpx.Auth):
    """Adds ``Authorization: <type> <access>`` and handles a rejected access token."""

    def __init__(self, manager: TokenManager) -> None:
        self._manager = manager

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        raise KioskError("kiosk's TokenAuth works with httpx.AsyncClient only")
        yield request  # pragma: no cover - makes this a generator

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        manager = self._manager
        timeout = request.extensions.get(GATE_TIMEOUT_EXTENSION)
        token, ticket = await manager._token_for_request(timeout)
        manager._metrics.requests += 1
        replayed = False  # at most one replay per request: no refresh loops
        while True:
            self._authorize(request, token)
            if ticket is None:
                response = yield request
            else:
                try:
                    response = yield request
                except BaseException:  # the request failed (or was cancelled): no round trip
                    manager._request_answered(ticket, sample=False)
                    raise
                manager._request_answered(ticket)
            if response.status_code not in {401, 403}:
                return
            await response.aread()
            code = _rejection_code(response)
            if code in FINAL_CODES:
                raise manager.session_revoked(token, code)
            if code != "token_not_valid" or replayed:
                self._visible(response)
                return
            token, ticket = await manager._replacement_for_request(token, timeout)
            manager._metrics.requests_replayed += 1
            replayed = True

    def _authorize(self, request: httpx.Request, token: Token) -> None:
        header_type = self._manager.server.auth_header_type
        request.headers["Authorization"] = f"{header_type} {token.reveal()}"

    def _visible(self, response: httpx.Response) -> None:
        manager = self._manager
        if response.status_code == 401:
            manager._metrics.user_visible_401 += 1
        manager._emit(
            EventKind.REQUEST_REJECTED,
            Severity.MEDIUM,
            f"the server refused {response.request.method} {response.request.url.path} "
            f"(HTTP {response.status_code}, code {_rejection_code(response)})",
            data={"status": response.status_code, "code": _rejection_code(response)},
        )
