"""Shared helpers for the unit tests of ``kiosk.core``: JWT factories and a fake clock.

Test modules next to this file import it by name (``from kiosk_test_helpers import
make_jwt``): pytest's default "prepend" import mode puts this directory on ``sys.path``
because it has no ``__init__.py``. The helpers are plain functions, so Hypothesis tests
can use them without function-scoped fixtures.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import heapq
import hmac
import itertools
import json
from collections.abc import Mapping
from typing import Any

import jwt

#: The HMAC secret the tests sign with.
SECRET = "unit-test-secret-that-is-long-enough-for-hs256"
#: A fixed "now" for claims (2023-11-14T22:13:20Z).
NOW = 1_700_000_000


def make_jwt(
    claims: Mapping[str, Any] | None = None,
    key: str = SECRET,
    *,
    algorithm: str = "HS256",
    headers: dict[str, Any] | None = None,
    **overrides: Any,
) -> str:
    """A signed JWT. Without ``claims``, a simplejwt-5.5-like access token.

    ``overrides`` update the claims; an override of ``None`` removes that claim.
    """
    payload: dict[str, Any] = (
        dict(claims)
        if claims is not None
        else {
            "token_type": "access",
            "exp": NOW + 300,
            "iat": NOW,
            "jti": "jti-access-1",
            "user_id": "1",
        }
    )
    for name, value in overrides.items():
        if value is None:
            payload.pop(name, None)
        else:
            payload[name] = value
    return jwt.encode(payload, key, algorithm=algorithm, headers=headers)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def raw_jwt(
    header: Any,
    payload: Any,
    signature: bytes = b"not-a-signature",
    *,
    key: str | None = None,
) -> str:
    """A compact JWT built by hand: any JSON header/payload (or raw bytes).

    With ``key`` the signature is a real HMAC-SHA256 of the first two segments, whatever
    the header says; otherwise it is ``signature``.
    """

    def segment(part: Any) -> str:
        raw = part if isinstance(part, bytes) else json.dumps(part).encode()
        return b64(raw)

    signing_input = f"{segment(header)}.{segment(payload)}"
    if key is not None:
        signature = hmac.new(key.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


class FakeClock:
    """A virtual :class:`kiosk.core.clock.Clock`: time moves only through :meth:`advance`.

    ``sleep`` parks the caller until the clock has been advanced past its due time.
    """

    def __init__(self, start: float = float(NOW), monotonic_start: float = 1000.0) -> None:
        self.now = start
        self.mono = monotonic_start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.mono

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.mono + max(0.0, seconds), next(self._seq), future))
        await future

    @property
    def sleepers(self) -> int:
        """How many sleeps are parked (cancelled ones excluded)."""
        return sum(1 for _, _, future in self._sleepers if not future.done())

    def advance(self, seconds: float) -> None:
        """Move both clocks forward and wake every sleeper that is now due."""
        self.now += seconds
        self.mono += seconds
        while self._sleepers and self._sleepers[0][0] <= self.mono:
            _, _, future = heapq.heappop(self._sleepers)
            if not future.done():
                future.set_result(None)

    def jump(self, seconds: float) -> None:
        """Move only the wall clock (a suspend/resume or an NTP step)."""
        self.now += seconds


async def settle(rounds: int = 5) -> None:
    """Let the event loop run every ready callback a few times."""
    for _ in range(rounds):
        await asyncio.sleep(0)
