"""Renders the main screens to PNG (offscreen works): what users judge first.

``take_screenshots(directory, base_url)`` signs in to a running reference server and captures
the sign-in window, the workspace with its indicators, a retrying (server unreachable) state,
the lock screen, the re-authentication dialog over the workspace and the security panel.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import httpx
from PySide6.QtCore import QPoint
from PySide6.QtGui import QColor, QPainter, QPixmap

from kiosk.core import BackoffPolicy, MemoryVault, ServerSettings, SessionPolicy, TokenManager
from kiosk.qt.app import KioskApp
from kiosk.qt.walkthrough import front_window, pump, save_screenshot, wait_until
from kiosk.qt.ward import PatientChart, WardBoard
from kiosk.testing.faults import FaultInjector


def _composite(window: Any, dialog: Any, path: Path) -> Path:
    """The window with the dialog drawn centred over it (they are separate top-levels)."""
    top = front_window(window)
    pump(0.05)
    base: QPixmap = top.grab()
    over: QPixmap = dialog.grab()
    painter = QPainter(base)
    painter.fillRect(base.rect(), QColor(0, 0, 0, 110))
    painter.drawPixmap(
        QPoint((base.width() - over.width()) // 2, (base.height() - over.height()) // 3), over
    )
    painter.end()
    path.parent.mkdir(parents=True, exist_ok=True)
    base.save(str(path), "PNG")
    return path


def take_screenshots(directory: Path, base_url: str, user: str = "alice") -> list[Path]:
    """Capture the main screens into ``directory``; return the files written."""
    faults = FaultInjector()
    policy = SessionPolicy(backoff=BackoffPolicy(base_s=20.0, cap_s=30.0))
    app = KioskApp(ServerSettings(base_url=base_url), policy, vault=MemoryVault(), transport=faults)
    app.start()
    shots: list[Path] = []
    try:
        shots.append(save_screenshot(app.login_window, directory / "login.png"))
        form = app.login_window.form
        form.username.setText(user)
        form.password.setText(f"{user}-secret")
        form.button.click()
        wait_until(lambda: bool(app.windows), 30, "the workspace")
        board = app.windows[0]
        if not isinstance(board, WardBoard):
            raise RuntimeError("the screenshots need the demo ward board as the workspace")
        wait_until(lambda: board.table.rowCount() > 0, 30, "patients")
        board.table.selectRow(0)
        board.open_button.click()
        chart = app.windows[-1]
        if not isinstance(chart, PatientChart):
            raise RuntimeError("the ward board opened no patient chart")
        wait_until(lambda: chart.observations.count() >= 0, 5, "the chart")
        chart.value.setText("118/76")
        shots.append(save_screenshot(board, directory / "workspace.png"))

        async def refresh(manager: TokenManager) -> None:
            await manager.refresh()

        faults.outage()
        app.bridge.submit(refresh)
        wait_until(lambda: "Server unreachable" in board.indicator.text, 30, "the retrying state")
        shots.append(save_screenshot(chart, directory / "retrying.png"))
        faults.restore()

        async def retry_now(manager: TokenManager) -> None:
            await manager.refresh()

        app.bridge.run_sync(retry_now, timeout=60)
        wait_until(lambda: app.bridge.state == "active", 60, "recovery")

        app.lock()
        wait_until(lambda: board.locked, 5, "the lock")
        shots.append(save_screenshot(board, directory / "lock.png"))
        page = board.lock_page.form
        page.password.setText(f"{user}-secret")
        page.button.click()
        wait_until(lambda: not app.locked, 30, "the unlock")

        async def revoke(manager: TokenManager) -> None:
            assert manager.vault is not None
            stored = manager.vault.load()
            assert stored is not None
            async with httpx.AsyncClient() as raw:
                await raw.post(f"{base_url}/api/token/blacklist/", json={"refresh": stored.refresh})
            # The refresh fails for good; the UI shows the outcome.
            with contextlib.suppress(Exception):
                await manager.refresh()

        app.bridge.run_sync(revoke)
        wait_until(lambda: app.reauth_dialog is not None, 10, "the re-authentication dialog")
        assert app.reauth_dialog is not None
        shots.append(_composite(chart, app.reauth_dialog, directory / "reauthenticate.png"))
        dialog_form = app.reauth_dialog.form
        dialog_form.password.setText(f"{user}-secret")
        dialog_form.button.click()
        wait_until(lambda: app.reauth_dialog is None, 30, "re-authentication")

        panel = app.open_window("security")
        wait_until(lambda: panel.events.count() > 0, 5, "events")  # type: ignore[attr-defined]
        pump(0.3)
        shots.append(save_screenshot(panel, directory / "security-panel.png"))
        app.sign_out()
        wait_until(lambda: not app.windows, 30, "the sign-out")
    finally:
        app.shutdown()
    return shots
