"""The session state machine: events in, a new state out. No I/O, no clock, no asyncio.

Theory of operation
-------------------
A session moves through the lifecycle of its tokens::

    LOGGED_OUT --LoginStarted--> AUTHENTICATING --LoginSucceeded--> ACTIVE
    ACTIVE --RefreshStarted--> REFRESHING --RefreshSucceeded--> ACTIVE
    REFRESHING --RefreshFailedTransient--> RETRYING --RefreshStarted--> REFRESHING
    REFRESHING --RefreshOutcomeUnknown--> OUTCOME_UNKNOWN --RefreshStarted--> REFRESHING
    REFRESHING --RefreshRejected--> NEEDS_REAUTH --LoginStarted--> AUTHENTICATING
    any live state --SessionEnded--> LOGGED_OUT (sign-out) or ENDED (shift cap)

The table :data:`TRANSITIONS` is the whole of it: the driver (``TokenManager``) feeds
events as it does I/O, and every accepted transition comes back as a
:class:`Transition` record that the driver turns into a security event. An event the
table does not allow in the current state raises :class:`InvalidTransitionError`
instead of being ignored, so a driver bug shows up in tests rather than as a session
in a state nobody expected.

Two facts are kept out of the state on purpose:

* **lock** is an overlay (``locked``), not a state: a locked workstation keeps its
  session alive and keeps refreshing, so the nurse who comes back after a break finds
  everything as she left it; the refresh lifecycle goes on underneath the lock screen.
* a failed login falls back to where it came from (``LOGGED_OUT`` or
  ``NEEDS_REAUTH``), so a mistyped password during re-authentication does not lose
  the session that the re-authentication is meant to save.

Pure decisions that go with the states also live here: when a proactive refresh is due
(:func:`refresh_due_at`).
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass

from kiosk.core.errors import InvalidTransitionError
from kiosk.core.settings import SessionPolicy


class State(enum.StrEnum):
    """Where a session is in its lifecycle."""

    LOGGED_OUT = "logged_out"
    AUTHENTICATING = "authenticating"
    ACTIVE = "active"
    REFRESHING = "refreshing"
    RETRYING = "retrying"
    OUTCOME_UNKNOWN = "outcome_unknown"
    NEEDS_REAUTH = "needs_reauth"
    ENDED = "ended"


#: States in which a session exists (tokens, a user, the shift clock running).
LIVE_STATES = frozenset(
    {State.ACTIVE, State.REFRESHING, State.RETRYING, State.OUTCOME_UNKNOWN, State.NEEDS_REAUTH}
)


@dataclass(frozen=True, slots=True)
class Event:
    """Base class of the machine's input events."""


@dataclass(frozen=True, slots=True)
class LoginStarted(Event):
    """Credentials are on their way to the server."""


@dataclass(frozen=True, slots=True)
class LoginSucceeded(Event):
    """The server issued tokens for the credentials."""


@dataclass(frozen=True, slots=True)
class LoginFailed(Event):
    """The login did not produce tokens (wrong credentials, server down, bad answer)."""

    reason: str


@dataclass(frozen=True, slots=True)
class RefreshStarted(Event):
    """A refresh request is about to be sent."""


@dataclass(frozen=True, slots=True)
class RefreshSucceeded(Event):
    """New tokens arrived and were stored."""


@dataclass(frozen=True, slots=True)
class RefreshFailedTransient(Event):
    """Not sent, or 5xx/429: safe to retry while the refresh token is valid."""

    reason: str


@dataclass(frozen=True, slots=True)
class RefreshOutcomeUnknown(Event):
    """Sent, but no answer: the server may have rotated the token already."""

    reason: str


@dataclass(frozen=True, slots=True)
class RefreshRejected(Event):
    """The server refused the refresh for good (blacklisted, expired, user inactive...)."""

    reason: str


@dataclass(frozen=True, slots=True)
class SessionRevoked(Event):
    """The server rejected an API request with a final code (``password_changed``...)."""

    reason: str


@dataclass(frozen=True, slots=True)
class CredentialsRenewed(Event):
    """The signed-in user proved her password again; fresh tokens replace the old ones."""


@dataclass(frozen=True, slots=True)
class SessionEnded(Event):
    """The session is over: signed out by the user, or the absolute shift cap."""

    reason: str
    by_cap: bool = False


_REFRESH_OUTCOMES: dict[type[Event], State] = {
    RefreshSucceeded: State.ACTIVE,
    RefreshFailedTransient: State.RETRYING,
    RefreshOutcomeUnknown: State.OUTCOME_UNKNOWN,
    RefreshRejected: State.NEEDS_REAUTH,
    SessionRevoked: State.NEEDS_REAUTH,
}

