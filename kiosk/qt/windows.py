"""The window registry and :class:`KioskWindow`, the frame every kiosk window shares.

A hospital adds its own windows through the ``kiosk.windows`` entry-point group: each entry
point names a function ``register(registry)`` that calls :meth:`WindowRegistry.add`. The ward
demo, the security panel and the policy page register themselves the same way.

Every KioskWindow has the session indicator in its status bar, the attention banner on top,
and a stack whose second page is the lock page: locking switches the page, so the window's
own widgets (and whatever is half-typed in them) stay exactly as they were, unseen. Windows
are shown as tabs of the workspace (:mod:`kiosk.qt.workspace`, which says why), so the session's
commands and shortcuts, and the title that says "Locked", are the workspace's, not each window's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from PySide6.QtWidgets import QMainWindow, QStackedWidget, QVBoxLayout, QWidget

from kiosk.qt.indicators import Banner, SessionIndicator
from kiosk.qt.login import LockPage

if TYPE_CHECKING:
    from kiosk.qt.app import KioskApp

log = logging.getLogger(__name__)

WindowFactory = Callable[..., "KioskWindow"]


@dataclass(frozen=True)
class WindowKind:
    """A kind of window the workspace can open."""

    name: str
    title: str
    factory: WindowFactory
    #: Shown in the workspace's "open" menu (chart windows are opened from the ward board).
    in_menu: bool = True


class WindowRegistry:
    """The kinds of windows available, by name."""

    def __init__(self) -> None:
        self._kinds: dict[str, WindowKind] = {}

    def add(self, name: str, title: str, factory: WindowFactory, *, in_menu: bool = True) -> None:
        """Register a window kind (a later registration of the same name wins)."""
        self._kinds[name] = WindowKind(name, title, factory, in_menu)

    def get(self, name: str) -> WindowKind:
        """The kind called ``name``.

        Raises:
            KeyError: no such kind.
        """
        return self._kinds[name]

    def kinds(self) -> list[WindowKind]:
        """Every registered kind, in registration order."""
        return list(self._kinds.values())

    def load_entry_points(self, group: str = "kiosk.windows") -> None:
        """Let every installed ``kiosk.windows`` plug-in register its windows."""
        for point in entry_points(group=group):
            try:
                point.load()(self)
            except Exception:
                log.exception("window plug-in %s failed to register", point.name)


class KioskWindow(QMainWindow):
    """A workspace window: content, banner, session indicator and lock page."""

    kind = "window"

    def __init__(self, app: KioskApp, title: str) -> None:
        super().__init__()
        self.app = app
        self.setWindowTitle(f"{title} — kiosk")
        self.setAccessibleName(title)
        self.banner = Banner()
        self.content = QWidget()
        self._lock_page: LockPage | None = None
        page = QWidget()
        column = QVBoxLayout(page)
        column.setContentsMargins(8, 8, 8, 8)
        column.addWidget(self.banner)
        column.addWidget(self.content, 1)
        self.stack = QStackedWidget()
        self.stack.addWidget(page)
        self.setCentralWidget(self.stack)
        self.indicator = SessionIndicator()
        self.statusBar().addWidget(self.indicator, 1)
        self.statusBar().setSizeGripEnabled(False)  # a tab, not a window: the workspace resizes

    @property
    def lock_page(self) -> LockPage:
        """The lock page (built on first use: most windows are never locked)."""
        if self._lock_page is None:
            self._lock_page = LockPage(self.app.username_label)
            self._lock_page.form.submitted.connect(self.app.unlock)
            self.stack.addWidget(self._lock_page)
        return self._lock_page

    @property
    def locked(self) -> bool:
        """Whether the lock page is showing."""
        return self.stack.currentIndex() == 1

    def show_locked(self, user: str | None) -> None:
        """Hide the content behind the lock page."""
        self.lock_page.prepare(user)
        self.stack.setCurrentWidget(self.lock_page)

    def show_unlocked(self) -> None:
        """Bring the content back, as it was."""
        self.stack.setCurrentIndex(0)

    def session_changed(self) -> None:
        """Hook: the session state changed (windows refresh their data here if they wish)."""

    def closeEvent(self, event: Any) -> None:
        self.app.window_closed(self)
        super().closeEvent(event)
