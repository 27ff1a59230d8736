"""Cyclic garbage is collected in the UI thread only, never in the network thread."""

from __future__ import annotations

import gc
import threading

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QWidget

from kiosk.qt import collector


class _Window(QWidget):
    """A Python subclass, as every kiosk window is (PySide deletes those where collected)."""


async def _allocate_a_lot(_manager) -> int:
    # Enough container allocations for hundreds of automatic collections, were they enabled.
    made = 0
    for _ in range(300_000):
        pair: list[object] = []
        pair.append(pair)  # a cycle: only a collection frees it
        made += 1
    return made


def test_a_widget_in_a_cycle_dies_in_the_ui_thread(qtbot, make_app, simplejwt_server):
    app = make_app(simplejwt_server)
    assert not gc.isenabled()
    died_in: list[str] = []
    gc.collect()  # generation 0 starts empty: the UI thread allocates too little to collect
    widget = _Window()
    widget.itself = widget  # a cycle through the wrapper: freed by a collection only
    widget.destroyed.connect(
        lambda *_: died_in.append(threading.current_thread().name),
        Qt.ConnectionType.DirectConnection,
    )
    del widget
    assert app.bridge.run_sync(_allocate_a_lot) == 300_000
    assert died_in == []  # the network thread's allocations collected nothing
    thresholds = gc.get_threshold()
    gc.set_threshold(1, 1, 1)  # a full collection is due at the collector's next turn
    try:
        qtbot.waitUntil(lambda: died_in != [], timeout=5000)
    finally:
        gc.set_threshold(*thresholds)
    assert died_in == ["MainThread"]


def test_install_is_idempotent_and_keeps_automatic_collection_off(qapp):
    first = collector.install()
    gc.enable()  # something turned it back on
    assert collector.install() is first
    assert not gc.isenabled()


def test_only_a_due_collection_runs():
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        gc.collect()
        assert gc.get_count()[0] < gc.get_threshold()[0]
        assert collector.collect_due_generations() == 0  # nothing due: nothing collected
        cycles = []
        for _ in range(gc.get_threshold()[0] + 10):
            item: list[object] = []
            item.append(item)
            cycles.append(item)
        cycles.clear()  # now garbage, and generation 0's count is past its threshold
        assert collector.collect_due_generations() >= gc.get_threshold()[0]
        assert gc.get_count()[0] < gc.get_threshold()[0]
    finally:
        if was_enabled:
            gc.enable()
