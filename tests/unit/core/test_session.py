"""The session state machine (kiosk.core.session): table, fallbacks, lock overlay, due times."""

from __future__ import annotations

import dataclasses
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk.core import session as session_module
from kiosk.core.errors import InvalidTransitionError
from kiosk.core.session import (
    LIVE_STATES,
    TRANSITIONS,
    Event,
    LoginFailed,
    LoginStarted,
    LoginSucceeded,
    RefreshFailedTransient,
    RefreshOutcomeUnknown,
    RefreshRejected,
    RefreshStarted,
    RefreshSucceeded,
    SessionEnded,
    SessionMachine,
    SessionRevoked,
    State,
    Transition,
    refresh_due_at,
)
from kiosk.core.settings import SessionPolicy


def _sample(kind: type[Event]) -> Event:
    """An instance of ``kind``: every required field gets a sample string."""
    required = {
        f.name: f"sample {f.name}"
        for f in dataclasses.fields(kind)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    }
    return kind(**required)


#: Every event type the module declares (Event.__subclasses__() would also list the
#: pre-slots copies that dataclass(slots=True) leaves behind).
EVENT_TYPES = sorted(
    (
        obj
        for obj in vars(session_module).values()
        if isinstance(obj, type) and issubclass(obj, Event) and obj is not Event
    ),
    key=lambda kind: kind.__name__,
)
#: One instance of every event type, so that new ones are covered without editing here.
EVENTS: dict[type[Event], Event] = {kind: _sample(kind) for kind in EVENT_TYPES}

#: How to reach each state from a fresh machine.
PATHS: dict[State, list[Event]] = {
    State.LOGGED_OUT: [],
    State.AUTHENTICATING: [LoginStarted()],
    State.ACTIVE: [LoginStarted(), LoginSucceeded()],
    State.REFRESHING: [LoginStarted(), LoginSucceeded(), RefreshStarted()],
    State.RETRYING: [
        LoginStarted(),
        LoginSucceeded(),
        RefreshStarted(),
        EVENTS[RefreshFailedTransient],
    ],
    State.OUTCOME_UNKNOWN: [
        LoginStarted(),
        LoginSucceeded(),
        RefreshStarted(),
        EVENTS[RefreshOutcomeUnknown],
    ],
    State.NEEDS_REAUTH: [
        LoginStarted(),
        LoginSucceeded(),
        RefreshStarted(),
        EVENTS[RefreshRejected],
    ],
    State.ENDED: [LoginStarted(), LoginSucceeded(), SessionEnded("shift over", by_cap=True)],
}


def machine_in(state: State) -> SessionMachine:
    machine = SessionMachine()
    for event in PATHS[state]:
        machine.handle(event)
    assert machine.state is state
    return machine


def test_paths_cover_every_state() -> None:
    assert set(PATHS) == set(State)
    assert set(TRANSITIONS) == set(State)


def test_every_event_type_has_a_sample() -> None:
    assert {LoginStarted, RefreshStarted, SessionEnded, LoginFailed} <= set(EVENTS)
    assert {kind for row in TRANSITIONS.values() for kind in row} <= set(EVENTS)


def test_a_new_machine_is_logged_out_and_unlocked() -> None:
    machine = SessionMachine()
    assert machine.state is State.LOGGED_OUT
    assert machine.locked is False


TABLE = [
    (state, kind, target) for state, row in TRANSITIONS.items() for kind, target in row.items()
]


@pytest.mark.parametrize(
    ("state", "kind", "target"),
    TABLE,
    ids=[f"{s.value}-{k.__name__}" for s, k, _ in TABLE],
)
def test_every_table_transition(state: State, kind: type[Event], target: State) -> None:
    machine = machine_in(state)
    event = EVENTS[kind]
    assert machine.allowed(kind)
    transition = machine.handle(event)
    assert transition == Transition(old=state, new=target, event=event)
    assert machine.state is target


