"""User activity for the idle lock: input events seen at the kiosk's top-level windows.

The idle lock needs the time of the nurse's last key press, click, wheel turn or touch. The
obvious way, an event filter on the whole application, hands *every* event of *every* object
to Python. Besides the work that costs the UI thread, PySide6 then has to find a Python type
for every internal Qt object it is given (a table's corner button, a scroll bar's container,
the native window); to do that it creates the Python types of every class in QtWidgets and
QtGui, about 220 of them with their enums, which are otherwise created on first use: 4.1 MB
of the kiosk's resident memory in the memory probe (bench/RESULTS.md).

So the filter sits on the native windows (:class:`QWindow`) of the kiosk's top-level widgets
instead: the sign-in window, the workspace and the re-authentication dialog. Every input event
from the platform (mouse, keyboard, touch, wheel) is delivered to its window first, before Qt
passes it on to the widget under the pointer or with the focus, so nothing a nurse does is
missed. A window's native window is made when it is shown and freed when it is released
(:meth:`~kiosk.qt.login.LoginWindow.hide_and_release`), so the application calls
:meth:`ActivityMonitor.watch` after every show.

Input synthesised straight into a widget (``QTest.mouseClick(widget)``) bypasses the window
and is not activity; the QA shift simulator sends its input through the window, as a screen
does (kiosk/testing/qtshift.py).
"""

from __future__ import annotations

import time

from PySide6.QtCore import QEvent, QObject
from PySide6.QtWidgets import QWidget

_ACTIVITY = frozenset(
    {
        QEvent.Type.KeyPress,
        QEvent.Type.MouseButtonPress,
        QEvent.Type.MouseMove,
        QEvent.Type.Wheel,
        QEvent.Type.TouchBegin,
    }
)


class ActivityMonitor(QObject):
    """Notes the time of the last user input in the windows it watches."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.last_activity = time.monotonic()

    def watch(self, widget: QWidget) -> None:
        """Watch ``widget``'s native window (again, if it was made anew since)."""
        handle = widget.windowHandle()
        if handle is not None:
            handle.installEventFilter(self)  # installing twice keeps one filter

    def note(self) -> None:
        """Count as activity now."""
        self.last_activity = time.monotonic()

    @property
    def idle_s(self) -> float:
        """Seconds since the last activity."""
        return time.monotonic() - self.last_activity

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() in _ACTIVITY:
            self.last_activity = time.monotonic()
        return False
