"""Whole-shift examples QA can start from (docs/qa.md): each plays a shift on virtual time
through the real Django + simplejwt code (in-process) and checks the KPIs that matter.

Copy one, change the plan, keep the assertions: ``shift.run(...)`` returns a ShiftReport, and
``report.kpi_failures()`` names every CareLink threshold the shift misses.
"""

from __future__ import annotations

import pytest

from kiosk.core.settings import profile
from kiosk.testing.shift import Break, Handover, expected_refreshes

pytestmark = pytest.mark.slow

HOUR = 3600.0


def assert_no_harm(report) -> None:
    """What a nurse must never see, whatever the shift: prompts, 401s, lost or doubled work."""
    assert report.interruptions == 0, report.as_dict()
    assert report.forced_logouts == 0
    assert report.user_visible_401 == 0
    assert report.requests_lost == 0, report.lost_reasons
    assert report.duplicate_writes == 0
    # What the client says it sent is what the server saw.
    assert report.refreshes == report.server_refreshes


def test_general_ward_12h_shift(shift):
    report = shift.run(hours=12, profile="general-ward", windows=5)

    assert_no_harm(report)
    assert report.kpi_failures() == []
    expected = expected_refreshes(12 * HOUR, 15 * 60, profile("general-ward"))
    assert abs(report.refreshes - expected) <= 2, (report.refreshes, expected)
    assert 50 <= report.refreshes <= 58  # the CareLink guide counts ~55
    assert report.refresh_success_rate == 1.0
    assert report.refresh_failures == 0
    assert report.logins == 1
    assert 3000 < report.requests < 4200  # 5 windows, one request a minute each
    assert report.requests_failed == 0
    assert report.session_duration_s <= 12 * HOUR + 1


def test_icu_8h_shift_with_5_minute_access_tokens(shift):
    report = shift.run(hours=8, profile="icu", windows=5)

    assert_no_harm(report)
    assert report.kpi_failures() == []
    expected = expected_refreshes(8 * HOUR, 5 * 60, profile("icu"))
    assert abs(report.refreshes - expected) <= 2, (report.refreshes, expected)
    assert report.refresh_success_rate == 1.0
    # The ICU cap is 8 h: the session ends with the shift, not before.
    assert report.session_duration_s == pytest.approx(8 * HOUR, abs=5)


def test_outage_at_hour_3_and_5xx_burst_at_hour_5(shift):
    report = shift.run(hours=12, windows=5, faults="outage@3h+5m, 5xx@5h+30s")

    assert_no_harm(report)
    # The faults really hit: work failed during them and was delivered after recovery.
    assert report.failure_reasons.get("ConnectError", 0) > 0
    assert report.failure_reasons.get("http_503", 0) > 0
    assert report.requests_recovered > 0
    assert report.refresh_success_rate is not None
    assert report.logins == 1


def test_outage_across_a_refresh_retries_with_backoff(shift):
    # 20 minutes without the server: at least one refresh falls in it and has to retry.
    report = shift.run(hours=2, windows=3, faults="outage@1h+20m")

    assert report.interruptions == 0
    assert report.requests_lost == 0
    assert report.events.get("refresh_retrying", 0) >= 1
    assert report.refresh_failures >= 1
    assert report.requests_recovered > 0
    assert report.refreshes == report.server_refreshes


def test_handover_at_hour_12_to_the_night_nurse(shift):
    from kiosk.testing.inprocess import shared_server

    # The in-process database is shared by the test run: compare, don't count.
    live_before = {user: shared_server().live_refresh_tokens(user) for user in ("alice", "bob")}
    report = shift.run(hours=13, windows=5, timeline=[Handover(12 * HOUR, "bob")])

    assert_no_harm(report)
    assert report.logins_by_user == {"alice": 1, "bob": 1}
    assert report.kpi_failures() == []
    # Nothing of the day nurse's session remains on the server: her refresh token is revoked.
    assert shift.server.live_refresh_tokens("alice") == live_before["alice"]
    assert report.events["logged_out"] == 2  # the tap-over, and bob signing out at the end
    assert shift.server.live_refresh_tokens("bob") == live_before["bob"]
    assert report.session_duration_s <= 12.5 * HOUR


def test_workstation_clock_4_minutes_fast(shift):
    report = shift.run(hours=12, windows=5, faults="skew=4m")

    assert_no_harm(report)
    assert report.kpi_failures() == []
    # Refreshes are scheduled on the server's time, so the count is as without skew ...
    expected = expected_refreshes(12 * HOUR, 15 * 60, profile("general-ward"))
    assert abs(report.refreshes - expected) <= 2
    # ... and the nurse is told the workstation's clock is off.
    assert report.events.get("clock_skew", 0) >= 1


def test_break_long_enough_to_idle_lock(shift):
    report = shift.run(hours=2, windows=2, timeline=[Break(1 * HOUR, 20 * 60)])

    assert_no_harm(report)
    assert report.locks == 1
    assert report.unlocks == 1
    assert report.logins == 1  # unlocking is not a login
