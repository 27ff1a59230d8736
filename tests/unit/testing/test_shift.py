"""shift's pure parts: the plan's timeline and parsed settings, the report's KPI verdicts."""

from __future__ import annotations

import dataclasses
import json

import pytest

from kiosk.core.errors import ConfigurationError
from kiosk.core.settings import PROFILES, SessionPolicy
from kiosk.testing.shift import (
    PROFILE_LIFETIMES,
    Break,
    Burst,
    Handover,
    Quiet,
    ShiftPlan,
    ShiftReport,
    expected_refreshes,
)
from kiosk.testing.spec import FaultPlan, FaultWindow, parse_faults

HOUR = 3600.0

# ---------------------------------------------------------------------------- rate_at

TIMELINE = [
    Burst(at_s=100, duration_s=50, rate_per_s=2.0),
    Quiet(at_s=300, duration_s=100),
    Break(at_s=500, duration_s=100),
    Handover(at_s=700, to_user="bob"),
    Quiet(at_s=800, duration_s=50, rate_per_s=0.05),
]


@pytest.mark.parametrize(
    ("t", "rate", "until"),
    [
        (0, 0.1, 100),
        (99.9, 0.1, 100),
        (100, 2.0, 150),  # a segment starts at its at_s ...
        (149.9, 2.0, 150),
        (150, 0.1, 300),  # ... and is over at at_s + duration_s
        (300, 0.0, 400),  # Quiet: none by default
        (450, 0.1, 500),
        (500, 0.0, 600),  # Break: nobody there
        (599, 0.0, 600),
        (600, 0.1, 800),  # a handover changes no rate and is no boundary
        (700, 0.1, 800),
        (800, 0.05, 850),
        (850, 0.1, 1000),  # the last stretch holds until the end of the shift
        (999, 0.1, 1000),
    ],
)
def test_rate_at_follows_the_timeline_with_its_boundaries(t, rate, until):
    plan = ShiftPlan(duration_s=1000, rate_per_s=0.1, timeline=TIMELINE)
    assert plan.rate_at(t) == (rate, until)


def test_rate_at_does_not_depend_on_the_timelines_order():
    forward = ShiftPlan(duration_s=1000, rate_per_s=0.1, timeline=TIMELINE)
    backward = ShiftPlan(duration_s=1000, rate_per_s=0.1, timeline=list(reversed(TIMELINE)))
    for t in range(0, 1000, 25):
        assert forward.rate_at(t) == backward.rate_at(t)


def test_a_segment_past_the_end_of_the_shift_ends_at_the_shift():
    plan = ShiftPlan(duration_s=1000, rate_per_s=0.1, timeline=[Burst(900, 500, 3.0)])
    assert plan.rate_at(950) == (3.0, 1000)
    assert plan.rate_at(0) == (0.1, 900)


def test_a_break_wins_over_an_overlapping_burst_in_either_order():
    for timeline in (
        [Break(100, 100), Burst(150, 100, 2.0)],
        [Burst(150, 100, 2.0), Break(100, 100)],
    ):
        plan = ShiftPlan(duration_s=1000, rate_per_s=0.1, timeline=timeline)
        assert plan.rate_at(120) == (0.0, 150)
        assert plan.rate_at(160) == (0.0, 200)  # she is away: the burst waits for her
        assert plan.rate_at(210) == (2.0, 250)


def test_of_overlapping_segments_the_one_that_started_last_holds():
    plan = ShiftPlan(
        duration_s=1000, rate_per_s=0.1, timeline=[Burst(100, 300, 2.0), Quiet(200, 50, 0.01)]
    )
    assert plan.rate_at(150) == (2.0, 200)
    assert plan.rate_at(220) == (0.01, 250)
    assert plan.rate_at(260) == (2.0, 400)


def test_without_a_timeline_the_base_rate_holds_all_shift():
    plan = ShiftPlan(duration_s=8 * HOUR, rate_per_s=0.5)
    assert plan.rate_at(0) == (0.5, 8 * HOUR)
    assert plan.rate_at(4 * HOUR) == (0.5, 8 * HOUR)


def test_the_default_plan_is_a_12_hour_general_ward_shift_at_one_request_a_minute():
    plan = ShiftPlan()
    assert plan.duration_s == 12 * HOUR
    assert plan.rate_at(0) == (pytest.approx(1 / 60), 12 * HOUR)
    assert plan.policy.name == "general-ward"


# ---------------------------------------------------------------------------- policy, faults


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_policy_is_the_named_profile(name):
    assert ShiftPlan(profile=name).policy == PROFILES[name]


def test_a_policy_object_is_used_as_it_is():
    custom = SessionPolicy(name="night", idle_lock_s=42)
    assert ShiftPlan(profile=custom).policy is custom


