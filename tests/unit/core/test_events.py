"""Security events, the event bus and the JSON-lines audit log (kiosk.core.events)."""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
from pathlib import Path

import pytest
from kiosk_test_helpers import NOW, make_jwt

from kiosk.core.claims import decode_token
from kiosk.core.events import AuditLog, EventBus, EventKind, SecurityEvent, Severity
from kiosk.core.settings import ServerSettings


def event(kind: EventKind = EventKind.LOGIN_SUCCEEDED, **kwargs: object) -> SecurityEvent:
    return SecurityEvent(kind=kind, severity=Severity.INFO, time=float(NOW), **kwargs)  # type: ignore[arg-type]


# ------------------------------------------------------------------ SecurityEvent


def test_to_json_is_one_line_with_every_field() -> None:
    record = SecurityEvent(
        kind=EventKind.REFRESH_RETRYING,
        severity=Severity.MEDIUM,
        time=NOW + 0.25,
        user="alice",
        jtis=("j-access", "j-refresh"),
        message="refresh failed (HTTP 503);\nretrying in 4.0 s",
        data={"delay_s": 4.0, "attempt": 2, "state": "retrying"},
    ).to_json()
    assert "\n" not in record
    assert json.loads(record) == {
        "kind": "refresh_retrying",
        "severity": "medium",
        "time": NOW + 0.25,
        "user": "alice",
        "jtis": ["j-access", "j-refresh"],
        "message": "refresh failed (HTTP 503);\nretrying in 4.0 s",
        "data": {"delay_s": 4.0, "attempt": 2, "state": "retrying"},
    }


def test_to_json_defaults() -> None:
    assert json.loads(event().to_json()) == {
        "kind": "login_succeeded",
        "severity": "info",
        "time": float(NOW),
        "user": None,
        "jtis": [],
        "message": "",
        "data": {},
    }


def test_to_json_has_sorted_keys_and_stringifies_odd_data() -> None:
    record = event(data={"path": Path("/var/log/kiosk"), "reasons": ("a", "b")}).to_json()
    keys = list(json.loads(record))
    assert keys == sorted(keys)
    assert json.loads(record)["data"] == {"path": "/var/log/kiosk", "reasons": ["a", "b"]}


def test_to_json_carries_jtis_never_token_values() -> None:
    settings = ServerSettings("https://api.example.org")
    access = decode_token(make_jwt(jti="jti-a"), settings)
    refresh = decode_token(make_jwt(token_type="refresh", jti="jti-r"), settings)
    record = SecurityEvent(
        kind=EventKind.REFRESH_SUCCEEDED,
        severity=Severity.INFO,
        time=float(NOW),
        user="alice",
        jtis=(refresh.jti, access.jti),
        message=f"session renewed ({access})",
        data={"rotated": True},
    ).to_json()
    assert "jti-a" in record
    assert "jti-r" in record
    for token in (access, refresh):
        for segment in token.reveal().split("."):
            assert segment not in record


def test_events_are_immutable() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        event().user = "mallory"  # type: ignore[misc]


def test_severity_orders() -> None:
    assert Severity.INFO < Severity.LOW < Severity.MEDIUM < Severity.HIGH


# ------------------------------------------------------------------ EventBus


def test_subscribers_get_every_event_in_order() -> None:
    bus = EventBus()
    seen: list[tuple[str, EventKind]] = []
    bus.subscribe(lambda e: seen.append(("first", e.kind)))
    bus.subscribe(lambda e: seen.append(("second", e.kind)))
    bus.publish(event(EventKind.LOCKED))
    bus.publish(event(EventKind.UNLOCKED))
    assert seen == [
        ("first", EventKind.LOCKED),
        ("second", EventKind.LOCKED),
        ("first", EventKind.UNLOCKED),
        ("second", EventKind.UNLOCKED),
    ]


def test_subscribers_get_the_very_same_event() -> None:
    bus = EventBus()
    seen: list[SecurityEvent] = []
    bus.subscribe(seen.append)
    sent = event()
    bus.publish(sent)
    assert seen == [sent]
    assert seen[0] is sent


def test_publish_without_subscribers_is_fine() -> None:
    EventBus().publish(event())


def test_unsubscribe_stops_delivery() -> None:
    bus = EventBus()
    first: list[SecurityEvent] = []
    second: list[SecurityEvent] = []
    unsubscribe = bus.subscribe(first.append)
    bus.subscribe(second.append)
    bus.publish(event())
    unsubscribe()
    bus.publish(event())
    assert len(first) == 1
    assert len(second) == 2


