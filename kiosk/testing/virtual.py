"""Virtual time for whole shifts: one clock for the client *and* the in-process server.

:class:`LinkedClock` is a :class:`~kiosk.testing.clock.VirtualClock` (the client's injected
clock) that also moves the server's clock: while it is linked, every call into the in-process
reference server (:mod:`kiosk.testing.inprocess`) first moves time-machine to the clock's
*server time*, so simplejwt's ``iat``/``exp``, its expiry checks and Django's ``Date`` header
all happen at the same virtual instant as the client's timers.

Two differences from ``VirtualClock``, both for whole shifts (DESIGN §7):

* **Discrete-event stepping.** ``advance()`` wakes one due sleeper at a time and then lets the
  event loop run until *every* task is parked again (:func:`quiesce`: the loop's ready queue is
  empty), instead of a fixed 50 yields. That is both faster (a step costs a handful of loop
  turns) and exact (a request that needs 80 loop turns still completes before time moves).
* **Skew.** ``skew_s`` makes the workstation's wall clock run ahead of (or behind) the server's:
  ``time()`` is the client's clock, :meth:`LinkedClock.server_time` the server's.

time-machine 3.6 patches ``time.time``/``datetime.now`` process-wide but not
``time.monotonic``, so the asyncio loop keeps real time and the core only waits on this clock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

from kiosk.testing.clock import DEFAULT_START, VirtualClock, settle

T = TypeVar("T")

#: The clock whose server time the in-process server follows (at most one at a time).
_linked: LinkedClock | None = None


class DeadlockError(RuntimeError):
    """Every task waits, and nothing is scheduled on the clock to wake any of them."""


async def quiesce(max_rounds: int = 100_000) -> None:
    """Yield to the event loop until no other callback is ready to run.

    When this returns, every other task is parked on a future (a clock sleeper, a lock, an
    event...). Falls back to :func:`~kiosk.testing.clock.settle` on loops that do not expose
    their ready queue.
    """
    loop = asyncio.get_running_loop()
    ready = getattr(loop, "_ready", None)
    if ready is None:  # pragma: no cover - uvloop and friends
        await settle()
        return
    for _ in range(max_rounds):
        await asyncio.sleep(0)
        if not ready:
            return


class LinkedClock(VirtualClock):
    """The client's virtual clock, linked to the in-process server's clock.

    Args:
        start: the *server's* wall-clock time at monotonic 0 (seconds since the epoch).
        skew_s: how far the workstation's clock runs ahead of the server's (negative: behind).
    """

    def __init__(self, start: float = DEFAULT_START, *, skew_s: float = 0.0) -> None:
        super().__init__(start + skew_s)
        self._server_start = start
        self.skew_s = skew_s
        self._traveller: Any = None
        self._coordinates: Any = None
        self._server_moved_to: float | None = None
        self._driving = 0

    def add_skew(self, seconds: float) -> None:
        """Make the workstation's clock run ``seconds`` further ahead of the server's."""
        self._wall_offset += seconds
        self.skew_s += seconds

    # ------------------------------------------------------------------ the server's side

    def server_time(self) -> float:
        """The server's wall-clock time (it does not follow :meth:`jump_wall` or the skew)."""
        return self._server_start + self.monotonic()

    @property
    def linked(self) -> bool:
        """Whether the in-process server follows this clock now."""
        return _linked is self

    def link(self) -> LinkedClock:
        """Make the in-process server follow this clock (starts time-machine). Idempotent.

        Raises:
            RuntimeError: another LinkedClock is linked already (time-machine is process-wide).
        """
        global _linked
        if _linked is self:
            return self
        if _linked is not None:
            raise RuntimeError("another LinkedClock drives the server's time; unlink it first")
        import time_machine

        self._traveller = time_machine.travel(self.server_time(), tick=False)
        self._coordinates = self._traveller.start()
        self._server_moved_to = self.server_time()
        _linked = self
        return self

    def unlink(self) -> None:
        """Give the process its real time back. Idempotent."""
        global _linked
        if _linked is self:
            _linked = None
        if self._traveller is not None:
            self._traveller.stop()
            self._traveller = None
            self._coordinates = None

    def sync_server(self) -> None:
        """Move the server's clock (time-machine) to this clock's server time."""
        now = self.server_time()
        if self._coordinates is not None and now != self._server_moved_to:
            self._coordinates.move_to(now)
            self._server_moved_to = now

    def __enter__(self) -> LinkedClock:
        return self.link()

    def __exit__(self, *exc: object) -> None:
        self.unlink()

    # ------------------------------------------------------------------ stepping

    @property
    def driving(self) -> bool:
        """Whether :meth:`advance` or :meth:`run` is moving time now.

        Only then will a sleep on this clock ever end: the in-process server adds its virtual
        latency only while the clock is driven, so a test's direct request never hangs.
        """
        return self._driving > 0

    async def advance(self, seconds: float) -> None:
        """Move time forward ``seconds``, waking each sleeper due on the way, in order.

        After every wake-up the loop runs until all tasks are parked again.
        """
        self._driving += 1
        try:
            await self._advance(seconds)
        finally:
            self._driving -= 1

    async def _advance(self, seconds: float) -> None:
        await super().advance(seconds)

    async def _settle(self) -> None:
        """Run the loop until every task is parked again (:func:`quiesce`)."""
        await quiesce()

    async def run(self, awaitable: Awaitable[T], *, limit_s: float | None = None) -> T:
        """Run ``awaitable`` to completion, moving time to each next deadline when all are parked.

        Args:
            awaitable: the simulation's main coroutine (or a future).
            limit_s: give up (:class:`DeadlockError`) if virtual time passes this many seconds.

        Raises:
            DeadlockError: every task waits and no sleeper is due, or ``limit_s`` passed.
        """
        task = asyncio.ensure_future(awaitable)
        stop_at = None if limit_s is None else self._mono + limit_s
        self._driving += 1
        try:
            while True:
                await quiesce()
                if task.done():
                    return task.result()
                deadline = self.next_deadline()
                if deadline is None:
                    raise DeadlockError("every task waits and no clock sleeper is pending")
                if stop_at is not None and deadline > stop_at:
                    raise DeadlockError(f"still running after {limit_s:g} s of virtual time")
                await self.advance(deadline - self._mono)
        finally:
            self._driving -= 1
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)


def linked_clock() -> LinkedClock | None:
    """The clock the in-process server follows now, if any."""
    return _linked


__all__ = ["DeadlockError", "LinkedClock", "linked_clock", "quiesce"]