def test_an_unknown_profile_is_a_configuration_error():
    with pytest.raises(ConfigurationError, match="unknown profile"):
        _ = ShiftPlan(profile="mars-base").policy


def test_fault_plan_parses_a_spec_string():
    plan = ShiftPlan(faults="outage@3h+5m, skew=4m")
    assert plan.fault_plan.windows == (FaultWindow("outage", 3 * HOUR, 300.0),)
    assert plan.fault_plan.skew_s == 240.0
    assert plan.fault_plan == parse_faults("outage@3h+5m, skew=4m")


def test_fault_plan_takes_a_parsed_plan_or_nothing():
    parsed = FaultPlan((FaultWindow("restart", 10, 5),))
    assert ShiftPlan(faults=parsed).fault_plan is parsed
    assert ShiftPlan(faults=None).fault_plan == FaultPlan()
    assert ShiftPlan().fault_plan.windows == ()


# ---------------------------------------------------------------------------- the report


def test_an_empty_report_meets_every_kpi():
    report = ShiftReport()
    assert report.kpi_failures() == []
    assert report.ok


@pytest.mark.parametrize(
    ("rate", "fails"),
    [(None, False), (1.0, False), (0.9951, False), (0.995, True), (0.99, True), (0.0, True)],
)
def test_refresh_success_must_be_above_99_5_percent(rate, fails):
    failures = ShiftReport(refresh_success_rate=rate).kpi_failures()
    assert bool(failures) is fails
    if fails:
        assert len(failures) == 1
        assert "refresh success" in failures[0]


@pytest.mark.parametrize(
    ("logins", "fails"),
    [({}, False), ({"alice": 2}, False), ({"alice": 2, "bob": 2}, False), ({"alice": 3}, True)],
)
def test_no_nurse_may_log_in_more_than_twice(logins, fails):
    failures = ShiftReport(logins_by_user=logins, logins=sum(logins.values())).kpi_failures()
    assert bool(failures) is fails
    if fails:
        assert "3 times" in failures[0]


def test_the_login_kpi_is_per_nurse_not_per_workstation():
    report = ShiftReport(logins=5, logins_by_user={"alice": 2, "bob": 2, "carol": 1})
    assert report.ok


@pytest.mark.parametrize(
    ("session_s", "fails"), [(12 * HOUR, False), (12.5 * HOUR, False), (12.5 * HOUR + 1, True)]
)
def test_no_session_may_last_over_12_5_hours(session_s, fails):
    failures = ShiftReport(session_duration_s=session_s).kpi_failures()
    assert bool(failures) is fails
    if fails:
        assert "session lasted 12.50 h" in failures[0]


@pytest.mark.parametrize(("interruptions", "fails"), [(0, False), (1, True), (4, True)])
def test_no_interruption_is_allowed(interruptions, fails):
    failures = ShiftReport(interruptions=interruptions).kpi_failures()
    assert bool(failures) is fails
    if fails:
        assert failures[0].startswith(f"{interruptions} interruption")


def test_every_missed_kpi_is_listed():
    report = ShiftReport(
        refresh_success_rate=0.9,
        logins_by_user={"alice": 4},
        session_duration_s=13 * HOUR,
        interruptions=2,
    )
    assert len(report.kpi_failures()) == 4
    assert not report.ok


def test_other_figures_do_not_decide_ok():
    report = ShiftReport(
        refresh_failures=3,
        forced_logouts=0,
        user_visible_401=7,
        requests_lost=2,
        duplicate_writes=1,
        refresh_success_rate=0.999,
    )
    assert report.ok


def test_as_dict_has_every_field_and_the_kpi_failures():
    report = ShiftReport(refresh_success_rate=0.5, logins_by_user={"alice": 1}, windows=5)
    data = report.as_dict()
    names = {f.name for f in dataclasses.fields(ShiftReport)}
    assert set(data) == names | {"kpi_failures"}
    assert data["kpi_failures"] == report.kpi_failures()
    assert len(data["kpi_failures"]) == 1
    assert data["windows"] == 5
    assert data["logins_by_user"] == {"alice": 1}
    assert json.loads(json.dumps(data)) == data  # JSON-ready


def test_failures_and_losses_are_counted_by_reason():
    report = ShiftReport()
    report.note_failure("ConnectError")
    report.note_failure("http_503")
    report.note_failure("ConnectError")
    report.note_lost("handover", 3)
    report.note_lost("unsent_at_end", 0)  # nothing lost: no entry
    report.note_lost("refused_400")
    assert report.requests_failed == 3
    assert report.failure_reasons == {"ConnectError": 2, "http_503": 1}
    assert report.requests_lost == 4
    assert report.lost_reasons == {"handover": 3, "refused_400": 1}


# ---------------------------------------------------------------------------- expected_refreshes


