"""Shifts in real time against the gunicorn reference server: what virtual time cannot show
(a real socket, a real server process stopped and started again)."""

from __future__ import annotations

import pytest

from kiosk.core.settings import SessionPolicy

pytestmark = [pytest.mark.server, pytest.mark.slow]

#: A compressed shift: the server's tokens live 3 s; the policy keeps the general ward's rules
#: but locks after 4 s idle and caps the session at 10 minutes.
SHORT = SessionPolicy(name="general-ward", idle_lock_s=4, absolute_cap_s=600, cap_warning_s=60)


@pytest.mark.simplejwt_server(access_s=3)
def test_a_short_real_time_shift_with_a_server_restart(shift, simplejwt_server):
    # Other tests share this server and may leave tokens of their own: compare, don't count.
    live_before = simplejwt_server.live_refresh_tokens("alice")
    # The reference server is really stopped for 4 s in the middle of the shift.
    report = shift.run_real_time(
        duration_s=14, windows=3, rate_per_s=4, profile=SHORT, faults="restart@5s+4s"
    )
    assert report.interruptions == 0, report.as_dict()
    assert report.requests_lost == 0, report.lost_reasons
    assert report.duplicate_writes == 0
    assert report.failure_reasons  # the restart really hit the windows ...
    assert report.requests_recovered > 0  # ... and their queued work went out afterwards
    assert report.refreshes == report.server_refreshes
    assert report.refreshes >= 3
    assert simplejwt_server.running
    # Signed out at the end: the shift leaves no live refresh token behind.
    assert simplejwt_server.live_refresh_tokens("alice") == live_before


@pytest.mark.simplejwt_server(access_s=3)
def test_a_short_real_time_shift_with_5xx_and_429(shift):
    report = shift.run_real_time(
        duration_s=10,
        windows=2,
        rate_per_s=5,
        profile=SHORT,
        # On the API only: with 3 s tokens a refresh that hit them would back off for longer
        # than the token lives, and the windows would wait at the gate instead (which the
        # outage test covers).
        faults="5xx@2s+2s:path=/api/me/, 429@6s+1s:path=/api/me/:retry_after=1",
    )
    assert report.failure_reasons.get("http_503", 0) > 0
    assert report.failure_reasons.get("http_429", 0) > 0
    assert report.requests_lost == 0
    assert report.interruptions == 0
    assert report.user_visible_401 == 0
