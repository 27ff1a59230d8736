"""KPI counters of a session, as the CareLink guide's monitoring section lists them.

Plain counters and a bounded window of refresh latencies; :meth:`Metrics.as_dict`
is what ``TokenManager.metrics()`` returns and what the Qt security panel shows.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

#: Latencies kept for the percentiles: a 12 h shift with 5 min tokens refreshes ~160
#: times, so this holds several shifts.
LATENCY_WINDOW = 1024


def _mean_ms(samples: list[float]) -> float | None:
    # statistics.fmean is exactly fsum / n; importing statistics loads decimal and fractions
    # (0.6 MB in the Qt kiosk, which shows the mean only in its security panel).
    return math.fsum(samples) / len(samples) * 1000 if samples else None


def percentile(samples: list[float], fraction: float) -> float | None:
    """The nearest-rank percentile of ``samples`` (None when empty)."""
    if not samples:
        return None
    ordered = sorted(samples)
    # Nearest rank is ceil(p * n). round(p * n + 0.5) rounded half to even, so p50 of
    # 10 samples gave the 6th instead of the 5th. The epsilon absorbs float noise.
    rank = max(0, min(len(ordered) - 1, math.ceil(fraction * len(ordered) - 1e-9) - 1))
    return ordered[rank]


@dataclass
class Metrics:
    """The counters. Times are seconds; latencies are recorded in seconds."""

    logins: int = 0
    login_failures: int = 0
    refresh_attempts: int = 0
    refresh_successes: int = 0
    refresh_failures: int = 0
    refresh_retries: int = 0
    requests: int = 0
    requests_replayed: int = 0
    user_visible_401: int = 0
    interruptions: int = 0
    gate_timeouts: int = 0
    session_start: float | None = None
    session_end: float | None = None
    refresh_latencies: deque[float] = field(default_factory=lambda: deque(maxlen=LATENCY_WINDOW))

    def session_duration(self, now: float) -> float | None:
        """How long the session has lasted (or lasted), or None before the first login."""
        if self.session_start is None:
            return None
        return (self.session_end or now) - self.session_start

    def counters(self, now: float) -> dict[str, Any]:
        """What the alert rules read after every event: counters only, no percentiles.

        :meth:`as_dict` sorts the latency window for its percentiles; the alert monitor
        runs on each of a refresh's three events, so it gets this instead.
        """
        return {
            "refresh_attempts": self.refresh_attempts,
            "refresh_failures": self.refresh_failures,
            "session_duration_s": self.session_duration(now),
        }

    def as_dict(self, now: float) -> dict[str, Any]:
        """A JSON-ready snapshot; ``now`` closes the duration of a running session."""
        latencies = list(self.refresh_latencies)
        attempts = self.refresh_attempts
        duration = self.session_duration(now)
        return {
            "logins": self.logins,
            "login_failures": self.login_failures,
            "refresh_attempts": attempts,
            "refresh_successes": self.refresh_successes,
            "refresh_failures": self.refresh_failures,
            "refresh_retries": self.refresh_retries,
            "refresh_success_rate": (self.refresh_successes / attempts) if attempts else None,
            "refresh_latency_mean_ms": _mean_ms(latencies),
            "refresh_latency_p50_ms": _ms(percentile(latencies, 0.50)),
            "refresh_latency_p95_ms": _ms(percentile(latencies, 0.95)),
            "requests": self.requests,
            "requests_replayed": self.requests_replayed,
            "user_visible_401": self.user_visible_401,
            "interruptions": self.interruptions,
            "gate_timeouts": self.gate_timeouts,
            "session_start": self.session_start,
            "session_duration_s": duration,
        }


def _ms(value: float | None) -> float | None:
    return None if value is None else value * 1000