def _by_hand(duration_s, access_s, lead_of):
    """floor((duration - first) / interval) + 1, averaged over the phase: see the docstring."""
    seen = access_s - 0.5  # simplejwt's whole-second exp
    interval = seen - lead_of(seen)
    first = seen - lead_of(access_s)
    return (duration_s - first) / interval + 0.5


def test_expected_refreshes_of_a_general_ward_shift_by_hand():
    # lead = max(2 s, 10 % of the lifetime) + half of 5 % of it: 112.44 s of an 899.5 s token
    def lead(lifetime):
        return 0.1 * lifetime + 0.025 * lifetime

    got = expected_refreshes(12 * HOUR, 900, PROFILES["general-ward"])
    assert got == pytest.approx(_by_hand(12 * HOUR, 900, lead))
    assert 54 <= got < 55  # the CareLink guide counts ~55


def test_expected_refreshes_of_an_icu_shift_by_hand():
    got = expected_refreshes(8 * HOUR, 300, PROFILES["icu"])
    assert got == pytest.approx(_by_hand(8 * HOUR, 300, lambda life: 0.125 * life))
    assert 109 <= got < 110


def test_expected_refreshes_uses_the_minimum_lead_for_short_tokens():
    policy = SessionPolicy(refresh_lead_min_s=5.0, refresh_lead_fraction=0.1)
    # 10 % of 20 s is 2 s, under the 5 s minimum: lead = 5 + 2.5 % of the lifetime
    got = expected_refreshes(100, 20, policy)
    assert got == pytest.approx(_by_hand(100, 20, lambda life: 5.0 + 0.025 * life))


def test_expected_refreshes_caps_the_lead_at_half_the_lifetime_and_the_expiry_margin():
    # A 3 s token: the 2 s minimum lead is capped at half of it (1.25 s of the 2.5 s seen);
    # a 2 s token: half (0.75 s) is under the 1 s expiry margin, which then decides.
    policy = PROFILES["general-ward"]
    assert expected_refreshes(30, 3.0, policy) == pytest.approx(
        _by_hand(30, 3.0, lambda life: min(2.0 + 0.025 * life, life / 2))
    )
    got = expected_refreshes(60, 2.0, policy)
    assert got == pytest.approx(_by_hand(60, 2.0, lambda life: 1.0))
    # Each token is refreshed before it expires: at least one refresh per lifetime.
    assert got >= 60 / 2.0


def test_expected_refreshes_refuses_tokens_too_short_to_be_refreshed():
    with pytest.raises(ValueError, match="between refreshes"):
        expected_refreshes(60, 1.5, PROFILES["general-ward"])


def test_a_shift_shorter_than_the_first_refresh_expects_none():
    assert expected_refreshes(60, 900, PROFILES["general-ward"]) == 0.0


@pytest.mark.parametrize("profile_name", sorted(PROFILE_LIFETIMES))
def test_expected_refreshes_is_about_duration_over_lifetime_minus_lead(profile_name):
    access_s, _ = PROFILE_LIFETIMES[profile_name]
    policy = PROFILES[profile_name]
    lead = max(policy.refresh_lead_min_s, policy.refresh_lead_fraction * access_s)
    lead += policy.refresh_jitter_fraction * access_s / 2
    # For real lifetimes the whole-second and margin details change the count by under one.
    assert abs(expected_refreshes(10 * HOUR, access_s, policy) - 10 * HOUR / (access_s - lead)) < 1


# ---------------------------------------------------------------------------- ShiftPlan.check

CREDENTIALS = {"alice": "a", "bob": "b"}


def test_a_plan_lists_every_nurse_in_order():
    plan = ShiftPlan(user="alice", timeline=[Handover(100, "bob"), Handover(200, "carol")])
    assert plan.users == ["alice", "bob", "carol"]


@pytest.mark.parametrize(
    ("fields", "can_restart", "message"),
    [
        ({"windows": 0}, True, "at least one window"),
        ({"timeline": [Handover(100, "carol")]}, True, "no password for user 'carol'"),
        ({"user": "dave"}, True, "no password for user 'dave'"),
        ({"faults": "restart@1h+1m"}, False, "restart faults need a server"),
    ],
)
def test_check_names_what_a_simulator_cannot_do(fields, can_restart, message):
    with pytest.raises(ValueError, match=message):
        ShiftPlan(**fields).check(CREDENTIALS, can_restart=can_restart)


def test_check_accepts_a_plan_it_can_play():
    plan = ShiftPlan(timeline=[Handover(100, "bob")], faults="restart@1h+1m")
    plan.check(CREDENTIALS, can_restart=True)  # no exception
    ShiftPlan(faults="outage@1h+1m").check(CREDENTIALS, can_restart=False)
