"""What the nurse sees of the session: the status-bar indicator and the attention banner.

:func:`describe_session` and :func:`banner_for` are pure decisions (state in, icon and words
out), so the wording is tested without widgets. Colour is never the only signal: every
indicator has an icon shape and text, and an accessible name/description for screen readers.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QWidget

from kiosk.core import SecurityEvent, Severity
from kiosk.qt.resources import pixmap


@dataclass(frozen=True)
class SessionView:
    """Everything the indicator shows."""

    icon: str
    text: str


@dataclass(frozen=True)
class SessionFacts:
    """The facts the indicator is computed from (all on the UI thread's wall clock)."""

    state: str = "logged_out"
    locked: bool = False
    user: str | None = None
    next_attempt_at: float | None = None
    shift_ends_at: float | None = None
    idle_lock_in: float | None = None


#: The shift-end countdown shows from this many seconds before the cap.
SHIFT_END_NOTICE_S = 30 * 60


def describe_session(facts: SessionFacts, now: float) -> SessionView:
    """The indicator for ``facts`` at ``now``."""
    if facts.locked:
        return SessionView("locked", f"Locked — {facts.user or 'session'} kept safe")
    state = facts.state
    if state == "retrying":
        if facts.next_attempt_at is not None:
            seconds = max(0, round(facts.next_attempt_at - now))
            return SessionView("retrying", f"Server unreachable — retrying in {seconds} s")
        return SessionView("retrying", "Server unreachable — retrying")
    if state == "outcome_unknown":
        return SessionView("unknown", "Connection interrupted — checking the session")
    if state == "needs_reauth":
        return SessionView("reauth", "Please sign in again to continue")
    if state == "ended":
        return SessionView("loggedout", "Shift session ended")
    if state in {"logged_out", "authenticating"}:
        return SessionView(
            "loggedout", "Signing in…" if state == "authenticating" else "Signed out"
        )
    if facts.shift_ends_at is not None and facts.shift_ends_at - now <= SHIFT_END_NOTICE_S:
        minutes = max(0, int((facts.shift_ends_at - now) // 60))
        return SessionView("ending", f"Shift ending in {minutes} min — save your work")
    if facts.idle_lock_in is not None:
        return SessionView(
            "locked", f"Locking in {max(0, round(facts.idle_lock_in))} s — touch to stay"
        )
    if state == "refreshing":
        return SessionView("refreshing", f"Signed in as {facts.user} — renewing session")
    return SessionView("active", f"Signed in as {facts.user}")


#: Events that need the nurse's (or IT's) attention, with the words shown for them.
_BANNERS: dict[str, str] = {
    "clock_skew": "This computer's clock is wrong; the kiosk uses the server's time. Tell IT.",
    "token_blacklisted": "The server revoked this session. Please sign in again.",
    "refresh_rejected": "The server would not renew this session. Please sign in again.",
    "session_revoked": "Your password was changed or your account disabled. Please sign in again.",
    "login_failed": "Wrong user name or password.",
    "keyring_unavailable": (
        "No secure key store on this computer: the session is kept in memory only."
    ),
    "shift_cap_approaching": "Your shift session ends soon. Save your work.",
    "shift_cap_reached": "Your shift session has ended.",
    "logout_not_revoked": "Sign-out could not reach the server; the old session expires by itself.",
    "tls_error": "Secure connection to the server failed (certificate). Tell IT.",
    "alert": "",
}


@dataclass(frozen=True)
class BannerView:
    """A banner: severity name, icon and words."""

    severity: str
    icon: str
    text: str


def banner_for(event: SecurityEvent) -> BannerView | None:
    """The banner an event deserves, or None for routine events."""
    kind = event.kind.value
    if kind not in _BANNERS:
        return None
    if kind == "login_failed" and event.data.get("reason") != "invalid_credentials":
        return None
    text = _BANNERS[kind] or event.message
    severity = {Severity.HIGH: "high", Severity.MEDIUM: "medium", Severity.LOW: "low"}.get(
        event.severity, "info"
    )
    icon = "reauth" if severity == "high" else "warning" if severity == "medium" else "info"
    return BannerView(severity, icon, text)


class SessionIndicator(QWidget):
    """The status-bar session indicator: an icon and a sentence."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._icon = QLabel(self)
        self._text = QLabel(self)
        self._text.setTextInteractionFlags(Qt.TextInteractionFlag.NoTextInteraction)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(6, 0, 6, 0)
        layout.addWidget(self._icon)
        layout.addWidget(self._text)
        layout.addStretch(1)
        self.setAccessibleName("Session status")
        self.view: SessionView | None = None

    def show_view(self, view: SessionView) -> None:
        """Show ``view`` (no repaint when nothing changed)."""
        if view == self.view:
            return
        self.view = view
        self._icon.setPixmap(pixmap(view.icon))
        self._icon.setAccessibleName(view.icon)
        self._text.setText(view.text)
        self.setAccessibleDescription(view.text)

    @property
    def text(self) -> str:
        """The sentence shown."""
        return self._text.text()


class Banner(QFrame):
    """A dismissible strip at the top of a window for events that need attention.

    Its icon, words and button are built at the first banner: most windows never show one,
    and every widget costs memory under the application stylesheet (bench/RESULTS.md).
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("banner")
        self._icon: QLabel | None = None
        self._text: QLabel | None = None
        self.setAccessibleName("Notice")
        self.view: BannerView | None = None
        self.hide()

    def _build(self) -> tuple[QLabel, QLabel]:
        if self._icon is None or self._text is None:
            self._icon = QLabel(self)
            self._text = QLabel(self)
            self._text.setWordWrap(True)
            dismiss = QPushButton("Dismiss", self)
            dismiss.setAccessibleName("Dismiss notice")
            dismiss.clicked.connect(self.hide)
            layout = QHBoxLayout(self)
            layout.addWidget(self._icon)
            layout.addWidget(self._text, 1)
            layout.addWidget(dismiss)
        return self._icon, self._text

    def show_banner(self, view: BannerView) -> None:
        """Show ``view`` (a more severe banner replaces a milder one, not the reverse)."""
        order = {"info": 0, "low": 1, "medium": 2, "high": 3}
        # isHidden, not isVisible: a banner in a tab behind the current one is shown but not
        # visible, and must not let a milder event replace its severe one.
        if not self.isHidden() and self.view and order[view.severity] < order[self.view.severity]:
            return
        icon, text = self._build()
        self.view = view
        self.setProperty("severity", view.severity)
        self.style().unpolish(self)
        self.style().polish(self)
        icon.setPixmap(pixmap(view.icon))
        text.setText(view.text)
        self.setAccessibleDescription(view.text)
        self.show()

    @property
    def text(self) -> str:
        """The words shown ("" before the first banner)."""
        return self._text.text() if self._text is not None else ""
