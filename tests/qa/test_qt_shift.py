"""Compressed shifts through the real Qt application (QtShiftSimulator), offscreen, in real time.

The server's access tokens live 3 s; each shift takes its duration in wall time (16-24 s), so
the whole module runs in about a minute.
"""

from __future__ import annotations

import os

import httpx
import pytest

from kiosk.core import BackoffPolicy, SessionPolicy
from kiosk.testing.qtshift import QtShiftSimulator
from kiosk.testing.shift import Break, Handover, ShiftPlan, expected_refreshes

# Read when pytest-qt creates the QApplication, which is after this import (tests/conftest.py
# does the same for the whole tree; this keeps the module right when run from elsewhere).
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

pytestmark = [pytest.mark.server, pytest.mark.slow]

ACCESS_S = 3

#: The general ward's rules, compressed: idle lock after 4 s, a 10-minute cap, and refresh
#: retries that back off from 0.5 s to at most 2 s (a 4 s outage is a long one here).
COMPRESSED = SessionPolicy(
    name="general-ward",
    idle_lock_s=4,
    absolute_cap_s=600,
    cap_warning_s=60,
    backoff=BackoffPolicy(base_s=0.5, cap_s=2.0),
)


def _explain(report, sim=None) -> str:
    """The report and the simulator's log, one line each, for a failing assertion."""
    lines = [f"{key}: {value}" for key, value in report.as_dict().items()]
    if sim is not None:
        lines += [f"{at:7.2f}  {what}" for at, what in sim.log]
    return "\n".join(lines)


def _plan(**fields) -> ShiftPlan:
    fields.setdefault("windows", 3)
    fields.setdefault("rate_per_s", 1.0)
    fields.setdefault("post_fraction", 0.3)
    fields.setdefault("profile", COMPRESSED)
    fields.setdefault("drain_s", 8.0)
    fields.setdefault("reauth_delay_s", 2.0)
    return ShiftPlan(**fields)


@pytest.mark.simplejwt_server(access_s=ACCESS_S)
def test_three_windows_without_faults_keep_the_nurse_signed_in(qtbot, simplejwt_server):
    plan = _plan(duration_s=16)
    sim = QtShiftSimulator(simplejwt_server, qtbot)
    report = sim.run(plan)
    details = _explain(report, sim)
    assert report.interruptions == 0, details
    assert report.user_visible_401 == 0, details
    assert report.requests_lost == 0, report.lost_reasons
    assert report.duplicate_writes == 0
    assert report.requests_failed == 0, report.failure_reasons
    assert report.locks == 0, details  # busy windows: the idle lock never came down
    assert report.requests >= 30  # the windows really worked ...
    assert len(sim.acknowledged) >= 3  # ... and recorded observations through the chart form
    expected = expected_refreshes(plan.duration_s, ACCESS_S, COMPRESSED)
    assert abs(report.refreshes - expected) <= 2, (report.refreshes, expected)
    assert report.refreshes == report.server_refreshes
    assert report.refresh_failures == 0
    assert report.logins_by_user == {"alice": 1}
    assert report.kpi_failures() == []


@pytest.mark.simplejwt_server(access_s=ACCESS_S)
def test_an_outage_and_a_5xx_burst_delay_work_but_lose_none(shift):
    # Through the `shift` fixture: shift.qt() runs a QtShiftSimulator on the test's server.
    report = shift.qt(_plan(duration_s=20, faults="outage@8s+4s, 5xx@14s+2s"))
    assert report.interruptions == 0, _explain(report)
    assert report.forced_logouts == 0
    assert report.requests_lost == 0, report.lost_reasons
    assert report.duplicate_writes == 0
    assert report.user_visible_401 == 0
    assert report.refresh_failures > 0  # the outage hit the token calls too ...
    assert report.requests_failed > 0, _explain(report)  # ... and the windows' requests ...
    assert report.requests_recovered > 0  # ... whose work went out once the server was back
    assert set(report.failure_reasons) <= {"ConnectError", "http_503"}, report.failure_reasons
    assert report.refreshes == report.server_refreshes


@pytest.mark.simplejwt_server(access_s=ACCESS_S)
def test_a_break_idle_locks_and_a_handover_revokes_the_first_nurse(qtbot, simplejwt_server):
    policy = SessionPolicy(
        name="general-ward",
        idle_lock_s=3,
        absolute_cap_s=600,
        cap_warning_s=60,
        backoff=BackoffPolicy(base_s=0.5, cap_s=2.0),
    )
    brk = Break(at_s=5, duration_s=8)
    plan = _plan(duration_s=24, profile=policy, timeline=[brk, Handover(at_s=17, to_user="bob")])
    live_before = simplejwt_server.live_refresh_tokens("alice")
    sim = QtShiftSimulator(simplejwt_server, qtbot)
    outgoing: list[str] = []

    async def refresh_token(manager):
        return manager.vault.load().refresh

    def capture(user: str, to_user: str) -> None:
        assert (user, to_user) == ("alice", "bob")
        assert sim.app is not None
        outgoing.append(sim.app.bridge.run_sync(refresh_token))

    sim.handing_over.connect(capture)
    report = sim.run(plan)
    details = _explain(report, sim)
    locks = [t for t, what in sim.log if what == "locked"]
    # The idle lock came down by itself during the break (the simulator did not touch the kiosk),
    # the nurse unlocked at the lock page on her return, and the handover locked again.
    assert any(brk.at_s < t < brk.at_s + brk.duration_s for t in locks), details
    assert report.locks >= 2, details
    assert report.unlocks >= 1, details
    assert any("alice unlocked at the lock page" in what for _, what in sim.log)
    assert report.logins_by_user == {"alice": 1, "bob": 1}, details
    assert report.interruptions == 0, details
    assert report.forced_logouts == 0
    assert report.user_visible_401 == 0
    # Nothing of alice's session is left on the server: the token she had at the handover is
    # blacklisted, and she has no live refresh token more than before the shift.
    assert len(outgoing) == 1
    reused = httpx.post(
        f"{simplejwt_server.base_url}/api/token/refresh/", json={"refresh": outgoing[0]}
    )
    assert reused.status_code == 401
    assert "blacklisted" in reused.json()["detail"].lower()
    assert simplejwt_server.live_refresh_tokens("alice") == live_before
