"""Alert thresholds: each rule fires once per session when its condition is met."""

from __future__ import annotations

from kiosk.core.alerts import BURST_REFRESHES, AlertMonitor
from kiosk.core.events import EventKind, SecurityEvent, Severity


def _event(kind: EventKind, time: float = 0.0, **data) -> SecurityEvent:
    return SecurityEvent(
        kind=kind,
        severity=Severity.INFO,
        time=time,
        user="alice",
        jtis=(),
        message=kind.value,
        data=data,
    )


def _monitor():
    fired: list[tuple[str, Severity]] = []
    return AlertMonitor(lambda rule, severity, _msg: fired.append((rule, severity))), fired


def test_failure_rate_above_one_percent_is_high_once_enough_attempts():
    monitor, fired = _monitor()
    monitor.observe(
        _event(EventKind.REFRESH_RETRYING), {"refresh_attempts": 2, "refresh_failures": 1}
    )
    assert fired == []  # two attempts are too few to call it a rate
    monitor.observe(
        _event(EventKind.REFRESH_SUCCEEDED), {"refresh_attempts": 60, "refresh_failures": 1}
    )
    assert fired == [("refresh_failure_rate", Severity.HIGH)]
    monitor.observe(
        _event(EventKind.REFRESH_SUCCEEDED), {"refresh_attempts": 61, "refresh_failures": 1}
    )
    assert len(fired) == 1


def test_no_alert_at_exactly_one_failure_in_a_hundred():
    monitor, fired = _monitor()
    monitor.observe(
        _event(EventKind.REFRESH_SUCCEEDED), {"refresh_attempts": 100, "refresh_failures": 1}
    )
    assert fired == []


def test_blacklisted_token_and_refresh_conflict():
    monitor, fired = _monitor()
    monitor.observe(_event(EventKind.TOKEN_BLACKLISTED, after_unknown=True), {})
    assert fired == [("blacklisted_token", Severity.HIGH), ("refresh_conflict", Severity.HIGH)]


def test_long_session_validation_errors_and_refresh_bursts_are_medium():
    monitor, fired = _monitor()
    monitor.observe(_event(EventKind.TOKEN_VALIDATION_FAILED), {"session_duration_s": 3600})
    monitor.observe(_event(EventKind.LOGIN_SUCCEEDED), {"session_duration_s": 12.6 * 3600})
    for i in range(BURST_REFRESHES + 1):
        monitor.observe(_event(EventKind.REFRESH_SUCCEEDED, time=i * 30.0), {})
    assert fired == [
        ("token_validation", Severity.MEDIUM),
        ("long_session", Severity.MEDIUM),
        ("refresh_pattern", Severity.MEDIUM),
    ]


def test_refreshes_spread_over_the_shift_are_not_unusual():
    monitor, fired = _monitor()
    for i in range(60):
        monitor.observe(_event(EventKind.REFRESH_SUCCEEDED, time=i * 780.0), {})
    assert fired == []


def test_reset_lets_rules_fire_again_and_alerts_are_ignored():
    monitor, fired = _monitor()
    monitor.observe(_event(EventKind.TOKEN_BLACKLISTED), {})
    monitor.reset()
    monitor.observe(_event(EventKind.TOKEN_BLACKLISTED), {})
    monitor.observe(_event(EventKind.ALERT), {"refresh_attempts": 10, "refresh_failures": 10})
    assert fired == [("blacklisted_token", Severity.HIGH)] * 2
