"""The workspace: the one top-level window of a signed-in session, with every kiosk window in it.

The ward board, the patient charts, the security panel and the policy page are *windows*
(:class:`~kiosk.qt.windows.KioskWindow`, each with its own banner, session indicator and lock
page), shown as the workspace's tabs rather than as separate top-level windows. Why, where
DESIGN §6 pictures one top-level window per kiosk window:

* A kiosk runs full screen, usually without a window manager's task bar (a kiosk session or
  shell replacement). Separate top-level windows then hide each other with no way to switch
  but a menu; tabs keep every open chart one tap away, and a 44 px tab is a touch target.
* Each shown top-level window holds a backing store, an image the size of the window: 8.3 MB
  per maximised window on a full-HD screen, 2.3 MB at 900x640 offscreen. Four windows cost
  four of them; the workspace costs one, however many charts are open (bench/RESULTS.md).
* Locking has one surface to cover: the tab bar (with the patients' names) is hidden along
  with every window's content, and nothing can be switched to.

No menu bar: its items are about 22 px high, too small to tap. The session's commands are
44 px buttons beside the tabs (*Open*, *Lock*, *Sign out*); their shortcuts (Ctrl+L lock,
Ctrl+Shift+Q sign out, Ctrl+W close the window in front) live here, once: in tabs, one
shortcut per window would be ambiguous and fire none. Ctrl+Tab / Ctrl+Shift+Tab switch windows
(QTabWidget's own keys). The *Open* menu is built at its first use: most shifts never open it,
and every widget costs memory under the application stylesheet (bench/RESULTS.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QHBoxLayout,
    QMainWindow,
    QMenu,
    QTabBar,
    QTabWidget,
    QToolButton,
    QWidget,
)

if TYPE_CHECKING:
    from kiosk.qt.app import KioskApp
    from kiosk.qt.windows import KioskWindow


class Workspace(QMainWindow):
    """The signed-in session's window: a tab per kiosk window and the session's commands."""

    def __init__(self, app: KioskApp) -> None:
        super().__init__()
        self.app = app
        self.setAccessibleName("Workspace")
        self.tabs = QTabWidget()
        self.tabs.setAccessibleName("Open windows")
        self.tabs.tabBar().setAccessibleName("Windows")
        self.tabs.setDocumentMode(True)
        # Many charts on a narrow screen: shorten the names before resorting to scroll arrows.
        self.tabs.setElideMode(Qt.TextElideMode.ElideRight)
        self.tabs.currentChanged.connect(self._current_changed)
        self.setCentralWidget(self.tabs)
        self._locked = False
        self._open_menu: QMenu | None = None
        self.commands = QWidget()
        self.commands.setAccessibleName("Session commands")
        row = QHBoxLayout(self.commands)
        row.setContentsMargins(0, 0, 4, 0)
        self.open_button = self._command("&Open", "Open a window (Alt+O)", self.show_open_menu, row)
        self.lock_button = self._command("Lock", "Lock now (Ctrl+L)", app.lock, row)
        self.sign_out_button = self._command(
            "Sign out", "Sign out (Ctrl+Shift+Q)", app.sign_out, row
        )
        self.tabs.setCornerWidget(self.commands, Qt.Corner.TopRightCorner)
        for shortcut, slot in (
            ("Ctrl+L", app.lock),
            ("Ctrl+Shift+Q", app.sign_out),
            ("Ctrl+W", self.close_current),
        ):
            action = QAction(self)
            action.setShortcut(QKeySequence(shortcut))
            action.triggered.connect(slot)
            self.addAction(action)
        self.resize(1024, 720)
        self.setWindowTitle("kiosk")

    def _command(self, text: str, name: str, slot: Any, row: QHBoxLayout) -> QToolButton:
        button = QToolButton()
        button.setText(text)
        button.setAccessibleName(name)
        button.setToolTip(name)
        button.clicked.connect(slot)
        row.addWidget(button)
        return button

    def show_open_menu(self) -> None:
        """Pop up the menu of windows that can be opened (built on first use)."""
        if self._open_menu is None:
            menu = QMenu(self)
            menu.setAccessibleName("Open a window")
            open_window = self.app.open_window
            for kind in self.app.registry.kinds():
                if kind.in_menu:
                    # ``n=kind.name`` binds the name now; nothing in the lambda refers to a
                    # window, so no closed window is kept alive by a slot (a cycle through Qt
                    # that Python's GC cannot see).
                    action = menu.addAction(kind.title)
                    action.triggered.connect(lambda _=False, n=kind.name: open_window(n))
            self._open_menu = menu
        button = self.open_button
        self._open_menu.popup(button.mapToGlobal(button.rect().bottomLeft()))

    @property
    def open_menu(self) -> QMenu | None:
        """The *Open* menu, once it has been shown."""
        return self._open_menu

    # -- windows --------------------------------------------------------------------------

    def add(self, window: KioskWindow, *, closable: bool = True) -> None:
        """Show ``window`` as a new tab, in front.

        Args:
            window: the kiosk window.
            closable: whether its tab has a close button (the window the session opens with,
                the ward board, has none: the workspace is never left empty by a stray tap).
        """
        index = self.tabs.addTab(window, window.accessibleName())
        self.tabs.setTabToolTip(index, window.accessibleName())
        if closable:
            # Our own button, not QTabBar's: its close button is 20 px, too small to tap.
            close = QToolButton()
            close.setObjectName("tabClose")
            close.setText("\N{MULTIPLICATION SIGN}")
            close.setToolTip("Close (Ctrl+W)")
            close.setAccessibleName(f"Close {window.accessibleName()}")
            close.clicked.connect(window.close)
            self.tabs.tabBar().setTabButton(index, QTabBar.ButtonPosition.RightSide, close)
        self.tabs.setCurrentIndex(index)

    def remove(self, window: KioskWindow) -> None:
        """Take a closed window out (the caller's last reference frees it)."""
        index = self.tabs.indexOf(window)
        if index >= 0:
            self.tabs.removeTab(index)
            # removeTab leaves the stack as its parent, which would keep it for the session.
            window.setParent(None)

    def show_window(self, window: QWidget) -> None:
        """Bring ``window``'s tab to the front."""
        if self.tabs.indexOf(window) >= 0:
            self.tabs.setCurrentWidget(window)

    def current(self) -> KioskWindow | None:
        """The window in front, if any."""
        from kiosk.qt.windows import KioskWindow

        widget = self.tabs.currentWidget()
        return widget if isinstance(widget, KioskWindow) else None

    def close_current(self) -> None:
        """Close the window in front (Ctrl+W), unless it is the home window (no close button)."""
        index = self.tabs.currentIndex()
        bar = self.tabs.tabBar()
        if index >= 0 and bar.tabButton(index, QTabBar.ButtonPosition.RightSide) is not None:
            widget = self.tabs.widget(index)
            if widget is not None:
                widget.close()  # KioskWindow.closeEvent tells the app, which calls remove()

    def _current_changed(self, _index: int) -> None:
        self._update_title()

    def _update_title(self) -> None:
        if self._locked:
            self.setWindowTitle("Locked — kiosk")
            return
        window = self.current()
        self.setWindowTitle(f"{window.accessibleName()} — kiosk" if window else "kiosk")

    # -- lock -----------------------------------------------------------------------------

    def show_locked(self) -> None:
        """Hide the tabs (they name patients) and the commands; disable the shortcuts."""
        self._set_open(False)

    def show_unlocked(self) -> None:
        """Bring the tabs, commands and shortcuts back."""
        self._set_open(True)

    def _set_open(self, shown: bool) -> None:
        self._locked = not shown
        self.tabs.tabBar().setVisible(shown)
        self.commands.setVisible(shown)
        if self._open_menu is not None and not shown:
            self._open_menu.hide()
        for action in self.actions():
            action.setEnabled(shown)
        self._update_title()

    def release(self) -> None:
        """Hide, and free the native window with its backing store until shown again."""
        self.hide()
        self.destroy()
