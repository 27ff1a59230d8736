"""VirtualClock: sleepers wake in deadline order, only when time is advanced."""

from __future__ import annotations

import asyncio

from kiosk.testing.clock import VirtualClock


async def test_sleepers_wake_in_deadline_order_at_their_virtual_time():
    clock = VirtualClock(start=1000.0)
    woke: list[tuple[str, float]] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append((name, clock.monotonic()))

    tasks = [asyncio.create_task(sleeper(n, s)) for n, s in [("b", 5), ("a", 2), ("c", 9)]]
    await clock.advance(6)
    assert woke == [("a", 2.0), ("b", 5.0)]
    assert clock.time() == 1006.0
    await clock.advance(10)
    assert woke[-1] == ("c", 9.0)
    await asyncio.gather(*tasks)


async def test_nothing_wakes_without_advance():
    clock = VirtualClock()
    task = asyncio.create_task(clock.sleep(0.001))
    await asyncio.sleep(0.01)
    assert not task.done()
    assert clock.pending == 1
    await clock.advance(0.001)
    assert task.done()


async def test_cancelled_sleepers_are_dropped_and_wall_jumps_leave_monotonic_alone():
    clock = VirtualClock(start=0.0)
    task = asyncio.create_task(clock.sleep(3))
    await asyncio.sleep(0)
    task.cancel()
    await asyncio.sleep(0)
    assert clock.next_deadline() is None
    clock.jump_wall(100)
    assert clock.time() == 100.0
    assert clock.monotonic() == 0.0


async def test_a_woken_task_that_sleeps_again_wakes_within_the_same_advance():
    clock = VirtualClock()
    ticks: list[float] = []

    async def ticker() -> None:
        for _ in range(5):
            await clock.sleep(1)
            ticks.append(clock.monotonic())

    task = asyncio.create_task(ticker())
    await clock.advance(10)
    assert ticks == [1.0, 2.0, 3.0, 4.0, 5.0]
    await task