#: The lifecycle of the module docstring (the table may grow, these edges must stay).
DOCUMENTED = [
    (State.LOGGED_OUT, LoginStarted, State.AUTHENTICATING),
    (State.AUTHENTICATING, LoginSucceeded, State.ACTIVE),
    (State.ACTIVE, RefreshStarted, State.REFRESHING),
    (State.REFRESHING, RefreshSucceeded, State.ACTIVE),
    (State.REFRESHING, RefreshFailedTransient, State.RETRYING),
    (State.RETRYING, RefreshStarted, State.REFRESHING),
    (State.REFRESHING, RefreshOutcomeUnknown, State.OUTCOME_UNKNOWN),
    (State.OUTCOME_UNKNOWN, RefreshStarted, State.REFRESHING),
    (State.REFRESHING, RefreshRejected, State.NEEDS_REAUTH),
    (State.NEEDS_REAUTH, LoginStarted, State.AUTHENTICATING),
    (State.ENDED, LoginStarted, State.AUTHENTICATING),
    (State.ACTIVE, SessionRevoked, State.NEEDS_REAUTH),
]


def test_table_has_the_documented_lifecycle() -> None:
    for state, kind, target in DOCUMENTED:
        assert TRANSITIONS[state].get(kind) is target, (state, kind.__name__)


def test_only_logins_leave_the_sessionless_states() -> None:
    assert TRANSITIONS[State.LOGGED_OUT] == {LoginStarted: State.AUTHENTICATING}
    assert TRANSITIONS[State.ENDED] == {LoginStarted: State.AUTHENTICATING}
    assert TRANSITIONS[State.NEEDS_REAUTH] == {LoginStarted: State.AUTHENTICATING}
    assert TRANSITIONS[State.AUTHENTICATING] == {LoginSucceeded: State.ACTIVE}


def test_no_refresh_outcome_outside_refreshing() -> None:
    outcomes = {RefreshSucceeded, RefreshFailedTransient, RefreshOutcomeUnknown, RefreshRejected}
    for state, row in TRANSITIONS.items():
        if state is not State.REFRESHING:
            assert not outcomes & set(row), state


def _invalid_pairs() -> list[tuple[State, type[Event]]]:
    pairs = []
    for state in State:
        for kind in EVENTS:
            if kind in TRANSITIONS[state]:
                continue
            if kind is SessionEnded and state not in {State.LOGGED_OUT, State.ENDED}:
                continue  # ending is allowed wherever a session (or a login) exists
            if kind is LoginFailed and state is State.AUTHENTICATING:
                continue  # the fallback, tested below
            pairs.append((state, kind))
    return pairs


INVALID = _invalid_pairs()


@pytest.mark.parametrize(
    ("state", "kind"), INVALID, ids=[f"{s.value}-{k.__name__}" for s, k in INVALID]
)
def test_events_outside_the_table_raise_and_change_nothing(state: State, kind: type[Event]) -> None:
    machine = machine_in(state)
    machine.locked = state in LIVE_STATES
    assert not machine.allowed(kind)
    with pytest.raises(
        InvalidTransitionError, match=kind.__name__ if kind is not SessionEnded else "no session"
    ):
        machine.handle(EVENTS[kind])
    assert machine.state is state
    assert machine.locked is (state in LIVE_STATES)


def test_invalid_transition_error_is_a_kiosk_error() -> None:
    from kiosk.core.errors import KioskError

    with pytest.raises(KioskError):
        SessionMachine().handle(RefreshStarted())


@pytest.mark.parametrize("state", sorted(LIVE_STATES | {State.AUTHENTICATING}))
def test_sign_out_from_any_session_state_goes_to_logged_out(state: State) -> None:
    machine = machine_in(state)
    event = SessionEnded("signed out")
    transition = machine.handle(event)
    assert transition == Transition(state, State.LOGGED_OUT, event)
    assert machine.state is State.LOGGED_OUT


@pytest.mark.parametrize("state", sorted(LIVE_STATES))
def test_shift_cap_from_any_live_state_goes_to_ended(state: State) -> None:
    machine = machine_in(state)
    transition = machine.handle(SessionEnded("cap", by_cap=True))
    assert (transition.old, transition.new) == (state, State.ENDED)
    assert machine.state is State.ENDED


def test_live_states_are_the_documented_ones() -> None:
    assert {
        State.ACTIVE,
        State.REFRESHING,
        State.RETRYING,
        State.OUTCOME_UNKNOWN,
        State.NEEDS_REAUTH,
    } == LIVE_STATES