#: The transition table. ``SessionEnded`` and the failed-login fallback are handled by
#: :meth:`SessionMachine.handle` because their target depends on the event/history.
TRANSITIONS: dict[State, dict[type[Event], State]] = {
    State.LOGGED_OUT: {LoginStarted: State.AUTHENTICATING},
    State.ENDED: {LoginStarted: State.AUTHENTICATING},
    State.AUTHENTICATING: {LoginSucceeded: State.ACTIVE},
    State.ACTIVE: {
        RefreshStarted: State.REFRESHING,
        SessionRevoked: State.NEEDS_REAUTH,
        CredentialsRenewed: State.ACTIVE,
    },
    State.REFRESHING: _REFRESH_OUTCOMES,
    State.RETRYING: {
        RefreshStarted: State.REFRESHING,
        SessionRevoked: State.NEEDS_REAUTH,
        CredentialsRenewed: State.ACTIVE,
    },
    State.OUTCOME_UNKNOWN: {
        RefreshStarted: State.REFRESHING,
        SessionRevoked: State.NEEDS_REAUTH,
        CredentialsRenewed: State.ACTIVE,
    },
    State.NEEDS_REAUTH: {LoginStarted: State.AUTHENTICATING},
}


@dataclass(frozen=True, slots=True)
class Transition:
    """One accepted step of the machine."""

    old: State
    new: State
    event: Event


class SessionMachine:
    """The session's state, changed only by :meth:`handle`.

    Attributes:
        state: the current lifecycle state.
        locked: whether the workstation is locked (an overlay; see the module docstring).
    """

    def __init__(self) -> None:
        self.state = State.LOGGED_OUT
        self.locked = False
        self._before_login = State.LOGGED_OUT

    def allowed(self, event: type[Event]) -> bool:
        """Whether ``event`` is accepted in the current state."""
        try:
            self._target(event)
        except InvalidTransitionError:
            return False
        return True

    def handle(self, event: Event) -> Transition:
        """Apply ``event``; return the transition.

        Raises:
            InvalidTransitionError: the table does not allow ``event`` in this state.
        """
        new = self._target(type(event), event)
        if isinstance(event, LoginStarted):
            self._before_login = self.state
        if new in {State.LOGGED_OUT, State.ENDED}:
            self.locked = False
        transition = Transition(self.state, new, event)
        self.state = new
        return transition

    def _target(self, kind: type[Event], event: Event | None = None) -> State:
        if kind is SessionEnded:
            if self.state in {State.LOGGED_OUT, State.ENDED}:
                raise InvalidTransitionError(f"no session to end in state {self.state}")
            by_cap = isinstance(event, SessionEnded) and event.by_cap
            return State.ENDED if by_cap else State.LOGGED_OUT
        if kind is LoginFailed and self.state is State.AUTHENTICATING:
            if self._before_login is State.NEEDS_REAUTH:
                return State.NEEDS_REAUTH
            return State.LOGGED_OUT
        target = TRANSITIONS.get(self.state, {}).get(kind)
        if target is None:
            raise InvalidTransitionError(f"{kind.__name__} is not allowed in state {self.state}")
        return target


def refresh_due_at(
    *,
    exp: float,
    iat: float | None,
    received_at_server: float,
    policy: SessionPolicy,
    rng: random.Random,
) -> float:
    """When (server time) to refresh an access token proactively.

    The lead is a fraction of the token's lifetime (at least ``refresh_lead_min_s``),
    plus a random share of the lifetime so that sibling windows and processes spread
    out. The lifetime is ``exp - iat`` when ``iat`` is there; otherwise it is measured
    from when the token arrived.

    Args:
        exp: the access token's ``exp`` (server time).
        iat: its ``iat``, if any.
        received_at_server: when it arrived, on the server-corrected clock.
        policy: lead and jitter settings.
        rng: the random source for the jitter.
    """
    lifetime = exp - (iat if iat is not None else received_at_server)
    lifetime = max(lifetime, 0.0)
    lead = max(policy.refresh_lead_min_s, policy.refresh_lead_fraction * lifetime)
    jitter = rng.uniform(0, policy.refresh_jitter_fraction * lifetime)
    # Never schedule into the past of the token's own issue time, and for very short
    # tokens (a few seconds in tests) keep at least half the lifetime usable.
    lead = min(lead + jitter, lifetime / 2) if lifetime > 0 else 0.0
    return exp - lead
