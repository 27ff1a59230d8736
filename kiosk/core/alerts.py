"""Alert thresholds from the CareLink guide's monitoring section, raised as security events.

:class:`AlertMonitor` watches a session's events and KPI counters and publishes an ``alert``
event (once per rule and session, so a bad hour is one alert, not hundreds) when:

* high: refresh failure rate above 1 % (once at least :data:`MIN_ATTEMPTS_FOR_RATE` refreshes
  were tried, so the first retry of a shift is not a 50 % rate); use of a blacklisted token;
  a concurrent refresh conflict (the server says our refresh token was blacklisted right after
  a refresh whose answer was lost, i.e. someone else redeemed it);
* medium: a session longer than 12.5 h; unusual refresh patterns (more than
  :data:`BURST_REFRESHES` refreshes within :data:`BURST_WINDOW_S`); token validation errors.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from kiosk.core.events import EventKind, SecurityEvent, Severity

FAILURE_RATE_THRESHOLD = 0.01
MIN_ATTEMPTS_FOR_RATE = 10
LONG_SESSION_S = 12.5 * 3600
BURST_REFRESHES = 6
BURST_WINDOW_S = 600.0

Raise = Callable[[str, Severity, str], None]


class AlertMonitor:
    """Turns events and counters into alerts.

    Args:
        raise_alert: called with ``(rule, severity, message)`` for each new alert.
    """

    def __init__(self, raise_alert: Raise) -> None:
        self._raise = raise_alert
        self._fired: set[str] = set()
        self._refreshes: deque[float] = deque()

    def reset(self) -> None:
        """A new session: every rule may fire again."""
        self._fired.clear()
        self._refreshes.clear()

    def observe(self, event: SecurityEvent, metrics: Mapping[str, Any]) -> None:
        """Check the rules after ``event``, with the session's current ``metrics``."""
        kind = event.kind
        if kind is EventKind.ALERT:
            return
        if kind is EventKind.TOKEN_BLACKLISTED:
            self._fire(
                "blacklisted_token",
                Severity.HIGH,
                "a blacklisted refresh token was used by this session",
            )
            if event.data.get("after_unknown"):
                self._fire(
                    "refresh_conflict",
                    Severity.HIGH,
                    "concurrent refresh conflict: the refresh token was redeemed elsewhere",
                )
        if kind in {EventKind.TOKEN_VALIDATION_FAILED, EventKind.MALFORMED_RESPONSE}:
            self._fire(
                "token_validation",
                Severity.MEDIUM,
                f"token validation errors from the server ({event.message})",
            )
        if kind is EventKind.REFRESH_SUCCEEDED:
            self._refreshes.append(event.time)
            while self._refreshes and event.time - self._refreshes[0] > BURST_WINDOW_S:
                self._refreshes.popleft()
            if len(self._refreshes) > BURST_REFRESHES:
                self._fire(
                    "refresh_pattern",
                    Severity.MEDIUM,
                    f"unusual refresh pattern: {len(self._refreshes)} refreshes within "
                    f"{BURST_WINDOW_S / 60:.0f} min",
                )
        attempts = int(metrics.get("refresh_attempts", 0))
        failures = int(metrics.get("refresh_failures", 0))
        if attempts >= MIN_ATTEMPTS_FOR_RATE and failures / attempts > FAILURE_RATE_THRESHOLD:
            self._fire(
                "refresh_failure_rate",
                Severity.HIGH,
                f"refresh failure rate {failures / attempts:.1%} is above "
                f"{FAILURE_RATE_THRESHOLD:.0%}",
            )
        duration = metrics.get("session_duration_s")
        if isinstance(duration, int | float) and duration > LONG_SESSION_S:
            self._fire(
                "long_session", Severity.MEDIUM, f"session longer than {LONG_SESSION_S / 3600:g} h"
            )

    def _fire(self, rule: str, severity: Severity, message: str) -> None:
        if rule in self._fired:
            return
        self._fired.add(rule)
        self._raise(rule, severity, message)