def test_unsubscribe_twice_is_harmless() -> None:
    bus = EventBus()
    seen: list[SecurityEvent] = []
    unsubscribe = bus.subscribe(seen.append)
    unsubscribe()
    unsubscribe()
    bus.publish(event())
    assert seen == []


def test_a_subscriber_may_unsubscribe_itself_while_being_called() -> None:
    bus = EventBus()
    seen: list[str] = []
    unsubscribe = bus.subscribe(lambda e: (seen.append("once"), unsubscribe()))
    bus.subscribe(lambda e: seen.append("always"))
    bus.publish(event())
    bus.publish(event())
    assert seen == ["once", "always", "always"]


def test_a_failing_subscriber_does_not_stop_the_others(caplog: pytest.LogCaptureFixture) -> None:
    bus = EventBus()
    seen: list[str] = []

    def broken(e: SecurityEvent) -> None:
        raise RuntimeError("indicator widget is gone")

    bus.subscribe(lambda e: seen.append("before"))
    bus.subscribe(broken)
    bus.subscribe(lambda e: seen.append("after"))
    with caplog.at_level(logging.INFO, logger="kiosk.core.events"):
        bus.publish(event(message="hello"))  # does not raise
    assert seen == ["before", "after"]
    failures = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(failures) == 1
    assert "subscriber" in failures[0].getMessage()
    assert failures[0].exc_info is not None
    assert failures[0].exc_info[0] is RuntimeError


def test_publish_logs_the_event(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="kiosk.core.events"):
        EventBus().publish(event(EventKind.CLOCK_SKEW, message="clock is 4 min fast"))
    assert "clock_skew" in caplog.text
    assert "clock is 4 min fast" in caplog.text


def test_the_same_subscriber_twice_is_called_twice() -> None:
    bus = EventBus()
    seen: list[SecurityEvent] = []
    bus.subscribe(seen.append)
    bus.subscribe(seen.append)
    bus.publish(event())
    assert len(seen) == 2


def test_publishing_from_threads_delivers_everything() -> None:
    bus = EventBus()
    seen: list[SecurityEvent] = []
    lock = threading.Lock()

    def record(e: SecurityEvent) -> None:
        with lock:
            seen.append(e)

    bus.subscribe(record)
    threads = [
        threading.Thread(target=lambda: [bus.publish(event()) for _ in range(100)])
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(seen) == 400


# ------------------------------------------------------------------ AuditLog


def test_audit_log_appends_one_json_line_per_event(tmp_path: Path) -> None:
    path = tmp_path / "audit" / "nested" / "kiosk.jsonl"
    audit = AuditLog(path)
    assert path.parent.is_dir()  # created up front
    assert audit.path == path
    audit(event(EventKind.LOGIN_SUCCEEDED, user="alice", jtis=("j1",)))
    audit(event(EventKind.LOGGED_OUT, user="alice", message="signed out\nby the user"))
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2
    records = [json.loads(line) for line in lines]
    assert [r["kind"] for r in records] == ["login_succeeded", "logged_out"]
    assert records[0]["jtis"] == ["j1"]
    assert records[1]["message"] == "signed out\nby the user"


def test_audit_log_appends_to_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "kiosk.jsonl"
    path.write_text('{"kind": "earlier"}\n', encoding="utf-8")
    AuditLog(path)(event())
    lines = path.read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[0]) == {"kind": "earlier"}
    assert json.loads(lines[1])["kind"] == "login_succeeded"


def test_audit_log_as_a_bus_subscriber(tmp_path: Path) -> None:
    path = tmp_path / "kiosk.jsonl"
    bus = EventBus()
    bus.subscribe(AuditLog(path))
    for kind in (EventKind.LOGIN_SUCCEEDED, EventKind.LOCKED, EventKind.UNLOCKED):
        bus.publish(event(kind))
    kinds = [json.loads(line)["kind"] for line in path.read_text().splitlines()]
    assert kinds == ["login_succeeded", "locked", "unlocked"]


def test_audit_log_keeps_non_ascii_readable(tmp_path: Path) -> None:
    path = tmp_path / "kiosk.jsonl"
    AuditLog(path)(event(user="zoë", message="Token staat op de zwarte lijst ✓"))
    assert json.loads(path.read_text(encoding="utf-8"))["user"] == "zoë"


def test_audit_log_from_threads_writes_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "kiosk.jsonl"
    audit = AuditLog(path)
    big = event(message="x" * 5000)
    threads = [threading.Thread(target=lambda: [audit(big) for _ in range(25)]) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    lines = path.read_text().splitlines()
    assert len(lines) == 100
    assert all(json.loads(line)["message"] == "x" * 5000 for line in lines)
