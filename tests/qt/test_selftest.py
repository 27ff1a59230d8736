"""``kiosk selftest`` end to end: the real Qt application, offscreen, against the real server."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.server, pytest.mark.slow]


def live_refresh_tokens(server, username: str) -> int:
    """Refresh tokens of ``username`` the server would still accept (from its database)."""
    with sqlite3.connect(server.db_path) as db:
        (count,) = db.execute(
            """
            SELECT COUNT(*) FROM token_blacklist_outstandingtoken o
            JOIN auth_user u ON u.id = o.user_id
            WHERE u.username = ? AND o.expires_at > datetime('now')
              AND o.id NOT IN (SELECT token_id FROM token_blacklist_blacklistedtoken)
            """,
            (username,),
        ).fetchone()
    return int(count)


@pytest.mark.simplejwt_server(access_s=4)
def test_selftest_passes_every_step_and_leaves_no_live_token(simplejwt_server):
    env = dict(os.environ, KIOSK_TEST_PASSWORD="carol-secret")
    result = subprocess.run(
        [
            sys.executable, "-m", "kiosk.cli", "selftest",
            "--server", simplejwt_server.base_url,
            "--username", "carol",
            "--password-env", "KIOSK_TEST_PASSWORD",
            "--json", "--offscreen", "--refresh-timeout", "30",
        ],
        capture_output=True, text=True, timeout=180, env=env, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert [s["name"] for s in report["steps"]] == [
        "login", "open_windows", "proactive_refresh", "record_observation",
        "lock", "resume", "sign_out",
    ]  # fmt: skip
    assert all(s["ok"] and s["ms"] >= 0 for s in report["steps"])
    assert live_refresh_tokens(simplejwt_server, "carol") == 0


@pytest.mark.simplejwt_server(access_s=4)
def test_selftest_takes_the_server_from_a_config_file_and_flags(simplejwt_server, tmp_path):
    # The config's header type is wrong for this server; the flag overrides it.
    config = tmp_path / "kiosk.toml"
    config.write_text(
        f'[server]\nurl = "{simplejwt_server.base_url}"\nauth_header_type = "JWT"\n'
        '[session]\nprofile = "icu"\n'
    )
    env = dict(os.environ, KIOSK_TEST_PASSWORD="bob-secret")
    result = subprocess.run(
        [
            sys.executable, "-m", "kiosk.cli", "selftest", "--config", str(config),
            "--auth-header-type", "Bearer", "--username", "bob",
            "--password-env", "KIOSK_TEST_PASSWORD",
            "--json", "--offscreen", "--refresh-timeout", "30",
        ],
        capture_output=True, text=True, timeout=180, env=env, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout)["ok"] is True
    assert live_refresh_tokens(simplejwt_server, "bob") == 0


def test_selftest_fails_with_exit_1_on_a_wrong_password(simplejwt_server):
    env = dict(os.environ, KIOSK_TEST_PASSWORD="wrong")
    result = subprocess.run(
        [
            sys.executable, "-m", "kiosk.cli", "selftest",
            "--server", simplejwt_server.base_url, "--username", "carol",
            "--password-env", "KIOSK_TEST_PASSWORD", "--json", "--offscreen",
        ],
        capture_output=True, text=True, timeout=120, env=env, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["ok"] is False
    assert report["steps"][0]["name"] == "login"
    assert "Wrong user name or password" in report["steps"][0]["detail"]


def test_selftest_usage_errors_exit_2():
    env = {k: v for k, v in os.environ.items() if k != "KIOSK_UNSET_VAR"}
    result = subprocess.run(
        [
            sys.executable, "-m", "kiosk.cli", "selftest", "--server", "http://127.0.0.1:1",
            "--username", "x", "--password-env", "KIOSK_UNSET_VAR",
        ],
        capture_output=True, text=True, timeout=60, env=env, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "KIOSK_UNSET_VAR" in result.stderr
    insecure = subprocess.run(
        [
            sys.executable, "-m", "kiosk.cli", "selftest", "--server", "http://ward.example.org",
            "--username", "x", "--password-env", "HOME",
        ],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert insecure.returncode == 2
    assert "HTTPS" in insecure.stderr or "https" in insecure.stderr
    neither = subprocess.run(
        [
            sys.executable, "-m", "kiosk.cli", "selftest",
            "--username", "x", "--password-env", "HOME",
        ],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert neither.returncode == 2
    assert "give --server URL or --config FILE" in neither.stderr
