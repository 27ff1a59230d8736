"""Fast start: the sign-in window is on screen before the heavy dependencies load.

httpx, PyJWT, keyring (and its backend discovery) cost ~0.3 s to import here, more than Qt's
own window (DESIGN §8). :func:`start_kiosk` shows the sign-in window using only light modules,
then loads the application on the next turn of the event loop. A nurse who types and presses
Enter before that is not lost: the form keeps the submission and the application picks it up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QApplication

from kiosk.core.settings import ServerSettings, SessionPolicy
from kiosk.qt.login import LoginWindow, field_label
from kiosk.qt.resources import stylesheet

if TYPE_CHECKING:
    from kiosk.qt.app import KioskApp


class Launcher(QObject):
    """Shows the sign-in window now and builds the application right after.

    Signals:
        shown(): the sign-in window has been through one event-loop turn (it is up).
        ready(object): the :class:`~kiosk.qt.app.KioskApp`, once started.
    """

    shown = Signal()
    ready = Signal(object)

    def __init__(
        self, server: ServerSettings, policy: SessionPolicy | None = None, **app_kwargs: Any
    ) -> None:
        super().__init__()
        self.server = server
        self.policy = policy
        self.app_kwargs = app_kwargs
        self.app: KioskApp | None = None
        qapp = QApplication.instance()
        assert isinstance(qapp, QApplication)
        qapp.setStyleSheet(stylesheet())
        self.login_window = LoginWindow(field_label(server.username_field), server.base_url)
        self.login_window.show()
        self.login_window.form.reset()
        # Timers of equal timeout fire in order: the window is painted, then the app loads.
        QTimer.singleShot(0, self.shown.emit)
        QTimer.singleShot(0, self._finish)

    def _finish(self) -> None:
        from kiosk.qt.app import KioskApp

        self.app = KioskApp(
            self.server, self.policy, login_window=self.login_window, **self.app_kwargs
        )
        self.app.start(show_login=False)
        self.ready.emit(self.app)


def start_kiosk(
    server: ServerSettings, policy: SessionPolicy | None = None, **app_kwargs: Any
) -> Launcher:
    """Show the sign-in window at once; the application follows (``Launcher.ready``)."""
    return Launcher(server, policy, **app_kwargs)
