"""Delays between refresh retries: exponential backoff with full jitter, and Retry-After.

Full jitter (a uniform draw between 0 and the exponential bound) spreads the retries of
many workstations that lost the same Wi-Fi access point at once, so they do not hammer
the server together when it comes back. A server's ``Retry-After`` is a floor: we never
retry sooner than it asked, and never later than the cap plus what it asked.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

from kiosk.core.clock import parse_http_date
from kiosk.core.settings import BackoffPolicy


class ExponentialBackoff(Iterator[float]):
    """An endless iterator of delays: attempt n waits U(0, min(cap, base * factor**n)).

    Args:
        policy: base, factor and cap.
        rng: the random source (injectable so tests and simulations are reproducible).
    """

    def __init__(self, policy: BackoffPolicy, rng: random.Random | None = None) -> None:
        self._policy = policy
        self._rng = rng or random.Random()
        self.attempt = 0

    def __iter__(self) -> ExponentialBackoff:
        return self

    def __next__(self) -> float:
        try:
            grown = self._policy.base_s * self._policy.factor**self.attempt
        except OverflowError:
            # After ~1,000 attempts (a long outage: a 12 h refresh token at ~30 s per
            # capped attempt) the float power overflowed and ended the "endless" iterator.
            grown = self._policy.cap_s
        bound = min(self._policy.cap_s, grown)
        self.attempt += 1
        return self._rng.uniform(0, bound)

    def reset(self) -> None:
        """Start again from the first attempt (after a success)."""
        self.attempt = 0


#: A Retry-After beyond this is treated as this: a misconfigured proxy must not park
#: a nurse's session for a day.
MAX_RETRY_AFTER_S = 300.0


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date).

    Args:
        value: the header, if any.
        now: the current time on the server's clock (HTTP dates are the server's).

    Returns:
        The delay, clamped to [0, MAX_RETRY_AFTER_S], or None when absent/unreadable.
    """
    if value is None:
        return None
    value = value.strip()
    # isascii: str.isdigit() is also true for "²" (a latin-1 header byte), which float()
    # rejects with a ValueError; delta-seconds are ASCII digits only (RFC 9110).
    if value.isascii() and value.isdigit():
        delay = float(value)
    else:
        when = parse_http_date(value)
        if when is None:
            return None
        delay = when - now
    return max(0.0, min(MAX_RETRY_AFTER_S, delay))


def retry_delay(backoff: ExponentialBackoff, retry_after: float | None) -> float:
    """The next delay: the backoff's draw, but never less than the server's Retry-After."""
    drawn = next(backoff)
    if retry_after is None:
        return drawn
    return max(retry_after, drawn)
