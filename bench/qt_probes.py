"""Child-process probes for the Qt benchmarks, run by bench/qt_bench.py (one probe a process).

* ``startup-python``: prints the wall-clock time at which this script's first line of work
  runs (interpreter + site start only): what every probe pays before it imports anything.
* ``startup-bare`` / ``startup-kiosk``: print the wall-clock time at which the window has been
  shown and been through one event-loop turn (``QTimer.singleShot(0)`` after ``show()``; the
  kiosk's ``Launcher.shown`` is that same timer). The parent took ``time.time()`` just before
  spawning the process, so the difference is "process start -> window up" for both alike.
* ``rss-floor URL``: prints the resident set size (bytes) of a bare PySide6 window in a process
  that has also imported httpx, PyJWT and keyring (and resolved the keyring backend, as the
  kiosk's default vault does).
* ``rss-floor-fixed URL``: the same floor, with PySide6's source caching corrected as the
  kiosk corrects it (``import kiosk.qt`` first, which imports PySide6 and nothing else of the
  kiosk): the floor of a PySide6 app that does what the kiosk does about it (see
  ``kiosk/qt/__init__.py``). Reported beside ``rss-floor``, never instead of it.
* ``rss-kiosk URL``: signs in through the real :class:`~kiosk.qt.app.KioskApp` with its default
  vault, opens the workspace (its tabs: the ward board, then three charts); prints one JSON object
  with the RSS at three windows (board + two charts) and at four (board + three charts).
* ``rss-steps URL``: the ``rss-kiosk`` path with the RSS (MB) after each step, for finding
  where the memory goes; prints one JSON object (step name -> MB), in order.
* ``rss-maps-floor URL`` / ``rss-maps-kiosk URL``: the ``rss-floor`` / ``rss-kiosk`` states
  with their RSS per memory mapping (MB, from ``/proc/self/smaps``, largest first): which
  libraries' code pages and how much anonymous memory the difference is.
* ``ui-stall URL``: the UI thread's stalls while five windows keep requesting through the
  bridge across N token refreshes; prints one JSON object (see :func:`ui_stall`).
"""

from __future__ import annotations

import itertools
import json
import math
import os
import sys
import time
from collections.abc import Callable

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def _rss() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def startup_python() -> None:
    print(time.time(), flush=True)


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


def _rss_by_mapping() -> dict[str, float]:
    """RSS (MB) per mapped file (``[anon]``, ``[heap]``, ...), largest first."""
    totals: dict[str, int] = {}
    name = "[anon]"
    with open("/proc/self/smaps", encoding="utf-8", errors="replace") as smaps:
        for line in smaps:
            head = line.split(maxsplit=6)
            if "-" in head[0] and len(head) >= 5 and ":" not in head[0]:
                name = head[5].strip() if len(head) > 5 else "[anon]"
            elif head[0] == "Rss:":
                totals[name] = totals.get(name, 0) + int(head[1])
    ordered = sorted(totals.items(), key=lambda item: -item[1])
    return {key: round(kb / 1024, 2) for key, kb in ordered if kb >= 100}


def rss_floor(_url: str, *, report: Callable[[], object] = _rss) -> None:
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
    QTimer.singleShot(200, lambda: (print(json.dumps(report()), flush=True), app.quit()))
    app.exec()


def rss_maps_floor(url: str) -> None:
    rss_floor(url, report=_rss_by_mapping)


def rss_maps_kiosk(url: str) -> None:
    app, kiosk, _ = _four_windows(url)
    print(json.dumps(_rss_by_mapping()), flush=True)
    _close(kiosk)
    del app


def rss_floor_fixed(url: str) -> None:
    import kiosk.qt  # noqa: F401 - PySide6 plus the correction of its source caching, only

    rss_floor(url)


def _signed_in(url: str, **app_kwargs: object) -> object:
    """A started KioskApp signed in as alice, its ward board showing patients."""
    from kiosk.core import ServerSettings
    from kiosk.qt.app import KioskApp

    kiosk = KioskApp(ServerSettings(base_url=url), **app_kwargs)  # type: ignore[arg-type]
    kiosk.start()
    _sign_in(kiosk)
    return kiosk


def _sign_in(kiosk: object) -> None:
    """Sign alice in through the sign-in window; return when the ward board shows patients."""
    from kiosk.qt.walkthrough import wait_until

    form = kiosk.login_window.form  # type: ignore[attr-defined]
    form.username.setText("alice")
    form.password.setText("alice-secret")
    form.button.click()
    windows = kiosk.windows  # type: ignore[attr-defined]
    wait_until(lambda: bool(windows), 30, "the workspace")
    board = windows[0]
    wait_until(lambda: board.table.rowCount() >= 4, 30, "patients")


def _close(kiosk: object) -> None:
    """Sign out (no live token is left on the server) and shut the application down."""
    kiosk.bridge.run_sync(_logout)  # type: ignore[attr-defined]
    kiosk.shutdown()  # type: ignore[attr-defined]


