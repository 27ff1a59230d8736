"""Whole shifts through the real Qt application: :class:`QtShiftSimulator`.

:class:`~kiosk.testing.shift.ShiftSimulator` plays a :class:`~kiosk.testing.shift.ShiftPlan`
with headless core clients. This module plays the same plan through the *real* kiosk: a
:class:`~kiosk.qt.app.KioskApp` (its bridge, its network thread, its one TokenManager) against a
real gunicorn :class:`~kiosk.testing.server.runner.ReferenceServer`, with ``plan.windows`` real
windows - the ward board and ``windows - 1`` patient charts, tabs of the workspace - driven by
taps and key presses delivered to the workspace's native window as a touch screen delivers them
(:class:`ScreenInput`, through ``QTest``), from the UI thread:

* **user activity**: each window has a Poisson stream of work at the timeline's rate. On the
  ward board it is a click on *Reload* (``GET /api/patients/``); on a chart it is, for a share
  ``post_fraction``, typing an observation and clicking *Record* (``POST`` with the chart's own
  ``Idempotency-Key``), otherwise moving the window to another patient (closing the chart,
  clicking the patient's row on the board and *Open chart*: ``GET`` observations). Every
  request goes through the bridge exactly as a nurse's click does. ``list_fraction`` is not
  used: the board window *is* the patient list.
* **outbox**: as in shift.py, a window's work is done in order, one request at a time; a
  failed request (the window shows the problem, the chart keeps the typed text) is tried
  again by the nurse after a backoff, so the report says whether work was lost or delayed.
* **breaks**: the simulator stops touching the kiosk; the idle lock comes down through the
  application's own idle timer, and on her return the nurse types her password into the lock
  page. Whenever the kiosk is locked and she has something to do, she unlocks the same way.
* **handovers**: the outgoing nurse locks (Ctrl+L) and the next one types *her* user name and
  password at the lock page: a tap-over.
* **faults** from ``plan.faults`` are applied to both of the app's transports (``transport=``
  for token calls, ``api_transport=`` for the ward API), each a
  :class:`~kiosk.testing.faults.FaultInjector` on the system clock whose origin is the start
  of the shift; ``restart`` windows stop and start the ReferenceServer (in a helper thread,
  so the UI keeps running).
* **interruptions**: a re-authentication dialog, or the sign-in window after a session the
  system ended before the nurse's part of the shift was over. She answers it after
  ``reauth_delay_s``.

The :class:`~kiosk.testing.shift.ShiftReport` fields mean what they mean in shift.py:
``refreshes`` counts refresh requests that reached the server (the token transport's
injector), ``server_refreshes`` is the server's own counter over the shift, ``requests_lost``
is work never delivered (including acknowledged observations missing from the server's rows,
checked by their unique text, and the outgoing nurse's queued work at a handover),
``duplicate_writes`` comes from the server's rows, and the session figures
(``user_visible_401``, ``gate_timeouts``, ``logins``, refresh latencies...) from the
TokenManager's metrics, read through ``bridge.run_sync``. The observations are recorded as
kind ``note`` with a unique value (``qs <run> <window>-<n>``), because the chart form has no
separate note field.

**Real time only.** A virtual shift needs one scheduler that sees every actor and moves the
clock only when all of them are parked (DESIGN §7). The Qt shell has no such place: the UI
thread's actors are QTimers (the one-second idle tick, the security panel's refresh) and
queued signals on Qt's own monotonic clock, the core runs on a plain asyncio loop in the
bridge's network thread, and the server is a separate gunicorn process. A virtual clock can
neither see the first nor move the last, so the shift is *compressed* instead: give the
server short token lifetimes (e.g. ``access_s=3``) and the plan a policy with an idle lock of
a few seconds, and play 20-40 s. :func:`kiosk.testing.shift.expected_refreshes` says how many
refreshes that should take with simplejwt's whole-second ``exp``.
"""

from __future__ import annotations

import contextlib
import itertools
import random
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
from PySide6.QtCore import QEventLoop, QObject, QPoint, Qt, Signal
from PySide6.QtGui import QWindow
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QWidget

