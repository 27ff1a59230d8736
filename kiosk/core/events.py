"""Security events, their bus, and the JSON-lines audit log.

Every state transition and every notable thing that happens to a session becomes a
:class:`SecurityEvent`: a small, immutable record with a kind, a severity, the time,
the user and the *jti* of the tokens involved - never a token value. Subscribers (the
Qt indicators, the audit log, tests) get every event synchronously, in order.
"""

from __future__ import annotations

import enum
import json
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class Severity(enum.IntEnum):
    """How much attention an event needs."""

    INFO = 10
    LOW = 20
    MEDIUM = 30
    HIGH = 40


class EventKind(enum.StrEnum):
    """What happened."""

    STATE_CHANGED = "state_changed"
    LOGIN_SUCCEEDED = "login_succeeded"
    LOGIN_FAILED = "login_failed"
    REFRESH_SUCCEEDED = "refresh_succeeded"
    REFRESH_RETRYING = "refresh_retrying"
    REFRESH_REJECTED = "refresh_rejected"
    REFRESH_OUTCOME_UNKNOWN = "refresh_outcome_unknown"
    TOKEN_BLACKLISTED = "token_blacklisted"
    SESSION_REVOKED = "session_revoked"
    MALFORMED_RESPONSE = "malformed_response"
    TOKEN_VALIDATION_FAILED = "token_validation_failed"
    CLOCK_SKEW = "clock_skew"
    CLOCK_JUMP = "clock_jump"
    TLS_ERROR = "tls_error"
    KEYRING_UNAVAILABLE = "keyring_unavailable"
    SHIFT_CAP_APPROACHING = "shift_cap_approaching"
    SHIFT_CAP_REACHED = "shift_cap_reached"
    LOGGED_OUT = "logged_out"
    LOGOUT_NOT_REVOKED = "logout_not_revoked"
    GATE_TIMEOUT = "gate_timeout"
    REQUEST_REJECTED = "request_rejected"
    ALERT = "alert"
    LOCKED = "locked"
    UNLOCKED = "unlocked"


@dataclass(frozen=True, slots=True)
class SecurityEvent:
    """One thing that happened to a session.

    Attributes:
        kind: what happened.
        severity: how much attention it needs.
        time: local wall-clock time (epoch seconds, from the session's clock).
        user: the user name of the session, if one is known.
        jtis: the ``jti`` claims of the tokens involved (never the tokens).
        message: a sentence for a person.
        data: extra machine-readable facts (state names, codes, delays). No secrets.
    """

    kind: EventKind
    severity: Severity
    time: float
    user: str | None = None
    jtis: tuple[str, ...] = ()
    message: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        """The event as one line of JSON (the audit record)."""
        record = asdict(self)
        record["kind"] = self.kind.value
        record["severity"] = self.severity.name.lower()
        record["jtis"] = list(self.jtis)
        record["data"] = dict(self.data)
        return json.dumps(record, sort_keys=True, default=str)


Subscriber = Callable[[SecurityEvent], None]


class EventBus:
    """Delivers events to subscribers, in order, isolating their failures."""

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []
        self._lock = threading.Lock()

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Call ``subscriber`` for every future event; returns a function that unsubscribes."""
        with self._lock:
            self._subscribers.append(subscriber)

        def unsubscribe() -> None:
            with self._lock:
                if subscriber in self._subscribers:
                    self._subscribers.remove(subscriber)

        return unsubscribe

    def publish(self, event: SecurityEvent) -> None:
        """Send ``event`` to every subscriber; a failing subscriber is logged, not raised."""
        with self._lock:
            subscribers = list(self._subscribers)
        log.info("security event %s: %s", event.kind.value, event.message)
        for subscriber in subscribers:
            try:
                subscriber(event)
            except Exception:
                log.exception("security event subscriber %r failed", subscriber)


class AuditLog:
    """Appends every event as one JSON line to a file (the audit trail IT collects).

    Lines are flushed one by one so a crash loses at most the event being written.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    @property
    def path(self) -> Path:
        """Where the records go."""
        return self._path

    def __call__(self, event: SecurityEvent) -> None:
        line = event.to_json() + "\n"
        with self._lock, self._path.open("a", encoding="utf-8") as handle:
            handle.write(line)
