"""``kiosk demo``: the README's main command, end to end."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = [pytest.mark.server, pytest.mark.slow]


def test_demo_logs_in_refreshes_and_signs_out():
    result = subprocess.run(
        [sys.executable, "-m", "kiosk.cli", "demo", "--seconds", "5", "--access-s", "3"],
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