from kiosk.core import SecurityEvent, ServerSettings, SessionPolicy, TokenManager
from kiosk.core.clock import SystemClock
from kiosk.core.events import EventKind
from kiosk.core.vault import MemoryVault
from kiosk.qt.app import KioskApp
from kiosk.qt.bridge import ApiResult
from kiosk.qt.login import CredentialsForm
from kiosk.qt.ward import PatientChart, WardBoard
from kiosk.qt.windows import KioskWindow
from kiosk.testing.faults import FaultInjector
from kiosk.testing.shift import Break, EventTally, Handover, ShiftPlan, ShiftReport
from kiosk.testing.spec import FaultWindow

#: A session ended by the system this close to the end of the nurse's part of the shift (or
#: later) is the shift ending, not a forced logout (as in shift.py).
_END_TOLERANCE_S = 1.0

#: How long the nurse waits before trying a credentials form again after it said no.
_FORM_RETRY_S = 2.0

#: A request whose window has not answered after this long counts as failed (the bridge
#: always answers; this only keeps a broken build from hanging the simulation).
_STUCK_S = 90.0

#: 4xx answers that mean "not now" rather than "never": the work is tried again.
_RETRYABLE_4XX = {401, 403, 408, 425, 429}


class _Server(Protocol):
    """What the simulator needs from a server (a ReferenceServer has it all)."""

    users: dict[str, str]

    @property
    def base_url(self) -> str: ...

    def stats(self) -> dict[str, int]: ...

    def stop(self) -> None: ...

    def start(self) -> object: ...


@dataclass
class _Work:
    """One thing a window has to get done through the server."""

    kind: str  # "reload_board", "open_chart" or "record"
    note: str | None = None
    attempts: int = 0


@dataclass
class _Slot:
    """One of the plan's windows: the board (index 0) or a chart, and its outbox."""

    index: int
    rng: random.Random
    window: KioskWindow | None = None
    row: int = 0  # the board row a chart slot shows
    outbox: deque[_Work] = field(default_factory=deque)
    inflight: _Work | None = None
    sent_at: float = 0.0
    retry_at: float = 0.0
    failures: int = 0
    next_at: float = 0.0
    arrival: bool = False  # whether next_at is an arrival (else a timeline boundary)


@dataclass
class _FormAttempt:
    """Credentials the nurse typed into a form, until it answers."""

    form: CredentialsForm
    purpose: str  # "sign_in", "unlock", "tap_over", "reauth"
    deadline: float


class ScreenInput:
    """The nurse's input, delivered as a screen delivers it: to the native window of the
    widget's top-level window, at the widget's place in it.

    Qt then passes it on to the widget under the pointer or with the focus, as it does for a
    real touch or key, and the idle lock sees it (it watches the windows, not every widget:
    kiosk/qt/activity.py). ``QTest.mouseClick(widget)`` would go straight to the widget and
    count as no activity at all.
    """

    def __init__(self) -> None:
        self._moves = 0

    @staticmethod
    def _target(widget: QWidget, pos: QPoint | None = None) -> tuple[QWindow, QPoint]:
        top = widget.window()
        handle = top.windowHandle()
        if handle is None:
            raise RuntimeError(f"{type(top).__name__} is not shown: nowhere to tap")
        return handle, widget.mapTo(top, pos if pos is not None else widget.rect().center())

    def click(self, widget: QWidget, pos: QPoint | None = None) -> None:
        """Tap ``widget`` (at ``pos`` in it, else its centre)."""
        window, point = self._target(widget, pos)
        QTest.mouseClick(window, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, point)

    def move(self, widget: QWidget) -> None:
        """Move the pointer over ``widget`` (a touch that changes nothing)."""
        # Never twice to the same point: Qt drops a move that does not move the pointer.
        self._moves += 1
        offset = QPoint(self._moves % 7 - 3, self._moves % 5 - 2)
        window, point = self._target(widget, widget.rect().center() + offset)
        QTest.mouseMove(window, point)

    def key(
        self,
        widget: QWidget,
        key: Qt.Key,
        modifier: Qt.KeyboardModifier = Qt.KeyboardModifier.NoModifier,
    ) -> None:
        """Press ``key`` in ``widget``'s window (a shortcut, or Return in the focused field)."""
        window, _ = self._target(widget)
        QTest.keyClick(window, key, modifier)

    def focus(self, widget: QWidget) -> None:
        """Tap ``widget`` unless it has its window's focus already."""
        if widget.window().focusWidget() is not widget:
            self.click(widget)
            if widget.window().focusWidget() is not widget:
                widget.setFocus()  # something lay over it at that point: she taps it again

    def type(self, widget: QWidget, text: str) -> None:
        """Type ``text`` into ``widget`` (tapped first unless it has the focus)."""
        window, _ = self._target(widget)
        self.focus(widget)
        for char in text:
            QTest.keyClick(window, ord(char))  # QTest's char overload: its key and its text


