"""A virtual clock for the core: time moves only when a test (or a simulation) advances it.

:class:`VirtualClock` satisfies :class:`kiosk.core.clock.Clock`. ``sleep()`` parks the
caller until :meth:`VirtualClock.advance` moves the clock past its deadline, so a 12-hour
shift's timers fire in milliseconds and in a deterministic order. ``jump_wall()`` moves
only the wall clock, like an NTP correction or a laptop waking up.

Hand-written rather than taken from a library: time-machine and freezegun patch the
``time`` module for the whole process (the server under test too), while the core takes
its clock by injection and needs awaitable sleeps that wake in deadline order.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools

#: 2027-01-15 07:00 UTC: a day shift's start, far from any epoch edge.
DEFAULT_START = 1_800_000_000.0


class VirtualClock:
    """Wall and monotonic time that move only through :meth:`advance`.

    Args:
        start: the initial wall-clock time (seconds since the epoch).
    """

    def __init__(self, start: float = DEFAULT_START) -> None:
        self._wall_offset = start
        self._mono = 0.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def time(self) -> float:
        return self._wall_offset + self._mono

    def monotonic(self) -> float:
        return self._mono

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._mono + seconds, next(self._seq), future))
        await future

    @property
    def pending(self) -> int:
        """How many sleepers are waiting."""
        return sum(1 for _, _, f in self._sleepers if not f.done())

    def next_deadline(self) -> float | None:
        """Monotonic time of the earliest pending sleeper, if any."""
        self._drop_cancelled()
        return self._sleepers[0][0] if self._sleepers else None

    async def advance(self, seconds: float) -> None:
        """Move time forward ``seconds``, waking every sleeper due on the way, in order.

        After each wake-up the loop runs until it is idle again, so what the woken task
        does (its own sleeps included) happens at the right virtual time.
        """
        target = self._mono + max(0.0, seconds)
        await self._settle()
        while True:
            self._drop_cancelled()
            if not self._sleepers or self._sleepers[0][0] > target:
                break
            deadline, _, future = heapq.heappop(self._sleepers)
            self._mono = max(self._mono, deadline)
            if not future.done():
                future.set_result(None)
            await self._settle()
        self._mono = target
        await self._settle()

    async def _settle(self) -> None:
        """Let the woken tasks run before time moves on (a fixed number of loop turns here)."""
        await settle()

    def jump_wall(self, seconds: float) -> None:
        """Move only the wall clock (``time()``), not the monotonic one."""
        self._wall_offset += seconds

    def _drop_cancelled(self) -> None:
        while self._sleepers and self._sleepers[0][2].done():
            heapq.heappop(self._sleepers)


async def settle(rounds: int = 50) -> None:
    """Let every ready task run: yield to the event loop ``rounds`` times."""
    for _ in range(rounds):
        await asyncio.sleep(0)