def test_failed_first_login_falls_back_to_logged_out() -> None:
    machine = machine_in(State.AUTHENTICATING)
    assert machine.allowed(LoginFailed)
    transition = machine.handle(LoginFailed("wrong password"))
    assert (transition.old, transition.new) == (State.AUTHENTICATING, State.LOGGED_OUT)


def test_failed_reauthentication_falls_back_to_needs_reauth() -> None:
    machine = machine_in(State.NEEDS_REAUTH)
    machine.handle(LoginStarted())
    transition = machine.handle(LoginFailed("typo"))
    assert transition.new is State.NEEDS_REAUTH
    # ...and the nurse can try again.
    machine.handle(LoginStarted())
    machine.handle(LoginSucceeded())
    assert machine.state is State.ACTIVE


def test_failed_login_after_the_shift_cap_goes_to_logged_out() -> None:
    machine = machine_in(State.ENDED)
    machine.handle(LoginStarted())
    assert machine.handle(LoginFailed("typo")).new is State.LOGGED_OUT


def test_fallback_remembers_only_the_latest_login() -> None:
    machine = machine_in(State.NEEDS_REAUTH)
    machine.handle(LoginStarted())
    machine.handle(LoginSucceeded())
    machine.handle(SessionEnded("signed out"))
    machine.handle(LoginStarted())
    assert machine.handle(LoginFailed("typo")).new is State.LOGGED_OUT


def test_a_full_shift_walks_through_the_lifecycle() -> None:
    machine = SessionMachine()
    steps = [
        (LoginStarted(), State.AUTHENTICATING),
        (LoginSucceeded(), State.ACTIVE),
        (RefreshStarted(), State.REFRESHING),
        (RefreshFailedTransient("wifi"), State.RETRYING),
        (RefreshStarted(), State.REFRESHING),
        (RefreshOutcomeUnknown("reset"), State.OUTCOME_UNKNOWN),
        (RefreshStarted(), State.REFRESHING),
        (RefreshSucceeded(), State.ACTIVE),
        (SessionEnded("cap", by_cap=True), State.ENDED),
    ]
    for event, expected in steps:
        old = machine.state
        transition = machine.handle(event)
        assert transition.old is old
        assert transition.new is expected is machine.state


# ------------------------------------------------------------------ lock overlay


def test_lock_survives_the_refresh_lifecycle() -> None:
    machine = machine_in(State.ACTIVE)
    machine.locked = True
    for event in (
        RefreshStarted(),
        RefreshFailedTransient("503"),
        RefreshStarted(),
        RefreshSucceeded(),
        RefreshStarted(),
        RefreshRejected("token_not_valid"),
    ):
        machine.handle(event)
        assert machine.locked is True
    assert machine.state is State.NEEDS_REAUTH


@pytest.mark.parametrize("by_cap", [False, True])
def test_ending_the_session_clears_the_lock(by_cap: bool) -> None:
    machine = machine_in(State.REFRESHING)
    machine.locked = True
    machine.handle(SessionEnded("over", by_cap=by_cap))
    assert machine.locked is False


@pytest.mark.parametrize(
    "state", [State.ACTIVE, State.REFRESHING, State.RETRYING, State.OUTCOME_UNKNOWN]
)
def test_revocation_keeps_the_lock_and_needs_reauth(state: State) -> None:
    # A final code on an API call (password_changed) while the screen is locked: the
    # session needs the password again, and stays behind the lock screen.
    machine = machine_in(state)
    machine.locked = True
    assert machine.handle(SessionRevoked("password_changed")).new is State.NEEDS_REAUTH
    assert machine.locked is True


def test_rejected_transition_does_not_clear_the_lock() -> None:
    machine = machine_in(State.ACTIVE)
    machine.locked = True
    with pytest.raises(InvalidTransitionError):
        machine.handle(LoginSucceeded())
    assert machine.locked is True


def test_allowed_does_not_change_state() -> None:
    machine = machine_in(State.ACTIVE)
    assert machine.allowed(RefreshStarted)
    assert machine.allowed(SessionEnded)
    assert not machine.allowed(LoginSucceeded)
    assert machine.state is State.ACTIVE


# ------------------------------------------------------------------ refresh_due_at


class EdgeRandom(random.Random):
    """``uniform`` returns one end of its range and records the range."""

    def __init__(self, end: str) -> None:
        super().__init__(0)
        self.end = end
        self.calls: list[tuple[float, float]] = []

    def uniform(self, a: float, b: float) -> float:
        self.calls.append((a, b))
        return a if self.end == "low" else b


