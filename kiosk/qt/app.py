"""The application object: owns the one TokenManager (through the bridge) and every window.

Windows never build their own session: they get ``KioskApp.instance()`` (or the ``app`` they
were created with) and go through its bridge. The app turns the core's signals into what the
nurse sees: the sign-in window, the workspace (:mod:`kiosk.qt.workspace`: one top-level window
with every kiosk window as a tab), the lock pages, the re-authentication dialog, the indicator
in every status bar and the banners.

Idle lock: an event filter on the native windows of the sign-in window, the workspace and the
re-authentication dialog notes every key press, click, wheel and touch (:mod:`kiosk.qt.activity`
says why not one on the whole application); a one-second tick shows a countdown in every
status bar for the last seconds before the lock and locks at the policy's idle time. Locking is
immediate in the UI thread (every window switches to its lock page) and then reported to the
core; nothing waits on the network.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import replace
from typing import Any, ClassVar

import httpx
from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QApplication, QWidget

from kiosk.core import SecurityEvent, ServerSettings, SessionPolicy, TokenManager
from kiosk.core.vault import Vault
from kiosk.qt import panels, ward
from kiosk.qt.activity import ActivityMonitor
from kiosk.qt.bridge import CoreBridge
from kiosk.qt.indicators import SessionFacts, banner_for, describe_session
from kiosk.qt.login import LoginWindow, ReauthDialog, field_label, friendly_error
from kiosk.qt.resources import stylesheet
from kiosk.qt.windows import KioskWindow, WindowRegistry
from kiosk.qt.workspace import Workspace

log = logging.getLogger(__name__)

#: Why the server wants the password again, in words (keyed by the core's reason codes).
REAUTH_REASONS = {
    "token_not_valid": "the server ended this session",
    "password_changed": "your password was changed",
    "user_inactive": "your account was disabled",
    "user_not_found": "your account was not found",
    "no_active_account": "your account was disabled",
    "refresh_expired": "the session reached its time limit",
}


class KioskApp(QObject):
    """The kiosk application (one per process).

    Signals:
        signed_in(str): a user's workspace is open.
        window_opened(object): a window (a KioskWindow) was opened; emitted before its first
            answer can arrive, so whoever watches its requests sees them all.
        signed_out(str): the session ended; the argument says why.
        lock_changed(bool): the workstation locked (True) or unlocked (False).
        refreshed(): the session was renewed (a refresh succeeded).
        view_changed(): the indicator's facts changed.
    """

    signed_in = Signal(str)
    window_opened = Signal(object)
    signed_out = Signal(str)
    lock_changed = Signal(bool)
    refreshed = Signal()
    view_changed = Signal()

    _instance: ClassVar[KioskApp | None] = None

    def __init__(
        self,
        server: ServerSettings,
        policy: SessionPolicy | None = None,
        *,
        vault: Vault | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        api_transport: httpx.AsyncBaseTransport | None = None,
        registry: WindowRegistry | None = None,
        load_plugins: bool = True,
        login_window: LoginWindow | None = None,
    ) -> None:
        super().__init__()
        qapp = QApplication.instance()
        if qapp is None:
            raise RuntimeError("create the QApplication before the KioskApp")
        KioskApp._instance = self
        self.server = server
        self.policy = policy or SessionPolicy()
        self.bridge = CoreBridge(
            server,
            policy=self.policy,
            vault=vault,
            transport=transport,
            api_transport=api_transport,
        )
        self.registry = registry or WindowRegistry()
        panels.register(self.registry)
        if load_plugins:
            self.registry.load_entry_points()
        if "ward" not in {k.name for k in self.registry.kinds()}:
            ward.register(self.registry)  # running from a source tree without entry points
        self.username_label = field_label(server.username_field)
        self.windows: list[KioskWindow] = []
        self.workspace: Workspace | None = None  # built at the first sign-in
        self.recent_events: deque[SecurityEvent] = deque(maxlen=200)
        self.facts = SessionFacts()
        self.locked = False
        self.reauth_dialog: ReauthDialog | None = None
        self.vault_description = "starting"
        self._reauth_reason = ""
        self._closing = False
        self.login_window = login_window or LoginWindow(self.username_label, server.base_url)
        self.login_window.form.submitted.connect(self.login)
        self.bridge.security_event.connect(self._on_event)
        self.bridge.state_changed.connect(self._on_state)
        self.activity = ActivityMonitor(self)
        self._tick = QTimer(self)
        self._tick.timeout.connect(self._on_tick)

    @classmethod
    def instance(cls) -> KioskApp:
        """The application object.

        Raises:
            RuntimeError: none was created.
        """
        if cls._instance is None:
            raise RuntimeError("no KioskApp")
        return cls._instance

    # -- lifecycle ------------------------------------------------------------------------

    def start(self, *, show_login: bool = True) -> None:
        """Start the network thread, style the application and show the sign-in window."""
        app = QApplication.instance()
        assert isinstance(app, QApplication)
        app.setStyleSheet(stylesheet())
        self.bridge.start()

        async def describe(manager: TokenManager) -> str:
            vault = manager.vault
            return str(getattr(vault, "description", type(vault).__name__))

        self.bridge.submit(describe, self._vault_described)
        self._tick.start(1000)
        if show_login:
            self.login_window.show()
            self.login_window.form.reset()
        self.activity.watch(self.login_window)  # shown here or already (kiosk.qt.startup)
        if not show_login and self.login_window.form.pending is not None:
            # Submitted before the application was ready (see kiosk.qt.startup).
            self.login(*self.login_window.form.pending)

    def shutdown(self, *, end_unresumable: bool = True) -> None:
        """Close every window and stop the network thread.

        A session another process can resume (its refresh token in the keyring) is left for
        it. One that cannot (memory-only: the ICU profile, no usable keyring, dj-rest-auth's
        cookie) is signed out first, so that no refresh token outlives the process valid on
        the server (:meth:`TokenManager.end_unresumable_session`).

        Args:
            end_unresumable: sign out an unresumable session first (False only for tests and
                tools that must leave the server's state as it is).
        """
        self._closing = True
        self._tick.stop()
        if end_unresumable and self.bridge.started:
            try:
                # An in-flight refresh may land first, then the revocation: two token calls.
                timeout = 2 * self.server.timeout_s + 5.0
                self.bridge.run_sync(TokenManager.end_unresumable_session, timeout=timeout)
            except Exception:
                log.warning("signing out the memory-only session on exit failed", exc_info=True)
        for window in list(self.windows):
            window.close()
        if self.workspace is not None:
            self.workspace.close()
        self.login_window.close()
        self.bridge.stop()
        if KioskApp._instance is self:
            KioskApp._instance = None

    def _vault_described(self, result: Any, error: BaseException | None) -> None:
        self.vault_description = str(result) if error is None else "unknown"

    # -- session --------------------------------------------------------------------------

    def login(self, username: str, password: str) -> None:
        """Sign ``username`` in (from the sign-in window)."""

        async def job(manager: TokenManager) -> None:
            await manager.login(username, password)

        def done(_result: Any, error: BaseException | None) -> None:
            if error is not None:
                self.login_window.form.show_error(friendly_error(error))
                return
            self._open_workspace(username)

        self.bridge.submit(job, done)

    def _open_workspace(self, username: str) -> None:
        self.facts = replace(
            self.facts,
            user=username,
            locked=False,
            shift_ends_at=time.time() + self.policy.absolute_cap_s,
        )
        self.locked = False
        self.login_window.hide_and_release()
        self.login_window.notice.setText("")
        self.activity.note()
        self.open_window("ward")
        self.signed_in.emit(username)
        self._refresh_indicators()

    def lock(self) -> None:
        """Lock now: every window hides its content behind the lock page."""
        if self.locked or not self.windows:
            return
        self.locked = True
        self.facts = replace(self.facts, locked=True, idle_lock_in=None)
        for window in self.windows:
            window.show_locked(self.facts.user)
        if self.workspace is not None:
            self.workspace.show_locked()
        if self.reauth_dialog is not None:
            self.reauth_dialog.hide()

        async def job(manager: TokenManager) -> None:
            manager.lock()

        self.bridge.submit(job)
        self.lock_changed.emit(True)
        self._refresh_indicators()

    def unlock(self, username: str, password: str) -> None:
        """Unlock for ``username``: her own work back, or a colleague's fresh workspace."""

        async def job(manager: TokenManager) -> bool:
            return await manager.unlock(username, password)

        def done(same_user: Any, error: BaseException | None) -> None:
            if error is not None:
                for window in self.windows:
                    window.lock_page.form.show_error(friendly_error(error))
                return
            self.locked = False
            self.activity.note()
            if same_user:
                self.facts = replace(self.facts, locked=False)
                for window in self.windows:
                    window.show_unlocked()
                if self.workspace is not None:
                    self.workspace.show_unlocked()
                if self.reauth_dialog is not None:
                    self._present(self.reauth_dialog)
            else:
                # The previous user was signed out by the core: nothing of hers stays open.
                self._close_all_windows()
                self.signed_out.emit("tap_over")
                self._open_workspace(username)
            self.lock_changed.emit(False)
            self._refresh_indicators()

        self.bridge.submit(job, done)

    def sign_out(self) -> None:
        """Sign out: revoke on the server, wipe, close every window, show the sign-in window."""

        async def job(manager: TokenManager) -> None:
            await manager.logout()

        def done(_result: Any, _error: BaseException | None) -> None:
            self._end_workspace("signed_out", "You are signed out.")

        self.bridge.submit(job, done)

    def _end_workspace(self, reason: str, notice: str) -> None:
        self._close_all_windows()
        if self.workspace is not None:
            self.workspace.release()
        self.locked = False
        self.facts = SessionFacts()
        self.login_window.notice.setText(notice)
        self.login_window.form.reset()
        self._present(self.login_window)
        self.signed_out.emit(reason)

    def _close_all_windows(self) -> None:
        if self.reauth_dialog is not None:
            self.reauth_dialog.dismiss()
            self.reauth_dialog = None
        for window in list(self.windows):
            window.close()
        self.windows.clear()
        if self.workspace is not None:
            self.workspace.show_unlocked()  # a tap-over opens the next user's workspace in it

    # -- windows --------------------------------------------------------------------------

    def open_window(self, name: str, **kwargs: Any) -> KioskWindow:
        """Open a window of the registered kind ``name``, in front in the workspace.

        The first window of a session (the ward board) is the workspace's home: its tab has
        no close button.
        """
        window = self.registry.get(name).factory(self, **kwargs)
        workspace = self._workspace()
        self.windows.append(window)
        window.indicator.show_view(describe_session(self.facts, time.time()))
        if self.locked:
            window.show_locked(self.facts.user)
        workspace.add(window, closable=len(self.windows) > 1)
        self.window_opened.emit(window)
        if not workspace.isVisible():
            self._present(workspace, maximized=True)  # a kiosk fills its screen
        return window

    def _present(self, window: QWidget, *, maximized: bool = False) -> None:
        """Show a top-level window and watch it for the idle lock.

        Showing may make a new native window (the sign-in window and the workspace free theirs
        while hidden), and the activity filter sits on the native window.
        """
        if maximized:
            window.showMaximized()
        else:
            window.show()
        self.activity.watch(window)

    def _workspace(self) -> Workspace:
        if self.workspace is None:
            self.workspace = Workspace(self)
        return self.workspace

    def show_window(self, window: KioskWindow) -> None:
        """Bring ``window`` to the front of the workspace."""
        if self.workspace is not None:
            self.workspace.show_window(window)

    def window_closed(self, window: KioskWindow) -> None:
        """A window was closed (by the user or by the app)."""
        if window in self.windows:
            self.windows.remove(window)
        if self.workspace is not None:
            self.workspace.remove(window)

    # -- core signals ---------------------------------------------------------------------

    def _on_event(self, event: SecurityEvent) -> None:
        self.recent_events.append(event)
        if self._closing:
            return
        kind = event.kind.value
        if kind == "state_changed" and event.data.get("to") == "needs_reauth":
            self._reauth_reason = str(event.data.get("reason") or "")
        if kind == "refresh_retrying":
            self.facts = replace(self.facts, next_attempt_at=event.data.get("next_attempt_at"))
        elif kind == "refresh_succeeded":
            self.refreshed.emit()
        elif kind == "shift_cap_approaching" and isinstance(event.data.get("ends_at"), float):
            self.facts = replace(self.facts, shift_ends_at=event.data["ends_at"])
        banner = banner_for(event)
        if banner is not None and self.windows:
            for window in self.windows:
                window.banner.show_banner(banner)
        self._refresh_indicators()

    def _on_state(self, state: str) -> None:
        if self._closing:
            return  # the exit's own sign-out must not reopen the sign-in window
        self.facts = replace(self.facts, state=state)
        if state != "retrying":
            self.facts = replace(self.facts, next_attempt_at=None)
        if state == "needs_reauth" and self.windows:
            self._ask_reauthentication()
        elif state == "active" and self.reauth_dialog is not None:
            self.reauth_dialog.dismiss()
            self.reauth_dialog = None
        elif state == "ended" and self.windows:
            self._end_workspace(
                "shift_cap", "Your shift session has ended. Sign in again to continue."
            )
        for window in self.windows:
            window.session_changed()
        self._refresh_indicators()

    def _ask_reauthentication(self) -> None:
        if self.reauth_dialog is not None:
            return
        reason = REAUTH_REASONS.get(self._reauth_reason, "the session could not be renewed")
        parent = self.workspace
        dialog = ReauthDialog(self.username_label, self.facts.user or "", reason, parent)
        dialog.form.submitted.connect(self._reauthenticate)
        dialog.sign_out_requested.connect(self.sign_out)
        self.reauth_dialog = dialog
        if not self.locked:
            self._present(dialog)

    def _reauthenticate(self, username: str, password: str) -> None:
        async def job(manager: TokenManager) -> None:
            await manager.login(username, password)

        def done(_result: Any, error: BaseException | None) -> None:
            if self.reauth_dialog is None:
                return
            if error is not None:
                self.reauth_dialog.form.show_error(friendly_error(error))
                return
            self.reauth_dialog.dismiss()
            self.reauth_dialog = None

        self.bridge.submit(job, done)

    # -- idle lock and indicators ---------------------------------------------------------

    def note_activity(self) -> None:
        """Count as user activity now (for programmatic use and tests)."""
        self.activity.note()

    @property
    def idle_s(self) -> float:
        """Seconds since the last user activity."""
        return self.activity.idle_s

    def _on_tick(self) -> None:
        self.check_idle()
        self._refresh_indicators()

    def check_idle(self) -> None:
        """Lock when idle for the policy's time; show the countdown before it."""
        if not self.windows or self.locked:
            return
        remaining = self.policy.idle_lock_s - self.idle_s
        countdown = min(30.0, self.policy.idle_lock_s / 2)
        if remaining <= 0:
            self.lock()
            return
        idle_lock_in = remaining if remaining <= countdown else None
        if idle_lock_in != self.facts.idle_lock_in:
            self.facts = replace(self.facts, idle_lock_in=idle_lock_in)

    def _refresh_indicators(self) -> None:
        view = describe_session(self.facts, time.time())
        for window in self.windows:
            window.indicator.show_view(view)
        self.view_changed.emit()
