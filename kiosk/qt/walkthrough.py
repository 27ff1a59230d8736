"""A scripted short shift through the real application: the self-test and the headless demo.

:class:`Walkthrough` drives a started :class:`KioskApp` the way a nurse would - typing into
the sign-in form, opening the ward board and two charts, waiting for a proactive token
refresh, recording an observation, locking, resuming (checking that half-typed text
survived) and signing out - and times each step. It pumps the Qt event loop while it waits,
so the application behaves exactly as it does interactively; it works offscreen.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEventLoop
from PySide6.QtWidgets import QApplication, QWidget

from kiosk.core import TokenManager
from kiosk.qt.app import KioskApp
from kiosk.qt.ward import PatientChart, WardBoard
from kiosk.qt.workspace import Workspace


class StepFailed(Exception):
    """A walk-through step did not reach its goal."""


@dataclass
class Step:
    """One step's outcome."""

    name: str
    ok: bool
    ms: float
    detail: str = ""
    indicator: str = ""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)


@dataclass
class WalkthroughResult:
    """Every step, in order."""

    steps: list[Step] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every step passed (and there was at least one)."""
        return bool(self.steps) and all(step.ok for step in self.steps)

    def as_dict(self) -> dict[str, Any]:
        """``{"ok": bool, "steps": [{"name", "ok", "ms", ...}]}``."""
        return {"ok": self.ok, "steps": [step.as_dict() for step in self.steps]}


def pump(seconds: float = 0.0) -> None:
    """Run the Qt event loop for ``seconds`` (at least one pass)."""
    app = QApplication.instance()
    assert app is not None
    end = time.monotonic() + seconds
    while True:
        app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 20)
        if time.monotonic() >= end:
            return
        time.sleep(0.005)


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Pump events until ``condition()`` holds.

    Raises:
        StepFailed: not within ``timeout`` seconds.
    """
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise StepFailed(f"timed out after {timeout:g} s waiting for {what}")
        pump(0.02)


def front_window(widget: QWidget) -> QWidget:
    """The top-level window showing ``widget``, with ``widget``'s workspace tab in front."""
    top = widget.window()
    if isinstance(top, Workspace):
        top.show_window(widget)
    return top


def save_screenshot(widget: QWidget, path: Path) -> Path:
    """Render ``widget``'s window (offscreen too) to a PNG, its workspace tab in front."""
    path.parent.mkdir(parents=True, exist_ok=True)
    top = front_window(widget)
    pump(0.05)
    if not top.grab().save(str(path), "PNG"):
        raise OSError(f"could not write {path}")
    return path


