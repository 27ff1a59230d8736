"""Child-process probes for the Qt benchmarks (startup and memory), run by bench/qt_bench.py.

``python bench/qt_probes.py startup-bare`` / ``startup-kiosk`` print the wall-clock time at
which the window has been shown (after one event-loop turn); ``rss-floor URL`` / ``rss-kiosk
URL`` print the resident set size in bytes at the measuring point.
"""

from __future__ import annotations

import os
import sys
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def _rss() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def startup_bare() -> None:
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QWidget

    app = QApplication([])
    window = QWidget()
    window.resize(640, 480)
    window.show()
    QTimer.singleShot(0, lambda: (print(time.time(), flush=True), app.quit()))
    app.exec()


def startup_kiosk() -> None:
    from PySide6.QtWidgets import QApplication

    app = QApplication([])
    from kiosk.core.settings import ServerSettings
    from kiosk.qt.startup import start_kiosk

    launcher = start_kiosk(ServerSettings(base_url="http://127.0.0.1:9"))
    launcher.shown.connect(lambda: print(time.time(), flush=True))
    launcher.ready.connect(lambda kiosk: (kiosk.shutdown(), app.quit()))
    app.exec()


def rss_floor(_url: str) -> None:
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QWidget

    app = QApplication([])
    import httpx  # noqa: F401 - the dependencies' own floor
    import jwt  # noqa: F401
    import keyring

    keyring.get_keyring()
    window = QWidget()
    window.resize(640, 480)
    window.show()
    QTimer.singleShot(200, lambda: (print(_rss(), flush=True), app.quit()))
    app.exec()


def rss_kiosk(url: str) -> None:
    from PySide6.QtWidgets import QApplication

    app = QApplication([])
    from kiosk.core import MemoryVault, ServerSettings
    from kiosk.qt.app import KioskApp
    from kiosk.qt.walkthrough import pump, wait_until

    kiosk = KioskApp(ServerSettings(base_url=url), vault=MemoryVault())
    kiosk.start()
    form = kiosk.login_window.form
    form.username.setText("alice")
    form.password.setText("alice-secret")
    form.button.click()
    wait_until(lambda: bool(kiosk.windows), 30, "the workspace")
    board = kiosk.windows[0]
    wait_until(lambda: board.table.rowCount() >= 2, 30, "patients")  # type: ignore[attr-defined]
    for row in (0, 1):
        board.table.selectRow(row)  # type: ignore[attr-defined]
        board.open_button.click()  # type: ignore[attr-defined]
    wait_until(lambda: len(kiosk.windows) == 3, 30, "three windows")
    pump(0.5)
    print(_rss(), flush=True)
    kiosk.bridge.run_sync(_logout)
    kiosk.shutdown()
    del app


async def _logout(manager: object) -> None:
    await manager.logout()  # type: ignore[attr-defined]


if __name__ == "__main__":
    probe, *rest = sys.argv[1:]
    {
        "startup-bare": startup_bare,
        "startup-kiosk": startup_kiosk,
        "rss-floor": rss_floor,
        "rss-kiosk": rss_kiosk,
    }[probe](*rest)
