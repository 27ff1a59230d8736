"""``kiosk run``: the kiosk application on a ward workstation, as IT deploys it.

This module owns the production start of the Qt kiosk: the server of the config's
``[server]`` table (the server flags override it, as for ``check-server``), the session
policy of its ``[session]`` table (``--profile`` overrides the file's profile, see
:func:`kiosk.core.config.load_policy`), the display check, and the fast start of
:mod:`kiosk.qt.startup` (the sign-in window is up before httpx, PyJWT and keyring load).

Where the refresh token is kept is the policy's decision, made by the ``TokenManager`` as
usual: the OS keyring when ``persist_refresh_token`` is true and a usable backend exists,
else memory only (said in the log, never a plaintext file).

What IT sees on standard output, one line each: the sign-in window is shown (with the
server it names), then the application is ready (profile, idle lock, shift cap, vault).
Security events go to standard error through :mod:`logging` (journald under systemd).
``--exit-after S`` quits S seconds after the ready line, for smoke tests of a build; SIGTERM
and SIGINT quit cleanly. Exit codes: 0 the application ended normally, 2 usage or
configuration errors, or no display (one line on standard error).
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import signal
import sys
from typing import TYPE_CHECKING, Any

from kiosk.commands.server_args import UsageError, add_server_flags, settings_from_args
from kiosk.core.config import load_policy
from kiosk.core.errors import ConfigurationError
from kiosk.core.settings import PROFILES, ServerSettings, SessionPolicy

if TYPE_CHECKING:
    from PySide6.QtWidgets import QApplication

    from kiosk.core.manager import TokenManager
    from kiosk.qt.app import KioskApp
    from kiosk.qt.login import LoginWindow

#: QT_QPA_PLATFORM values that mean "no screen, on purpose" (same as ``--offscreen``).
_OFFSCREEN_PLATFORMS = ("offscreen", "minimal")


def _say(message: str) -> None:
    print(f"kiosk run: {message}", flush=True)


def _shown_server(window: LoginWindow) -> str:
    """The server the sign-in window names (read from the window, not from the config)."""
    from PySide6.QtWidgets import QLabel

    for label in window.findChildren(QLabel):
        text = label.text()
        if text.startswith("Server: "):
            return text.removeprefix("Server: ")
    return "?"


def _describe_policy(policy: SessionPolicy) -> str:
    return (
        f"profile {policy.name}: idle lock {policy.idle_lock_s:g} s, shift cap "
        f"{policy.absolute_cap_s / 3600:g} h (warning {policy.cap_warning_s / 60:g} min before)"
    )


def _describe_vault(description: str | None, policy: SessionPolicy) -> str:
    if description is None:
        return "refresh token store unknown (the network thread did not answer; see the log)"
    if description != "memory":
        return f"refresh token kept in the OS keyring ({description})"
    if not policy.persist_refresh_token:
        return "refresh token kept in memory only (the policy does not persist it)"
    return "refresh token kept in memory only (no usable OS keyring; see the log)"


def _log_to_stderr() -> None:
    """Send the kiosk's log (every security event, never a token) to standard error."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("kiosk: %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("kiosk")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)


def _quit_on_signals(qapp: QApplication) -> None:
    """SIGTERM (systemd stopping the session) and SIGINT end the event loop cleanly."""
    from PySide6.QtCore import QTimer

    def stop(signum: int, _frame: Any) -> None:
        _say(f"{signal.Signals(signum).name} received, closing")
        qapp.quit()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    # Python runs signal handlers only between bytecodes; Qt's C++ loop gives it none
    # unless a timer wakes the interpreter now and then.
    timer = QTimer(qapp)
    timer.timeout.connect(lambda: None)
    timer.start(200)


def _display_problem(offscreen: bool) -> str | None:
    if offscreen:
        return None
    from kiosk.qt.runtime import has_display

    if has_display():
        return None
    return (
        "no display found (DISPLAY and WAYLAND_DISPLAY are unset): start it in the "
        "workstation's graphical session, or pass --offscreen for a smoke test"
    )


def _load(args: argparse.Namespace) -> tuple[ServerSettings, SessionPolicy]:
    if args.config is None:
        raise UsageError("--config FILE is required (the kiosk config with a [server] table)")
    if args.exit_after is not None and not (math.isfinite(args.exit_after) and args.exit_after > 0):
        raise UsageError("--exit-after must be a positive number of seconds")
    server, _given = settings_from_args(args, None)
    return server, load_policy(args.config, profile=args.profile)


def run(args: argparse.Namespace) -> int:
    """Run the kiosk until it is closed; 0 on a normal end, 2 on usage errors or no display."""
    try:
        server, policy = _load(args)
    except (UsageError, ConfigurationError) as exc:
        print(f"kiosk run: {exc}", file=sys.stderr)
        return 2
    platform = os.environ.get("QT_QPA_PLATFORM", "")
    offscreen = args.offscreen or platform.startswith(_OFFSCREEN_PLATFORMS)
    problem = _display_problem(offscreen)
    if problem is not None:
        print(f"kiosk run: {problem}", file=sys.stderr)
        return 2

    from kiosk.qt.runtime import qt_application
    from kiosk.qt.startup import start_kiosk

    _log_to_stderr()
    qapp = qt_application(offscreen=offscreen)
    if offscreen:
        _say("offscreen: nothing is shown on a screen")
    _quit_on_signals(qapp)
    # No vault argument: the TokenManager opens the one the policy allows.
    launcher = start_kiosk(server, policy)

    def shown() -> None:
        window = launcher.login_window
        _say(
            f"sign-in window shown for {_shown_server(window)} "
            f"(fields: {window.form.username.accessibleName()}, "
            f"{window.form.password.accessibleName()})"
        )

    def ready(app: KioskApp) -> None:
        async def vault_of(manager: TokenManager) -> str:
            return str(getattr(manager.vault, "description", type(manager.vault).__name__))

        def described(description: Any, error: BaseException | None) -> None:
            vault = None if error is not None else str(description)
            _say(f"ready; {_describe_policy(app.policy)}; {_describe_vault(vault, app.policy)}")
            if args.exit_after is not None:
                from PySide6.QtCore import QTimer

                QTimer.singleShot(round(args.exit_after * 1000), qapp.quit)

        app.bridge.submit(vault_of, described)

    launcher.shown.connect(shown)
    launcher.ready.connect(ready)
    try:
        code = qapp.exec()
    finally:
        if launcher.app is not None:
            launcher.app.shutdown()
        launcher.login_window.close()
    _say("closed")
    return int(code)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``run`` to the ``kiosk`` command."""
    parser = sub.add_parser(
        "run",
        help="open the kiosk against the configured server (what the kiosk session starts)",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    add_server_flags(
        parser, config_help="the kiosk config file (TOML: [server] table, optional [session])"
    )
    parser.add_argument(
        "--profile",
        metavar="NAME",
        help=f"the session profile, overriding the config's ({', '.join(sorted(PROFILES))})",
    )
    parser.add_argument(
        "--offscreen",
        action="store_true",
        help="run without a screen (also when QT_QPA_PLATFORM=offscreen), for smoke tests",
    )
    parser.add_argument(
        "--exit-after",
        type=float,
        metavar="S",
        help="quit S seconds after the kiosk is ready (IT smoke tests of a build)",
    )
    parser.set_defaults(func=run)


__all__ = ["register", "run"]
