"""``kiosk run`` as IT starts it: the real Qt kiosk, offscreen, against the real server."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

pytestmark = pytest.mark.server

#: No keyring of the machine running the tests is ever touched: the default headless backend.
FAIL_KEYRING = {"PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}


def kiosk_run(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kiosk.cli", "run", *argv],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ, **FAIL_KEYRING) if env is None else env,
        check=False,
    )


def config(tmp_path: Path, text: str) -> str:
    path = tmp_path / "kiosk.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_shows_the_sign_in_window_for_the_configured_server_and_profile(
    simplejwt_server, tmp_path: Path
):
    path = config(
        tmp_path,
        f'[server]\nurl = "{simplejwt_server.base_url}"\n'
        '[session]\nprofile = "icu"\nidle_lock_s = 90\n',
    )
    result = kiosk_run("--config", path, "--offscreen", "--exit-after", "0.5")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    shown = f"kiosk run: sign-in window shown for {simplejwt_server.base_url} "
    assert [line for line in lines if line.startswith(shown)] == [
        f"{shown}(fields: User name, Password)"
    ]
    ready = [line for line in lines if line.startswith("kiosk run: ready;")]
    assert ready == [
        "kiosk run: ready; profile icu: idle lock 90 s, shift cap 8 h (warning 10 min before); "
        "refresh token kept in memory only (the policy does not persist it)"
    ]
    # The window is up before the application behind it; the run ends cleanly.
    assert lines.index(ready[0]) > next(i for i, line in enumerate(lines) if shown in line)
    assert lines[-1] == "kiosk run: closed"
    assert "Traceback" not in result.stderr


def test_profile_and_server_flags_override_the_file(simplejwt_server, tmp_path: Path):
    path = config(
        tmp_path,
        f'[server]\nurl = "{simplejwt_server.base_url}"\nusername_field = "username"\n'
        '[session]\nprofile = "icu"\n',
    )
    result = kiosk_run(
        *("--config", path, "--profile", "general-ward", "--username-field", "email"),
        *("--offscreen", "--exit-after", "0.5"),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "(fields: Email, Password)" in result.stdout
    assert (
        "ready; profile general-ward: idle lock 300 s, shift cap 12 h (warning 15 min before); "
        "refresh token kept in memory only (no usable OS keyring; see the log)"
    ) in result.stdout
    # The policy wanted the keyring and there is none: said in the log, never a plaintext file.
    assert "security event keyring_unavailable" in result.stderr


def test_sigterm_closes_the_kiosk_cleanly(simplejwt_server, tmp_path: Path):
    path = config(tmp_path, f'[server]\nurl = "{simplejwt_server.base_url}"\n')
    with subprocess.Popen(
        [sys.executable, "-m", "kiosk.cli", "run", "--config", path, "--offscreen"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, **FAIL_KEYRING),
    ) as process:
        try:
            lines: queue.Queue[str] = queue.Queue()
            assert process.stdout is not None
            reader = threading.Thread(
                target=lambda: [lines.put(line) for line in process.stdout or ()], daemon=True
            )
            reader.start()
            while not lines.get(timeout=60).startswith("kiosk run: ready;"):
                pass
            process.send_signal(signal.SIGTERM)
            code = process.wait(timeout=30)
            reader.join(timeout=10)
            errors = process.stderr.read() if process.stderr else ""
        finally:
            process.kill()
    rest = [lines.get_nowait().rstrip("\n") for _ in range(lines.qsize())]
    assert code == 0, errors
    assert rest == ["kiosk run: SIGTERM received, closing", "kiosk run: closed"]


@pytest.mark.parametrize(
    ("extra", "text", "message"),
    [
        ((), None, "--config FILE is required"),
        ((), '[server]\nurl = "{url}"\n[session]\nidle_lok_s = 60\n', "idle_lok_s"),
        ((), '[server]\nobtian_path = "/x/"\nurl = "{url}"\n', "obtian_path"),
        ((), '[server]\nurl = "{url}"\n[session]\nprofile = "ICU"\n', "profile must be one of"),
        (("--profile", "nope"), '[server]\nurl = "{url}"\n', "unknown profile 'nope'"),
        ((), '[session]\nprofile = "icu"\n', "no [server] table"),
        (("--exit-after", "0"), '[server]\nurl = "{url}"\n', "--exit-after must be a positive"),
    ],
)
def test_usage_and_config_errors_are_exit_2_with_one_line(
    simplejwt_server, tmp_path: Path, extra: tuple[str, ...], text: str | None, message: str
):
    argv = [*extra, "--offscreen"]
    if text is not None:
        argv += ["--config", config(tmp_path, text.replace("{url}", simplejwt_server.base_url))]
    result = kiosk_run(*argv)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith("kiosk run: ")
    assert message in result.stderr


def test_no_display_without_offscreen_says_so_and_exits_2(simplejwt_server, tmp_path: Path):
    path = config(tmp_path, f'[server]\nurl = "{simplejwt_server.base_url}"\n')
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"}
    } | FAIL_KEYRING
    result = kiosk_run("--config", path, env=env)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.splitlines() == [
        "kiosk run: no display found (DISPLAY and WAYLAND_DISPLAY are unset): start it in the "
        "workstation's graphical session, or pass --offscreen for a smoke test"
    ]
    # The same command with --offscreen runs: the refusal was about the display alone.
    offscreen = kiosk_run("--config", path, "--offscreen", "--exit-after", "0.2", env=env)
    assert offscreen.returncode == 0, offscreen.stdout + offscreen.stderr