def _open_chart(kiosk: object, row: int) -> None:
    from kiosk.qt.walkthrough import wait_until

    windows = kiosk.windows  # type: ignore[attr-defined]
    before = len(windows)
    board = windows[0]
    board.table.selectRow(row)
    board.open_button.click()
    wait_until(lambda: len(windows) == before + 1, 30, f"chart {row}")


def _four_windows(url: str) -> tuple[object, object, dict[int, int]]:
    """QApplication, a KioskApp signed in (production default vault: the OS keyring if usable,
    else memory) with the ward board and three charts open, and the RSS by window count."""
    from PySide6.QtWidgets import QApplication

    app = QApplication([])
    from kiosk.qt.walkthrough import pump

    kiosk = _signed_in(url)
    rss: dict[int, int] = {}
    for row in (0, 1, 2):
        _open_chart(kiosk, row)
        pump(0.5)
        rss[len(kiosk.windows)] = _rss()  # type: ignore[attr-defined]
    return app, kiosk, rss


def rss_kiosk(url: str) -> None:
    app, kiosk, rss = _four_windows(url)
    print(
        json.dumps(
            {
                "rss_3_windows": rss[3],
                "rss_4_windows": rss[4],
                "vault": kiosk.vault_description,  # type: ignore[attr-defined]
            }
        ),
        flush=True,
    )
    _close(kiosk)
    del app


def rss_steps(url: str) -> None:
    steps: dict[str, float] = {"interpreter": _rss() / 2**20}
    from PySide6.QtWidgets import QApplication

    app = QApplication([])
    steps["QApplication"] = _rss() / 2**20
    import kiosk.qt  # noqa: F401 - the Qt shell before the core, as in rss-kiosk
    from kiosk.core import ServerSettings
    from kiosk.qt.app import KioskApp
    from kiosk.qt.walkthrough import pump

    steps["kiosk.qt.app imported (with httpx, PyJWT)"] = _rss() / 2**20
    kiosk_app = KioskApp(ServerSettings(base_url=url))
    steps["KioskApp built"] = _rss() / 2**20
    kiosk_app.start()
    pump(0.3)
    steps["started (network thread, vault, sign-in window)"] = _rss() / 2**20
    _sign_in(kiosk_app)
    pump(0.5)
    steps["signed in, ward board with patients"] = _rss() / 2**20
    for row in (0, 1, 2):
        _open_chart(kiosk_app, row)
        pump(0.5)
        steps[f"chart window {row + 1}"] = _rss() / 2**20
    print(json.dumps(steps), flush=True)
    _close(kiosk_app)
    del app


async def _logout(manager: object) -> None:
    await manager.logout()  # type: ignore[attr-defined]


async def _metrics(manager: object) -> dict[str, object]:
    return manager.metrics()  # type: ignore[attr-defined,no-any-return]