POLICY = SessionPolicy()  # lead 10 % (min 2 s), jitter up to 5 %


def due(
    exp: float,
    iat: float | None,
    received: float,
    rng: random.Random,
    policy: SessionPolicy = POLICY,
) -> float:
    return refresh_due_at(exp=exp, iat=iat, received_at_server=received, policy=policy, rng=rng)


def test_lead_is_a_fraction_of_the_lifetime_without_jitter() -> None:
    # 300 s token: lead 30 s.
    assert due(1300, 1000, 1000, EdgeRandom("low")) == pytest.approx(1270)


def test_jitter_adds_up_to_its_fraction_of_the_lifetime() -> None:
    rng = EdgeRandom("high")
    # 300 s token: lead 30 s + jitter 15 s.
    assert due(1300, 1000, 1000, rng) == pytest.approx(1255)
    assert rng.calls == [(0, pytest.approx(15.0))]


def test_minimum_lead_applies_to_short_tokens() -> None:
    # 10 s token: 10 % is 1 s, the minimum lead is 2 s; jitter 0.5 s.
    assert due(1010, 1000, 1000, EdgeRandom("low")) == pytest.approx(1008)
    assert due(1010, 1000, 1000, EdgeRandom("high")) == pytest.approx(1007.5)


def test_very_short_tokens_keep_half_their_lifetime() -> None:
    # 3 s token: the 2 s minimum lead would leave 1 s; half the lifetime is kept instead.
    assert due(1003, 1000, 1000, EdgeRandom("high")) == pytest.approx(1001.5)


def test_iat_gives_the_lifetime_even_when_the_token_arrived_late() -> None:
    # The token was issued at 1000 (server time) but we only saw it at 1100 (a slow
    # answer, or a skew estimate that is off): iat still gives the true 300 s lifetime.
    with_iat = due(1300, 1000, 1100, EdgeRandom("low"))
    without_iat = due(1300, None, 1100, EdgeRandom("low"))
    assert with_iat == pytest.approx(1270)  # lead 30 s of a 300 s lifetime
    assert without_iat == pytest.approx(1280)  # lead 20 s of the 200 s seen


def test_without_iat_lifetime_counts_from_arrival() -> None:
    assert due(1600, None, 1000, EdgeRandom("low")) == pytest.approx(1540)


@pytest.mark.parametrize(("iat", "received"), [(1300, 0), (1400, 0), (None, 1300), (None, 2000)])
def test_no_lifetime_left_means_due_at_exp(iat: float | None, received: float) -> None:
    assert due(1300, iat, received, EdgeRandom("high")) == 1300


def test_jitter_spreads_sibling_windows() -> None:
    times = {due(1900, 1000, 1000, random.Random(seed)) for seed in range(20)}
    assert len(times) > 15
    assert all(1900 - 90 - 45 <= t <= 1900 - 90 for t in times)


def test_a_seeded_rng_is_reproducible() -> None:
    assert due(1900, 1000, 1000, random.Random(7)) == due(1900, 1000, 1000, random.Random(7))


@settings(max_examples=200, deadline=None)
@given(
    iat=st.floats(min_value=1e9, max_value=2e9),
    lifetime=st.floats(min_value=0.0, max_value=30 * 86400),
    seed=st.integers(0, 2**32),
    lead_fraction=st.floats(min_value=0.0, max_value=0.99),
    jitter_fraction=st.floats(min_value=0.0, max_value=0.99),
    lead_min=st.floats(min_value=0.0, max_value=600.0),
)
def test_due_time_is_never_outside_the_second_half_of_the_lifetime(
    iat: float,
    lifetime: float,
    seed: int,
    lead_fraction: float,
    jitter_fraction: float,
    lead_min: float,
) -> None:
    policy = SessionPolicy(
        refresh_lead_fraction=lead_fraction,
        refresh_jitter_fraction=jitter_fraction,
        refresh_lead_min_s=lead_min,
    )
    exp = iat + lifetime
    at = due(exp, iat, iat, random.Random(seed), policy)
    assert at <= exp + 1e-6
    assert at >= iat + lifetime / 2 - 1e-6