class QtShiftSimulator(QObject):
    """Plays a :class:`ShiftPlan` through the real Qt kiosk against a gunicorn server.

    Build it in the UI thread (with a QApplication, e.g. pytest-qt's ``qapp``/``qtbot``),
    then ``report = sim.run(plan)``; it blocks, pumping the Qt event loop, for the plan's
    duration (plus the drain) in real time. While it runs, :attr:`app` is the KioskApp.

    Args:
        server: a started ReferenceServer (or anything with ``base_url``, ``users``,
            ``stats()``, and ``stop()``/``start()`` for restart faults).
        qtbot: pytest-qt's fixture: every window is registered with it (so pytest-qt closes
            what a failed simulation left open).
        retry_cap_s: the longest a nurse waits before trying failed work again (backoff
            doubles from 1 s up to this; short, because the shift is compressed).

    Signals:
        progress(float, str): something happened, at that many seconds into the shift.
        handing_over(str, str): a handover is about to happen (outgoing user, incoming user);
            emitted in the UI thread while the outgoing nurse's session is still live, so a
            slot may inspect it, e.g. through ``sim.app.bridge.run_sync``.
        finished(object): the :class:`ShiftReport`, at the end of :meth:`run`.
    """

    progress = Signal(float, str)
    handing_over = Signal(str, str)
    finished = Signal(object)

    def __init__(self, server: _Server, qtbot: Any = None, *, retry_cap_s: float = 4.0) -> None:
        super().__init__()
        self.server = server
        self.qtbot = qtbot
        self._input = ScreenInput()
        self.retry_cap_s = retry_cap_s
        self.app: KioskApp | None = None
        #: ``(seconds into the shift, what happened)``, in order: locks, unlocks, handovers,
        #: dialogs, faults... of the last run, for assertions and for reading a failed run.
        self.log: list[tuple[float, str]] = []
        self._reset(ShiftPlan())

    # ------------------------------------------------------------------ public

    def run(self, plan: ShiftPlan | None = None, **plan_fields: Any) -> ShiftReport:
        """Play one shift through the real application and return its report.

        Args:
            plan: the shift; or give :class:`ShiftPlan` fields as keyword arguments.

        Raises:
            ValueError: the plan asks for what a real-time Qt shift cannot do (clock skew,
                no idempotency keys, a restart of a server without ``stop``/``start``), or
                names a user without a password.
            RuntimeError: there is no QApplication, or a shift is already running.
        """
        plan = plan or ShiftPlan(**plan_fields)
        self._check(plan)
        if self.app is not None:
            raise RuntimeError("a shift is already running")
        if QApplication.instance() is None:
            raise RuntimeError("create the QApplication first (pytest-qt's qapp does)")
        self._reset(plan)
        wall = time.perf_counter()
        report = self.report
        stats_before = self._stats()
        clock = SystemClock()
        self.t0 = clock.monotonic()
        token_faults = self._injector(clock, 1)
        api_faults = self._injector(clock, 2)
        settings = ServerSettings(base_url=self.server.base_url)
        app = KioskApp(
            settings,
            self.policy,
            vault=MemoryVault(),
            transport=token_faults,
            api_transport=api_faults,
        )
        self.app = app
        # Connected after the app's own slots, so they run after the app has reacted.
        app.bridge.security_event.connect(self._on_event)
        app.bridge.state_changed.connect(self._on_state)
        app.signed_in.connect(self._on_signed_in)
        app.window_opened.connect(self._on_window_opened)
        app.signed_out.connect(self._on_signed_out)
        threads = [
            threading.Thread(target=self._restart, args=(w,), name="qtshift-restart", daemon=True)
            for w in plan.fault_plan.restarts
        ]
        try:
            app.start()
            for thread in threads:
                thread.start()
            self._play()
            self._finish(token_faults, settings)
        finally:
            self._stop.set()
            for thread in threads:
                thread.join(timeout=60)
            try:
                if app.bridge.state != "logged_out":
                    # The play failed half-way: leave no live session on the server.
                    with contextlib.suppress(Exception):
                        app.bridge.run_sync(_logout, timeout=15)
            finally:
                app.shutdown()
                self.app = None
        report.server_refreshes = self._server_refreshes(stats_before, self._stats())
        report.wall_s = time.perf_counter() - wall
        self.finished.emit(report)
        return report

    # ------------------------------------------------------------------ setup

    def _check(self, plan: ShiftPlan) -> None:
        faults = plan.fault_plan
        if faults.skew_s:
            raise ValueError("clock skew needs virtual time; the Qt shift runs in real time")
        if not plan.idempotency_keys:
            raise ValueError("the chart always sends an Idempotency-Key; it cannot be turned off")
        plan.check(
            self.server.users,
            can_restart=hasattr(self.server, "stop") and hasattr(self.server, "start"),
        )

    def _reset(self, plan: ShiftPlan) -> None:
        self.plan = plan
        self.policy: SessionPolicy = plan.policy
        # Unique per run, not per seed: the notes identify this run's rows on a shared server.
        self.run_id = uuid.uuid4().hex[:12]
        self.log = []
        self._opening: _Slot | None = None  # the slot whose chart is opening
        self.report = ShiftReport(windows=plan.windows, duration_s=plan.duration_s)
        self.slots = [
            _Slot(i, random.Random(plan.seed * 1000 + i), row=max(0, i - 1))
            for i in range(plan.windows)
        ]
        self.t0 = time.monotonic()
        self.user = plan.user
        self.workspace: str | None = None  # whose workspace is open
        self.patients: list[int] = []
        #: The observation texts the server confirmed (the chart said "Saved.").
        self.acknowledged: set[str] = set()
        self.tally = EventTally(self.report)
        self.counter = itertools.count(1)
        self.attempt: _FormAttempt | None = None
        self.form_retry_at = 0.0
        self.wants_in = False  # the nurse is at the kiosk and wants to use it
        self.expected_end = False
        self.finished_shift = False
        self.dialog: object | None = None
        self.dialog_answer_at = 0.0
        self.login_at = 0.0
        self.handover_to: str | None = None
        self.handovers = sorted(
            (h for h in plan.timeline if isinstance(h, Handover)), key=lambda h: h.at_s
        )
        self.breaks = [b for b in plan.timeline if isinstance(b, Break)]
        self.was_away = False
        self._stop = threading.Event()

    def _injector(self, clock: SystemClock, seed: int) -> FaultInjector:
        injector = FaultInjector(
            httpx.AsyncHTTPTransport(),
            clock=clock,
            origin=self.t0,
            rng=random.Random(self.plan.seed + seed),
        )
        self.plan.fault_plan.apply(injector)
        return injector

    # ------------------------------------------------------------------ the play

    def now(self) -> float:
        """Seconds since the start of the shift."""
        return time.monotonic() - self.t0

    def note(self, what: str) -> None:
        """Record ``what`` in :attr:`log` and emit :attr:`progress`."""
        at = round(self.now(), 2)
        self.log.append((at, what))
        self.progress.emit(at, what)

    def _play(self) -> None:
        plan = self.plan
        end = plan.duration_s
        drain_until = end + plan.drain_s
        qapp = QApplication.instance()
        assert qapp is not None
        while True:
            qapp.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 10)
            now = self.now()
            if now >= end and (not self._busy() or now >= drain_until):
                return
            self._step(now)
            time.sleep(0.005)

    def _busy(self) -> bool:
        """Whether any window still has work to deliver."""
        return any(s.outbox or s.inflight for s in self.slots)

    def _step(self, now: float) -> None:
        self._timeline(now)
        if now < self.plan.duration_s:
            for slot in self.slots:
                self._arrivals(slot, now)
        self._check_stuck(now)
        if not self._present(now) or self._answer_forms(now):
            return
        for slot in self.slots:
            if self._can_act(slot, now):
                self._act(slot, now)

    def _present(self, now: float) -> bool:
        """Whether a nurse is at the kiosk (not on a break)."""
        return not any(b.at_s <= now < b.at_s + b.duration_s for b in self.breaks)

    def _timeline(self, now: float) -> None:
        away = not self._present(now)
        if away and not self.was_away:
            self.note(f"{self.user} goes on a break")
        elif self.was_away and not away:
            self.note(f"{self.user} is back")
            self.wants_in = True
        self.was_away = away
        if self.handovers and now >= self.handovers[0].at_s:
            self._hand_over(self.handovers.pop(0).to_user)

    # ------------------------------------------------------------------ user activity

    def _arrivals(self, slot: _Slot, now: float) -> None:
        if now < slot.next_at:
            return
        if slot.arrival:
            self.report.requests += 1
            slot.outbox.append(self._make_work(slot))
            if self.app is not None and self.app.locked:
                self.wants_in = True  # she came to do something: she unlocks first
            if slot.inflight is not None or now < slot.retry_at:
                # The window is busy: she still touches it (resets the idle timer).
                self._touch(slot.window)
        # Poisson arrivals at the timeline's rate; memoryless, so a boundary starts afresh.
        rate, until = self.plan.rate_at(now)
        if rate <= 0:
            slot.next_at, slot.arrival = until, False
            return
        gap = slot.rng.expovariate(rate)
        if now + gap >= until:
            slot.next_at, slot.arrival = until, False
        else:
            slot.next_at, slot.arrival = now + gap, True

    def _make_work(self, slot: _Slot) -> _Work:
        if slot.index == 0:
            return _Work("reload_board")
        if slot.rng.random() < self.plan.post_fraction:
            note = f"qs {self.run_id} {slot.index}-{next(self.counter)}"
            return _Work("record", note)
        slot.row += max(1, len(self.slots) - 1)
        return _Work("open_chart")

    def _touch(self, window: QWidget | None) -> None:
        # Over the workspace: her window may be a tab behind another, and the tap counts alike.
        if window is not None and window.window().isVisible():
            self._input.move(window.window())

    def _front(self, window: QWidget) -> None:
        """She taps the window's tab, if it is not the one in front."""
        workspace = self.app.workspace if self.app is not None else None
        if workspace is None:
            return
        index = workspace.tabs.indexOf(window)
        if index < 0 or workspace.tabs.currentIndex() == index:
            return
        bar = workspace.tabs.tabBar()
        self._input.click(bar, bar.tabRect(index).center())
        if workspace.tabs.currentIndex() != index:
            workspace.show_window(window)  # the tab was scrolled out of the bar

    def _can_act(self, slot: _Slot, now: float) -> bool:
        app = self.app
        return (
            app is not None
            and self.workspace is not None
            and self.handover_to is None
            and not app.locked
            and app.reauth_dialog is None
            and slot.inflight is None
            and bool(slot.outbox)
            and now >= slot.retry_at
        )

    def _act(self, slot: _Slot, now: float) -> None:
        work = slot.outbox[0]
        if slot.index == 0:
            board = self._board()
            if board is None:
                return
            if slot.window is not board:
                self._adopt(slot, board)
            self._front(board)
            self._send(slot, work, now)
            self._input.click(board.reload_button)
            return
        chart = slot.window if isinstance(slot.window, PatientChart) else None
        if work.kind == "record" and chart is None:
            # Her chart was closed (a re-login): she opens it again first.
            self.report.requests += 1
            slot.outbox.appendleft(work := _Work("open_chart"))
        if work.kind == "open_chart":
            self._open_chart(slot, work, now)
            return
        assert chart is not None
        assert work.note is not None
        self._front(chart)
        if chart.unsent != work.note:
            if chart.unsent:
                chart.value.clear()  # not hers to send (cannot happen; keeps the count honest)
            chart.kind_box.setCurrentText("note")
            self._input.type(chart.value, work.note)
            if chart.unsent != work.note:
                raise RuntimeError(f"typing into the chart failed: {chart.unsent!r}")
        self._send(slot, work, now)
        self._input.click(chart.record_button)

    def _open_chart(self, slot: _Slot, work: _Work, now: float) -> None:
        board = self._board()
        if board is None or not board.patients:
            slot.retry_at = now + 0.5  # the list is not there yet; she waits for it
            return
        if slot.window is not None:
            slot.window.close()
            slot.window = None
        self._front(board)
        row = slot.row % len(board.patients)
        item = board.table.item(row, 1)
        if item is not None:
            board.table.scrollToItem(item)
            rect = board.table.visualItemRect(item)
            self._input.click(board.table.viewport(), rect.center())
        if board.table.currentRow() != row:
            board.table.selectRow(row)  # the row was not clickable (scrolled away)
        self._send(slot, work, now)
        # Adopted as it opens (window_opened): a click through the window system lets Qt
        # deliver events, so the chart's first answer may arrive before the click returns.
        self._opening = slot
        try:
            self._input.click(board.open_button)
        finally:
            self._opening = None
        if not isinstance(slot.window, PatientChart):
            raise RuntimeError("clicking 'Open chart' opened no chart window")

    def _on_window_opened(self, window: object) -> None:
        slot = self._opening
        if slot is not None and isinstance(window, PatientChart) and slot.window is None:
            self._adopt(slot, window)

    def _adopt(self, slot: _Slot, window: KioskWindow) -> None:
        slot.window = window
        if isinstance(window, WardBoard | PatientChart):
            window.api_finished.connect(
                lambda what, result, w=window: self._on_finished(w, what, result)
            )
        if self.qtbot is not None:
            self.qtbot.addWidget(window)

    def _send(self, slot: _Slot, work: _Work, now: float) -> None:
        work.attempts += 1
        slot.inflight = work
        slot.sent_at = now

    def _board(self) -> WardBoard | None:
        for window in self.app.windows if self.app else []:
            if isinstance(window, WardBoard):
                return window
        return None

    # ------------------------------------------------------------------ outcomes

    def _on_finished(self, window: KioskWindow, what: str, result: ApiResult) -> None:
        slot = next((s for s in self.slots if s.window is window), None)
        if slot is None or slot.inflight is None:
            return  # a window she closed, or work a handover took away
        work = slot.inflight
        expected = "record" if work.kind == "record" else "load"
        if what != expected:
            return
        slot.inflight = None
        if isinstance(window, WardBoard) and window.patients:
            self.patients = [int(p["id"]) for p in window.patients if isinstance(p.get("id"), int)]
        report, now = self.report, self.now()
        if result.ok:
            if slot.outbox and slot.outbox[0] is work:
                slot.outbox.popleft()
            if work.attempts > 1:
                report.requests_recovered += 1
            if work.note is not None:
                self.acknowledged.add(work.note)
            slot.failures = 0
            return
        status = result.status
        error = result.error
        report.note_failure(f"http_{status}" if error is None else type(error).__name__)
        if status is not None and 400 <= status < 500 and status not in _RETRYABLE_4XX:
            # Refused for good: the work cannot be done (shift.py counts it lost too).
            report.note_lost(f"refused_{status}")
            if slot.outbox and slot.outbox[0] is work:
                slot.outbox.popleft()
            if isinstance(window, PatientChart):
                window.value.clear()
            self.note(f"window {slot.index}: {work.kind} refused for good (HTTP {status})")
            return
        slot.failures += 1
        cap = min(self.retry_cap_s, 2.0 ** min(slot.failures - 1, 6))
        slot.retry_at = now + slot.rng.uniform(cap / 2, cap)

    def _check_stuck(self, now: float) -> None:
        for slot in self.slots:
            if slot.inflight is not None and now - slot.sent_at > _STUCK_S:
                self.note(f"window {slot.index}: no answer for {_STUCK_S:g} s")
                self.report.note_failure("no_answer")
                slot.inflight = None
                slot.retry_at = now

    # ------------------------------------------------------------------ forms

    def _answer_forms(self, now: float) -> bool:
        """The nurse deals with whatever form is in front of her; True while one is."""
        app = self.app
        assert app is not None
        if self.attempt is not None:
            self._follow_attempt(now)
            return True
        if now < self.form_retry_at:
            return True
        if self.workspace is None:
            if app.login_window.isVisible() and now >= self.login_at:
                self._type(app.login_window.form, self.user, "sign_in", now, with_user=True)
            return True
        if self.handover_to is not None:
            if not app.locked:
                self._lock_by_keyboard()
            if app.locked:
                self._type(self._lock_form(), self.handover_to, "tap_over", now, with_user=True)
            return True
        dialog = app.reauth_dialog
        if dialog is not None and dialog.isVisible():
            if now >= self.dialog_answer_at:
                self._type(dialog.form, self.user, "reauth", now, with_user=False)
            return True
        if app.locked:
            if self.wants_in or self._busy():
                self._type(self._lock_form(), self.user, "unlock", now, with_user=True)
            return True
        return False

    def _lock_form(self) -> CredentialsForm:
        assert self.app is not None
        assert self.app.windows
        # The lock page in front: while locked the tabs are hidden, so it is the one she sees.
        workspace = self.app.workspace
        window = workspace.current() if workspace is not None else None
        return (window or self.app.windows[0]).lock_page.form

    def _type(
        self, form: CredentialsForm, user: str, purpose: str, now: float, *, with_user: bool
    ) -> None:
        keys = self._input
        if with_user and form.username.text() != user:
            keys.focus(form.username)
            keys.key(form.username, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
            keys.type(form.username, user)
        keys.type(form.password, self.server.users[user])
        self.attempt = _FormAttempt(form, purpose, now + 30.0)
        keys.key(form.password, Qt.Key.Key_Return)

    def _follow_attempt(self, now: float) -> None:
        attempt = self.attempt
        assert attempt is not None
        form = attempt.form
        if self._attempt_done(attempt.purpose):
            self.attempt = None
            if attempt.purpose == "unlock":
                self.wants_in = False
                self.note(f"{self.user} unlocked at the lock page")
            elif attempt.purpose == "reauth":
                self.note(f"{self.user} signed in again in the re-authentication dialog")
            return
        refused = form.pending is None and form.error.text() not in {"", "Checking…"}
        if refused or now > attempt.deadline:
            self.note(f"{attempt.purpose} did not go through: {form.error.text()!r}")
            self.attempt = None
            self.form_retry_at = now + _FORM_RETRY_S
            with contextlib.suppress(RuntimeError):
                form.password.clear()

    def _attempt_done(self, purpose: str) -> bool:
        app = self.app
        assert app is not None
        if purpose == "sign_in":
            return self.workspace is not None
        if purpose == "tap_over":
            return self.handover_to is None
        if purpose == "unlock":
            return not app.locked
        return app.reauth_dialog is None  # "reauth"

    def _lock_by_keyboard(self) -> None:
        """The outgoing nurse presses Ctrl+L (the *Lock* button's action if it missed)."""
        app = self.app
        assert app is not None
        window = app.windows[0] if app.windows else None
        if window is None:
            return
        window.activateWindow()
        self._input.key(window, Qt.Key.Key_L, Qt.KeyboardModifier.ControlModifier)
        how = "Ctrl+L"
        if not app.locked:
            how = "the Lock button's action"  # the shortcut did not reach an inactive window
            app.lock()
        self.note(f"the outgoing nurse locked the kiosk ({how})")

    # ------------------------------------------------------------------ handover

    def _hand_over(self, to_user: str) -> None:
        previous = self.user
        self.note(f"handover from {previous} to {to_user}")
        self.handing_over.emit(previous, to_user)
        # What the previous nurse had not sent is hers: nothing of her session remains.
        for slot in self.slots:
            self.report.note_lost("handover", len(slot.outbox))
            slot.outbox.clear()
            slot.inflight = None
            slot.failures = 0
        self.attempt = None
        self.expected_end = True
        self.user = to_user
        if self.workspace is None:
            self.login_at = self.now()  # nobody signed in: she signs in at the sign-in window
        else:
            self.handover_to = to_user

    # ------------------------------------------------------------------ app signals

    def _on_signed_in(self, user: str) -> None:
        self.workspace = user
        self.note(f"{user}'s workspace is open")
        if self.handover_to == user:
            self.handover_to = None
        self.expected_end = False
        self.wants_in = False
        board = self._board()
        first = self.slots[0]
        first.window = None
        if board is not None:
            self._adopt(first, board)
            # The board loads the patient list as it opens: that is this window's work now.
            work = _Work("reload_board", attempts=1)
            self.report.requests += 1
            first.outbox.appendleft(work)
            first.inflight, first.sent_at = work, self.now()
        for slot in self.slots[1:]:
            slot.window = None
            if not slot.outbox or slot.outbox[0].kind != "open_chart":
                self.report.requests += 1
                slot.outbox.appendleft(_Work("open_chart"))

    def _on_signed_out(self, reason: str) -> None:
        self.note(f"signed out ({reason})")
        self.workspace = None
        self.dialog = None
        for slot in self.slots:
            chart = slot.window
            if isinstance(chart, PatientChart) and chart.unsent and reason != "tap_over":
                # The app closed the chart with her entry in it; the entry is still at the head
                # of the outbox, so she types it again once she is back in (not lost, delayed).
                self.note(f"window {slot.index}: unsent entry closed with the window")
            # Work in flight is still at the head of its outbox: it is done again later.
            slot.window = None
            slot.inflight = None
        if reason in {"tap_over", "signed_out"} or self.finished_shift:
            return
        # The sign-in window came up without her asking: she signs in again after a while.
        if self.expected_end or self.now() >= self._planned_end() - _END_TOLERANCE_S:
            return
        self.report.forced_logouts += 1
        self.report.interruptions += 1
        self.login_at = self.now() + self.plan.reauth_delay_s
        self.note(f"interruption: the sign-in window ({reason})")

    def _on_state(self, state: str) -> None:
        app = self.app
        if app is None:
            return
        dialog = app.reauth_dialog
        if dialog is not None and dialog is not self.dialog:
            self.dialog = dialog
            self.report.interruptions += 1
            self.dialog_answer_at = self.now() + self.plan.reauth_delay_s
            self.note(f"interruption: the re-authentication dialog ({state})")

    def _on_event(self, event: SecurityEvent) -> None:
        self.tally.observe(event, self.user)
        if event.kind is EventKind.LOCKED:
            self.note("locked")

    def _planned_end(self) -> float:
        """When the current nurse's part of the shift ends (the next handover, or the end)."""
        later = [h.at_s for h in self.handovers if h.at_s > self.now()]
        return min(later, default=self.plan.duration_s)

    # ------------------------------------------------------------------ faults

    def _restart(self, window: FaultWindow) -> None:
        """Stop the real server for ``window`` (runs in a helper thread)."""
        if self._stop.wait(max(0.0, window.start_s - self.now())):
            return
        self.log.append((round(self.now(), 2), "server stopped (restart fault)"))
        self.server.stop()
        try:
            self._stop.wait(max(0.0, window.end_s - self.now()))
        finally:
            self.server.start()
            self.log.append((round(self.now(), 2), "server started again"))

    # ------------------------------------------------------------------ the figures

    def _finish(self, token_faults: FaultInjector, settings: ServerSettings) -> None:
        app = self.app
        assert app is not None
        report = self.report
        self.finished_shift = True
        report.note_lost("unsent_at_end", sum(len(s.outbox) for s in self.slots))
        self._count_writes(settings)
        # She signs out at the end of her shift (the refresh token is revoked on the server).
        if self.workspace is not None:
            app.sign_out()
            end = time.monotonic() + 15.0
            qapp = QApplication.instance()
            assert qapp is not None
            while self.workspace is not None and time.monotonic() < end:
                qapp.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 20)
                time.sleep(0.005)
        metrics: dict[str, Any] = app.bridge.run_sync(_metrics)
        refresh_path = settings.refresh_path

        async def reached(_manager: TokenManager) -> int:
            return token_faults.reached_server(refresh_path)

        report.refreshes = int(app.bridge.run_sync(reached))
        self.tally.take_metrics(metrics, time.time())

    def _count_writes(self, settings: ServerSettings) -> None:
        """Compare the observations on the server with the ones the charts recorded."""
        if not self.acknowledged and not self.report.requests:
            return
        app = self.app
        assert app is not None
        prefix = f"qs {self.run_id} "
        patients = list(self.patients)

        async def rows(manager: TokenManager) -> dict[str, int] | None:
            # A clean transport: the check must not meet the plan's faults.
            counts: dict[str, int] = {}
            async with httpx.AsyncClient(
                base_url=settings.base_url, auth=manager.auth, timeout=10.0
            ) as client:
                for pk in patients:
                    response = await client.get(f"/api/patients/{pk}/observations/")
                    if response.status_code != 200:
                        return None
                    for row in response.json():
                        value = str(row.get("value", ""))
                        if value.startswith(prefix):
                            counts[value] = counts.get(value, 0) + 1
            return counts

        try:
            counts = app.bridge.run_sync(rows, timeout=30)
        except Exception as exc:
            counts = None
            self.note(f"could not read the server's observations: {type(exc).__name__}")
        if counts is None:
            return
        self.report.duplicate_writes = sum(n - 1 for n in counts.values() if n > 1)
        missing = {note for note in self.acknowledged if counts.get(note, 0) == 0}
        self.report.note_lost("acknowledged_but_missing", len(missing))

    def _stats(self) -> dict[str, int] | None:
        try:
            return self.server.stats()
        except (httpx.HTTPError, ValueError):
            return None

    @staticmethod
    def _server_refreshes(
        before: dict[str, int] | None, after: dict[str, int] | None
    ) -> int | None:
        if before is None or after is None:
            return None
        return after.get("refresh", 0) - before.get("refresh", 0)


async def _metrics(manager: TokenManager) -> dict[str, Any]:
    return dict(manager.metrics())


async def _logout(manager: TokenManager) -> None:
    await manager.logout()


__all__ = ["QtShiftSimulator"]
