"""Python's cyclic garbage collector, run in the UI thread only.

CPython runs a collection in whichever thread allocates past the collector's threshold. With
the network thread busy in httpx, that is often the network thread, and a collected cycle that
holds Qt objects (a closed window and the callbacks that refer to it, a previous session's
sign-in window) then destroys them *there*, while the UI thread walks the same widgets. CI
crashed exactly so (a core dump, 2026-12-04): the network thread in ``gc_collect_main`` ->
``QWidget::~QWidget``, the UI thread in ``QApplicationPrivate::notifyActiveWindowChange``
reading a top-level widget that was half destroyed. Qt objects must die in their own thread.

So :func:`install` turns automatic collection off and runs the same generational policy from a
timer in the UI thread: the pattern of pyqtgraph's ``GarbageCollector`` (after Erik Janssens,
"Should the Python garbage collector be disabled in PyQt applications", 2014). It is
hand-written here because it is a dozen lines and no library ships it apart from a plotting
toolkit. Reference counting still frees most objects at once, in the thread that drops the last
reference; only cycles wait for the timer, at most :data:`INTERVAL_MS`.

Once installed it stays for the life of the QApplication (a collection can only be safe again
when no other thread runs Python, which in a kiosk is never).
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QCoreApplication, QObject, QTimer, Slot

INTERVAL_MS = 500


def collect_due_generations() -> int:
    """Collect as CPython's automatic collector would now, if anything is due.

    A collection is due once generation 0's count passes its threshold; it then collects the
    oldest generation whose count passed its own (CPython's ``gc_collect_generations``, less
    its rule that defers a full collection until a quarter of the long-lived objects are new:
    :func:`install` freezes the start-up heap instead, which keeps full collections short).

    Returns:
        The number of unreachable objects found.
    """
    counts = gc.get_count()
    thresholds = gc.get_threshold()
    if counts[0] <= thresholds[0]:
        return 0
    for generation in (2, 1):
        if counts[generation] > thresholds[generation]:
            return gc.collect(generation)
    return gc.collect(0)


class UiThreadCollector(QObject):
    """Runs :func:`collect_due_generations` every :data:`INTERVAL_MS` in the UI thread."""

    def __init__(self, parent: QObject) -> None:
        super().__init__(parent)
        self.setObjectName("kiosk-ui-thread-collector")
        self._timer = QTimer(self)
        self._timer.timeout.connect(self.collect)
        self._timer.start(INTERVAL_MS)

    @Slot()
    def collect(self) -> None:
        """Collect what is due now."""
        collect_due_generations()


def install() -> UiThreadCollector:
    """Turn automatic collection off and collect from the UI thread instead (idempotent).

    The first call also freezes what exists (the imported modules, Qt's Python types): it is
    never garbage, and a full collection no longer walks it. Must be called in the UI thread,
    with the QApplication created, before another thread starts running Python.
    """
    app = QCoreApplication.instance()
    if app is None:
        raise RuntimeError("the UI-thread collector needs the QApplication")
    gc.disable()
    existing = app.findChild(UiThreadCollector, "kiosk-ui-thread-collector")
    if isinstance(existing, UiThreadCollector):
        return existing
    gc.collect()
    gc.freeze()
    return UiThreadCollector(app)