def _percentile(ordered: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def _stall_summary(stalls: list[float]) -> dict[str, object]:
    ordered = sorted(stalls)
    if not ordered:
        return {"samples": 0}
    return {
        "samples": len(ordered),
        "p50_ms": _percentile(ordered, 0.50) * 1000,
        "p99_ms": _percentile(ordered, 0.99) * 1000,
        "max_ms": ordered[-1] * 1000,
        "over_16ms": sum(s > 0.016 for s in ordered),
        "over_50ms": sum(s > 0.050 for s in ordered),
    }


def ui_stall(url: str, refreshes: str = "20", windows: str = "5", period_ms: str = "5") -> None:
    """UI-thread stalls while every window keeps requesting through the bridge.

    The real KioskApp (offscreen) signs in against ``url`` (a server with a short access
    lifetime), opens the ward board and ``windows - 1`` chart windows, and then every window
    re-issues its own ``reload()`` (a GET through ``bridge.request`` -> TokenManager -> httpx in
    the network thread) as soon as its previous answer has been shown, so each window always
    has one request in flight. This goes on until the application has seen ``refreshes``
    successful token refreshes (its ``refreshed`` signal; checked against the manager's
    metrics afterwards, outside the measured window).

    Stall: a ``period_ms`` repeating ``Qt.PreciseTimer`` heartbeat runs in the UI thread for the
    whole load; for each pair of consecutive heartbeats, stall = max(0, actual gap - period)
    (``time.perf_counter``). It is how much later than due the UI thread got back to its event
    loop: the time it spent in slots (result deliveries, table updates), waiting for the GIL
    held by the network thread, or not scheduled by the OS. The same heartbeat is first run
    for two seconds with the application idle (signed in, no requests), as the reading of the
    timer's own jitter on this machine.
    """
    from PySide6.QtCore import QEventLoop, Qt, QTimer
    from PySide6.QtWidgets import QApplication

    app = QApplication([])
    from kiosk.core import MemoryVault
    from kiosk.qt.walkthrough import pump

    n_refreshes, n_windows, period = int(refreshes), int(windows), int(period_ms) / 1000
    kiosk = _signed_in(url, vault=MemoryVault())
    for row in range(n_windows - 1):
        _open_chart(kiosk, row)
    all_windows = list(kiosk.windows)  # type: ignore[attr-defined]
    pump(0.5)  # the first loads have landed

    beats: list[float] = []
    heartbeat = QTimer()
    heartbeat.setTimerType(Qt.TimerType.PreciseTimer)
    heartbeat.setInterval(int(period_ms))
    heartbeat.timeout.connect(lambda: beats.append(time.perf_counter()))
    # While measuring, the UI thread runs a real Qt event loop (walkthrough.pump sleeps between
    # passes, which would show up as stalls of its own).
    loop = QEventLoop()

    def run_loop(seconds: float) -> bool:
        """Run the event loop until ``loop.quit()`` or ``seconds``; True if it timed out."""
        deadline = QTimer()
        deadline.setSingleShot(True)
        expired: list[bool] = []
        deadline.timeout.connect(lambda: (expired.append(True), loop.quit()))
        deadline.start(int(seconds * 1000))
        loop.exec()
        deadline.stop()
        return bool(expired)

    def stalls() -> list[float]:
        return [max(0.0, b - a - period) for a, b in itertools.pairwise(beats)]

    def ui_thread_times() -> tuple[float, float | None]:
        """This (UI) thread's CPU seconds, and its seconds waiting for a CPU (Linux)."""
        try:
            with open("/proc/thread-self/schedstat", encoding="ascii") as schedstat:
                waited: float | None = int(schedstat.read().split()[1]) / 1e9
        except OSError:
            waited = None
        return time.thread_time(), waited

    # Idle reading: signed in, windows open, nothing requested.
    heartbeat.start()
    run_loop(2.0)
    heartbeat.stop()
    idle = _stall_summary(stalls())
    beats.clear()

    before = kiosk.bridge.run_sync(_metrics)  # type: ignore[attr-defined]
    state = {"running": True, "refreshed": 0, "answers": 0, "failed": 0}

    def on_refreshed() -> None:
        state["refreshed"] += 1
        if state["refreshed"] >= n_refreshes:
            loop.quit()

    kiosk.refreshed.connect(on_refreshed)  # type: ignore[attr-defined]

    def chain(window: object) -> None:
        shown = window._loaded  # type: ignore[attr-defined]

        def loaded(result: object) -> None:
            shown(result)  # the window's own UI update
            if not state["running"]:
                return
            state["answers"] += 1
            state["failed"] += not result.ok  # type: ignore[attr-defined]
            window.reload()  # type: ignore[attr-defined]

        # reload() looks ``self._loaded`` up at call time: the instance attribute wins.
        window._loaded = loaded  # type: ignore[attr-defined]

    for window in all_windows:
        chain(window)
    load_before = os.getloadavg()
    cpu_before, waited_before = ui_thread_times()
    started = time.perf_counter()
    heartbeat.start()
    for window in all_windows:
        window.reload()
    timed_out = run_loop(40 + 5 * n_refreshes)
    heartbeat.stop()
    state["running"] = False
    load_s = time.perf_counter() - started
    cpu_after, waited_after = ui_thread_times()
    load_after = os.getloadavg()
    loaded = stalls()
    pump(1.0)  # let the last requests land before signing out
    after = kiosk.bridge.run_sync(_metrics)  # type: ignore[attr-defined]
    result = {
        **_stall_summary(loaded),
        "period_ms": int(period_ms),
        "windows": len(all_windows),
        "refreshes_signalled": state["refreshed"],
        "refresh_successes": after["refresh_successes"] - before["refresh_successes"],
        "refresh_failures": after["refresh_failures"] - before["refresh_failures"],
        "user_visible_401": after["user_visible_401"] - before["user_visible_401"],
        "gate_timeouts": after["gate_timeouts"] - before["gate_timeouts"],
        "answers": state["answers"],
        "answers_failed": state["failed"],
        "load_s": load_s,
        "answers_per_s": state["answers"] / load_s if load_s else None,
        "timed_out": timed_out,
        # Context for the stalls: how much the UI thread itself ran, how long it was ready but
        # waited for a CPU (the rest of a stall is off-CPU: mostly waiting for the GIL), and
        # the machine's 1-minute load average before and after.
        "ui_thread_cpu_s": cpu_after - cpu_before,
        "ui_thread_runqueue_wait_s": (
            waited_after - waited_before
            if waited_after is not None and waited_before is not None
            else None
        ),
        "loadavg_1min": [load_before[0], load_after[0]],
        "idle": idle,
    }
    print(json.dumps(result), flush=True)
    _close(kiosk)
    del app


if __name__ == "__main__":
    probe, *rest = sys.argv[1:]
    {
        "startup-python": startup_python,
        "startup-bare": startup_bare,
        "startup-kiosk": startup_kiosk,
        "rss-floor": rss_floor,
        "rss-floor-fixed": rss_floor_fixed,
        "rss-kiosk": rss_kiosk,
        "rss-steps": rss_steps,
        "rss-maps-floor": rss_maps_floor,
        "rss-maps-kiosk": rss_maps_kiosk,
        "ui-stall": ui_stall,
    }[probe](*rest)