class Walkthrough:
    """Drives ``app`` through a short shift.

    Args:
        app: a started KioskApp showing its sign-in window.
        username: who signs in.
        password: her password.
        refresh_timeout_s: how long to wait for the proactive refresh.
        screenshots: a directory for PNGs of the main screens, if wanted.
        report: called after each step (e.g. to print it).
    """

    def __init__(
        self,
        app: KioskApp,
        username: str,
        password: str,
        *,
        refresh_timeout_s: float = 20 * 60,
        step_timeout_s: float = 30.0,
        screenshots: Path | None = None,
        report: Callable[[Step], None] | None = None,
    ) -> None:
        self.app = app
        self.username = username
        self.password = password
        self.refresh_timeout_s = refresh_timeout_s
        self.step_timeout_s = step_timeout_s
        self.screenshots = screenshots
        self.report = report
        self.result = WalkthroughResult()
        self._refreshes = 0
        app.refreshed.connect(self._count_refresh)

    def _count_refresh(self) -> None:
        self._refreshes += 1

    def run(self) -> WalkthroughResult:
        """Run every step; stop at the first failure (later steps depend on earlier ones)."""
        steps: list[tuple[str, Callable[[], str]]] = [
            ("login", self.login),
            ("open_windows", self.open_windows),
            ("proactive_refresh", self.proactive_refresh),
            ("record_observation", self.record_observation),
            ("lock", self.lock),
            ("resume", self.resume),
            ("sign_out", self.sign_out),
        ]
        for name, action in steps:
            started = time.perf_counter()
            try:
                detail, ok = action(), True
            except Exception as exc:
                detail, ok = f"{type(exc).__name__}: {exc}", False
            step = Step(
                name,
                ok,
                round((time.perf_counter() - started) * 1000, 1),
                detail,
                self._indicator(),
            )
            self.result.steps.append(step)
            if self.report is not None:
                self.report(step)
            if not ok:
                break
        return self.result

    # -- steps ----------------------------------------------------------------------------

    def login(self) -> str:
        window = self.app.login_window
        self._shot(window, "login")
        form = window.form
        form.username.setText(self.username)
        form.password.setText(self.password)
        form.button.click()
        wait_until(
            lambda: bool(self.app.windows) or (form.button.isEnabled() and bool(form.error.text())),
            self.step_timeout_s,
            "the workspace",
        )
        if not self.app.windows:
            raise StepFailed(f"sign-in refused: {form.error.text()}")
        return f"signed in as {self.username}"

    def open_windows(self) -> str:
        board = self._board()
        wait_until(lambda: board.table.rowCount() >= 2, self.step_timeout_s, "the patient list")
        for row in (0, 1):
            board.table.selectRow(row)
            board.open_button.click()
        charts = self._charts()
        if len(charts) < 2:
            raise StepFailed("the chart windows did not open")
        self._shot(board, "workspace")
        return f"ward board ({board.table.rowCount()} patients) and {len(charts)} charts"

    def proactive_refresh(self) -> str:
        before = self._refreshes
        started = time.monotonic()
        wait_until(lambda: self._refreshes > before, self.refresh_timeout_s, "a token refresh")
        if self.app.bridge.state != "active":
            raise StepFailed(f"session is {self.app.bridge.state} after the refresh")

        async def metrics(manager: TokenManager) -> dict[str, Any]:
            return dict(manager.metrics())

        kpis = self.app.bridge.run_sync(metrics)
        if kpis["user_visible_401"]:
            raise StepFailed(f"{kpis['user_visible_401']} requests were refused")
        return f"refreshed after {time.monotonic() - started:.1f} s, before expiry"

    def record_observation(self) -> str:
        chart = self._charts()[0]
        chart.kind_box.setCurrentText("pulse")
        chart.value.setText("72")
        chart.record_button.click()
        wait_until(
            lambda: chart.message.text() not in {"Saving…", ""},
            self.step_timeout_s,
            "the observation to be saved",
        )
        if chart.message.text() != "Saved.":
            raise StepFailed(chart.message.text())
        return f"pulse 72 recorded for {chart.patient.get('name')}"

    def lock(self) -> str:
        # Something half-typed that must survive the lock.
        self._charts()[1].value.setText("half-typed note")
        self.app.lock()
        wait_until(lambda: all(w.locked for w in self.app.windows), 5, "every window to lock")
        # isVisibleTo: what each window would show in front, not only the tab that is.
        if any(chart.value.isVisibleTo(chart) for chart in self._charts()):
            raise StepFailed("patient data visible while locked")
        workspace = self.app.workspace
        if workspace is not None and workspace.tabs.tabBar().isVisible():
            raise StepFailed("the tabs (patients' names) visible while locked")
        self._shot(self._board(), "lock")
        return f"{len(self.app.windows)} windows locked"

    def resume(self) -> str:
        form = self._board().lock_page.form
        form.username.setText(self.username)
        form.password.setText(self.password)
        form.button.click()
        wait_until(
            lambda: not self.app.locked or bool(form.error.text() not in {"", "Checking…"}),
            self.step_timeout_s,
            "the unlock",
        )
        if self.app.locked:
            raise StepFailed(f"unlock refused: {form.error.text()}")
        if self._charts()[1].value.text() != "half-typed note":
            raise StepFailed("the half-typed text was lost")
        return "resumed; half-typed text intact"

    def sign_out(self) -> str:
        self.app.open_window("security")
        self._shot(self.app.windows[-1], "security-panel")
        self.app.sign_out()
        wait_until(lambda: not self.app.windows, self.step_timeout_s, "the sign-out")

        async def stored(manager: TokenManager) -> Any:
            return manager.vault.load() if manager.vault is not None else None

        if self.app.bridge.run_sync(stored) is not None:
            raise StepFailed("the vault still holds a session")
        if self.app.bridge.state != "logged_out":
            raise StepFailed(f"session is {self.app.bridge.state}")
        return "signed out; refresh token revoked on the server, vault empty"

    # -- helpers --------------------------------------------------------------------------

    def _board(self) -> WardBoard:
        for window in self.app.windows:
            if isinstance(window, WardBoard):
                return window
        raise StepFailed("no ward board open")

    def _charts(self) -> list[PatientChart]:
        return [w for w in self.app.windows if isinstance(w, PatientChart)]

    def _indicator(self) -> str:
        if self.app.windows:
            return self.app.windows[0].indicator.text
        return self.app.bridge.state

    def _shot(self, widget: QWidget, name: str) -> None:
        if self.screenshots is not None:
            save_screenshot(widget, self.screenshots / f"{name}.png")
