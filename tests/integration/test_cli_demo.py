"""``kiosk demo``: the README's main command, end to end."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = [pytest.mark.server, pytest.mark.slow]


def test_demo_logs_in_refreshes_and_signs_out():
    result = subprocess.run(
        [sys.executable, "-m", "kiosk.cli", "demo", "--core", "--seconds", "5", "--access-s", "3"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "login_succeeded" in out
    assert "refresh_succeeded" in out
    assert "logged_out" in out
    assert "user_visible_401           0" in out
    assert "Demo finished." in out


def test_demo_without_a_display_runs_the_offscreen_walkthrough(tmp_path):
    import os

    env = {k: v for k, v in os.environ.items() if k not in {"DISPLAY", "WAYLAND_DISPLAY"}}
    env.pop("QT_QPA_PLATFORM", None)
    result = subprocess.run(
        [sys.executable, "-m", "kiosk.cli", "demo", "--screenshots", str(tmp_path / "shots")],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "No display found" in out
    for step in ("login", "proactive_refresh", "record_observation", "lock", "resume"):
        assert f"ok   {step}" in out
    assert "indicator: Locked" in out
    assert sorted(p.name for p in (tmp_path / "shots").iterdir()) == [
        "lock.png",
        "login.png",
        "security-panel.png",
        "workspace.png",
    ]
    assert "Demo finished." in out
