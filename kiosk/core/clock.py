"""Time, read only through an injected clock.

Everything in ``kiosk.core`` that needs the time or needs to wait asks a :class:`Clock`.
That lets a 12-hour shift run in virtual time (``kiosk.testing``) and keeps the rule
"nothing calls time.time() or asyncio.sleep() directly" checkable by grep.

It also owns the *server-corrected* time: simplejwt stamps ``exp``/``iat`` with the
server's clock, so a workstation whose clock runs four minutes fast would refresh too
early (or, running slow, too late) if it compared ``exp`` with its own time. The
:class:`ServerTimeOffset` estimates the offset from the ``Date`` header of each token
response (1 s resolution) and from the ``iat`` of a freshly obtained token.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import Awaitable
from typing import Protocol, TypeVar

T = TypeVar("T")


class Clock(Protocol):
    """The time source and sleeper the core uses."""

    def time(self) -> float:
        """Wall-clock seconds since the epoch (the workstation's own clock)."""
        ...

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin that never go backwards."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time."""
        ...


class SystemClock:
    """The real clock: ``time.time``, ``time.monotonic`` and ``asyncio.sleep``."""

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class DeadlineExceeded(Exception):
    """Raised by :func:`wait_with_deadline` when the clock's deadline passes first."""


async def wait_with_deadline(clock: Clock, awaitable: Awaitable[T], timeout: float | None) -> T:
    """Await ``awaitable`` for at most ``timeout`` seconds of ``clock`` time.

    ``asyncio.wait_for`` measures the loop's time, which a virtual clock does not move,
    so deadlines race the awaitable against ``clock.sleep``.

    Raises:
        DeadlineExceeded: the deadline passed first (the awaitable is cancelled).
    """
    if timeout is None:
        return await awaitable
    task = asyncio.ensure_future(awaitable)
    timer = asyncio.ensure_future(clock.sleep(timeout))
    try:
        done, _ = await asyncio.wait({task, timer}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        task.cancel()
        timer.cancel()
        raise
    if task in done:
        timer.cancel()
        return task.result()
    task.cancel()
    raise DeadlineExceeded(f"deadline of {timeout:.3f} s passed")


#: A ``Date`` sample from a round trip longer than this is too vague to update the offset.
MAX_SAMPLE_RTT_S = 2.0


class ServerTimeOffset:
    """Estimates ``server_time - local_time`` from the server's answers.

    The estimate is the latest observation: the server's ``Date`` has one-second
    resolution, so each sample is taken as the middle of that second against the middle
    of the request's round trip. A fresh token's ``iat`` is a second, independent sample
    of the same second; the two are averaged when both are there.

    The server stamps ``Date`` somewhere within the round trip, so a sample is only as
    good as half the round trip: a slow answer (a refresh stuck behind a busy server for
    minutes) would make a correct clock look minutes off. Once an estimate exists, samples
    whose round trip exceeds :data:`MAX_SAMPLE_RTT_S` are ignored.
    """

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._offset: float | None = None

    @property
    def offset(self) -> float:
        """Seconds to add to the local clock to get the server's clock (0 until observed)."""
        return self._offset or 0.0

    @property
    def known(self) -> bool:
        """Whether at least one observation has been made."""
        return self._offset is not None

    def server_time(self) -> float:
        """The server's current time, as far as we can tell."""
        return self._clock.time() + self.offset

    def observe(
        self,
        *,
        date_header: str | None,
        sent_at: float,
        received_at: float,
        iat: int | None = None,
    ) -> float | None:
        """Record one response; return the new offset, or None if nothing could be read.

        Args:
            date_header: the response's ``Date`` header, if any.
            sent_at: local wall time when the request was sent.
            received_at: local wall time when the response arrived.
            iat: the ``iat`` claim of a token issued by this very response, if any.
        """
        if self._offset is not None and received_at - sent_at > MAX_SAMPLE_RTT_S:
            return None
        midpoint = (sent_at + received_at) / 2
        samples: list[float] = []
        server_date = parse_http_date(date_header)
        if server_date is not None:
            samples.append(server_date + 0.5 - midpoint)
        if iat is not None:
            samples.append(iat + 0.5 - midpoint)
        if not samples:
            return None
        self._offset = sum(samples) / len(samples)
        return self._offset


def parse_http_date(value: str | None) -> float | None:
    """Parse an HTTP ``Date`` header into epoch seconds; None when absent or malformed."""
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed.tzinfo is None:
        return None
    return parsed.timestamp()
