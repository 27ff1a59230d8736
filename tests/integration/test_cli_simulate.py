"""``kiosk simulate`` end to end: the command QA (and acceptance tests) run, as a subprocess."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

import pytest

from kiosk.testing.shift import ShiftReport

pytestmark = [pytest.mark.server, pytest.mark.slow]

REPORT_FIELDS = [f.name for f in dataclasses.fields(ShiftReport)]
ISSUE_FIELDS = [
    "refreshes",
    "refresh_failures",
    "refresh_success_rate",
    "refresh_latency_p50_ms",
    "refresh_latency_p95_ms",
    "logins",
    "interruptions",
    "forced_logouts",
    "user_visible_401",
    "requests",
    "requests_failed",
    "requests_lost",
    "duplicate_writes",
    "locks",
    "session_duration_s",
    "wall_s",
]


def simulate(*args: str, password: str | None = None, timeout: float = 240):
    env = dict(os.environ)
    if password is not None:
        env["KIOSK_SIM_PASSWORD"] = password
    return subprocess.run(
        [sys.executable, "-m", "kiosk.cli", "simulate", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=env,
    )


def test_virtual_12h_shift_prints_one_json_report():
    result = simulate("--virtual", "--hours", "12", "--windows", "5", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    data = json.loads(result.stdout)
    assert set(ISSUE_FIELDS) <= set(data)
    assert set(REPORT_FIELDS) <= set(data)
    assert data["ok"] is True
    assert data["kpi_failures"] == []
    assert data["interruptions"] == 0
    assert data["user_visible_401"] == 0
    assert data["requests_lost"] == 0
    assert 50 <= data["refreshes"] <= 58
    assert data["refreshes"] == data["server_refreshes"]
    assert data["duration_s"] == 12 * 3600
    assert 0 < data["wall_s"] < 120


def test_virtual_icu_profile_uses_its_5_minute_tokens():
    result = simulate("--virtual", "--hours", "1", "--profile", "icu", "--windows", "2", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    data = json.loads(result.stdout)
    # 1 h / (300 s - lead - jitter) ~ 13; the general ward's 15 min tokens would give ~4.
    assert 11 <= data["refreshes"] <= 15


def test_virtual_readable_output_names_the_missed_kpi():
    # A 20 min outage over a due refresh: retried with backoff, so refresh success falls.
    result = simulate("--virtual", "--hours", "2", "--windows", "2", "--faults", "outage@1h+20m")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "refresh_failures" in result.stdout
    assert "KPIs MISSED: refresh success" in result.stdout


@pytest.mark.simplejwt_server(access_s=3)
def test_live_shift_reports_the_refreshes_the_server_saw(simplejwt_server):
    before = simplejwt_server.stats()
    live_before = simplejwt_server.live_refresh_tokens("carol")  # the server is shared
    result = simulate(
        "--server",
        simplejwt_server.base_url,
        "--username",
        "carol",
        "--password-env",
        "KIOSK_SIM_PASSWORD",
        "--duration",
        "8s",
        "--windows",
        "3",
        "--rate",
        "5",
        "--json",
        password=simplejwt_server.users["carol"],
    )
    after = simplejwt_server.stats()
    assert result.returncode == 0, result.stdout + result.stderr
    data = json.loads(result.stdout)
    assert data["refreshes"] == after["refresh"] - before["refresh"]
    assert data["refreshes"] >= 2  # 8 s of 3 s tokens
    assert data["logins"] == 1
    assert after["obtain"] - before["obtain"] == 1
    assert after["blacklist"] - before["blacklist"] == 1  # signed out at the end
    assert data["requests"] > 50  # 3 windows x 5/s x 8 s ~ 120
    assert data["requests_lost"] == 0
    assert data["user_visible_401"] == 0
    assert simplejwt_server.live_refresh_tokens("carol") == live_before


@pytest.mark.simplejwt_server(access_s=3)
def test_live_shift_through_a_5xx_burst_delivers_the_queued_work(simplejwt_server):
    result = simulate(
        "--server",
        simplejwt_server.base_url,
        "--username",
        "carol",
        "--password-env",
        "KIOSK_SIM_PASSWORD",
        "--duration",
        "6s",
        "--windows",
        "2",
        "--rate",
        "5",
        "--faults",
        "5xx@2s+2s",
        "--json",
        password=simplejwt_server.users["carol"],
    )
    data = json.loads(result.stdout)
    assert data["failure_reasons"].get("http_503", 0) > 0
    assert data["requests_recovered"] > 0
    assert data["requests_lost"] == 0
    assert data["interruptions"] == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--virtual", "--processes", "2"], "--processes: only 1"),
        (["--virtual", "--faults", "meteor@1h+5m"], "unknown kind 'meteor'"),
        (["--virtual", "--faults", "outage@3h"], "give its duration"),
        (["--virtual", "--hours", "1", "--faults", "outage@2h+5m"], "starts after the shift"),
        (["--virtual", "--profile", "night-club"], "unknown profile"),
        (["--virtual", "--duration", "soon"], "is not a duration"),
        (["--virtual", "--windows", "0"], "--windows must be at least 1"),
        (["--server", "http://127.0.0.1:9", "--username", "u"], "--password-env"),
        (
            ["--server", "http://127.0.0.1:9", "--username", "u", "--password-env", "NOPE_UNSET"],
            "NOPE_UNSET is empty or unset",
        ),
        (
            ["--server", "http://example.org", "--username", "u", "--password-env", "HOME"],
            "https",
        ),
        (
            [
                *("--server", "http://127.0.0.1:9", "--username", "u", "--password-env", "HOME"),
                *("--faults", "restart@1s+1s"),
            ],
            "restart faults need --virtual",
        ),
    ],
)
def test_usage_errors_exit_2_with_a_clear_message(args, message):
    result = simulate(*args, timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_a_failed_first_login_exits_2_without_a_traceback(simplejwt_server):
    result = simulate(
        "--server",
        simplejwt_server.base_url,
        "--username",
        "alice",
        "--password-env",
        "KIOSK_SIM_PASSWORD",
        "--duration",
        "2s",
        password="not-her-password",
        timeout=60,
    )
    assert result.returncode == 2
    assert "the first login failed" in result.stderr
    assert "Traceback" not in result.stderr
