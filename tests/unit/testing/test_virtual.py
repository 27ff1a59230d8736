"""LinkedClock and quiesce: discrete-event virtual time for the client and the server."""

from __future__ import annotations

import asyncio
import datetime as dt
import time

import pytest

from kiosk.testing.clock import settle
from kiosk.testing.virtual import DeadlockError, LinkedClock, linked_clock, quiesce

START = 1_800_000_000.0


async def _spin(turns: int) -> None:
    for _ in range(turns):
        await asyncio.sleep(0)


@pytest.fixture(autouse=True)
def _nothing_left_linked():
    yield
    leftover = linked_clock()
    if leftover is not None:
        leftover.unlink()
        pytest.fail("a test left a LinkedClock linked")


# ---------------------------------------------------------------------------- quiesce


async def test_quiesce_returns_only_after_a_long_task_has_finished():
    done = asyncio.Event()

    async def busy() -> None:
        await _spin(500)
        done.set()

    task = asyncio.create_task(busy())
    await settle()  # a fixed 50 turns: not enough for this task
    assert not done.is_set()
    await quiesce()
    assert done.is_set()
    await task


async def test_quiesce_returns_while_tasks_are_parked_on_futures():
    gate = asyncio.Event()
    progress: list[str] = []

    async def waiter() -> None:
        await _spin(200)
        progress.append("parked")
        await gate.wait()
        progress.append("released")

    task = asyncio.create_task(waiter())
    await quiesce()
    assert progress == ["parked"]
    assert not task.done()
    gate.set()
    await quiesce()
    assert progress == ["parked", "released"]
    assert task.done()


# ---------------------------------------------------------------------------- advance


async def test_advance_wakes_sleepers_in_deadline_order_at_their_time():
    clock = LinkedClock(start=START)
    woke: list[tuple[str, float]] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append((name, clock.monotonic()))

    tasks = [
        asyncio.create_task(sleeper(name, s))
        for name, s in [("b", 5), ("a", 2), ("c", 9), ("a2", 2)]
    ]
    await clock.advance(6)
    assert woke == [("a", 2.0), ("a2", 2.0), ("b", 5.0)]  # a tie wakes in arrival order
    assert clock.monotonic() == 6.0
    assert clock.time() == START + 6
    await clock.advance(10)
    assert woke[-1] == ("c", 9.0)
    assert clock.monotonic() == 16.0
    await asyncio.gather(*tasks)


async def test_advance_lets_a_woken_task_finish_however_many_turns_it_needs():
    clock = LinkedClock()
    ticks: list[float] = []

    async def ticker() -> None:
        for _ in range(4):
            await clock.sleep(1)
            await _spin(300)  # e.g. a request through several layers of awaits
            ticks.append(clock.monotonic())

    task = asyncio.create_task(ticker())
    await clock.advance(10)
    assert ticks == [1.0, 2.0, 3.0, 4.0]
    await task


async def test_negative_advance_does_not_move_time():
    clock = LinkedClock()
    await clock.advance(5)
    await clock.advance(-3)
    assert clock.monotonic() == 5.0


# ---------------------------------------------------------------------------- run


async def test_run_drives_a_coroutine_to_completion_on_virtual_time():
    clock = LinkedClock()
    log: list[tuple[str, float]] = []

    async def worker(name: str, every: float, times: int) -> str:
        for _ in range(times):
            await clock.sleep(every)
            log.append((name, clock.monotonic()))
        return name

    async def main() -> list[str]:
        return list(await asyncio.gather(worker("fast", 1.5, 4), worker("slow", 4, 2)))

    loop = asyncio.get_running_loop()
    wall = loop.time()
    result = await clock.run(main())
    assert result == ["fast", "slow"]
    assert log == [  # each wake-up at its own virtual instant, in order
        ("fast", 1.5),
        ("fast", 3.0),
        ("slow", 4.0),
        ("fast", 4.5),
        ("fast", 6.0),
        ("slow", 8.0),
    ]
    assert clock.monotonic() == 8.0  # time stopped at the last deadline, not beyond
    assert loop.time() - wall < 5  # eight virtual seconds, no real sleeping


async def test_run_moves_time_a_whole_shift_in_one_call():
    clock = LinkedClock()

    async def shift() -> float:
        for _ in range(12 * 60):
            await clock.sleep(60)
        return clock.monotonic()

    assert await clock.run(shift()) == 12 * 3600


async def test_run_returns_at_once_when_nothing_needs_time():
    clock = LinkedClock()

    async def instant() -> int:
        await _spin(10)
        return 7

    assert await clock.run(instant()) == 7
    assert clock.monotonic() == 0.0


async def test_run_passes_on_the_coroutines_exception():
    clock = LinkedClock()

    async def failing() -> None:
        await clock.sleep(3)
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        await clock.run(failing())
    assert clock.monotonic() == 3.0


async def test_run_raises_deadlock_when_everything_waits_on_what_nobody_will_set():
    clock = LinkedClock()
    never = asyncio.Event()
    cancelled = asyncio.Event()

    async def helper() -> None:
        await clock.sleep(5)  # the last sleeper: it finishes without setting `never`

    async def main() -> None:
        helper_task = asyncio.create_task(helper())
        try:
            await never.wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        finally:
            await asyncio.gather(helper_task, return_exceptions=True)

    with pytest.raises(DeadlockError, match="no clock sleeper"):
        await clock.run(main())
    assert clock.monotonic() == 5.0
    assert cancelled.is_set()  # run() does not leave the coroutine behind


async def test_run_gives_up_after_limit_s_of_virtual_time():
    clock = LinkedClock()
    await clock.advance(100)  # the limit counts from the start of run()

    async def forever() -> None:
        while True:
            await clock.sleep(10)

    with pytest.raises(DeadlockError, match="35 s"):
        await clock.run(forever(), limit_s=35)
    assert clock.monotonic() == 130.0  # the last deadline within the limit


async def test_a_coroutine_finishing_exactly_at_the_limit_is_not_a_deadlock():
    clock = LinkedClock()

    async def exactly() -> str:
        await clock.sleep(35)
        return "done"

    assert await clock.run(exactly(), limit_s=35) == "done"


def test_deadlock_error_is_a_runtime_error():
    assert issubclass(DeadlockError, RuntimeError)


async def test_the_clock_is_driving_only_while_advance_or_run_moves_time():
    clock = LinkedClock()
    seen: list[bool] = []

    async def sleeper() -> bool:
        await clock.sleep(1)
        seen.append(clock.driving)
        return clock.driving

    assert not clock.driving
    task = asyncio.create_task(sleeper())
    await clock.advance(2)
    await task
    assert seen == [True]
    assert not clock.driving
    assert await clock.run(sleeper()) is True
    assert not clock.driving

    async def failing() -> None:
        await clock.sleep(1)
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        await clock.run(failing())
    assert not clock.driving


# ---------------------------------------------------------------------------- skew


async def test_skew_puts_the_workstation_clock_ahead_of_the_servers():
    clock = LinkedClock(start=START, skew_s=30)
    assert clock.server_time() == START
    assert clock.time() == START + 30
    assert clock.monotonic() == 0.0
    await clock.advance(10)
    assert clock.server_time() == START + 10
    assert clock.time() == START + 40


async def test_add_skew_moves_only_the_workstation_clock():
    clock = LinkedClock(start=START, skew_s=30)
    clock.add_skew(-90)
    assert clock.skew_s == -60
    assert clock.time() == START - 60
    assert clock.server_time() == START
    assert clock.monotonic() == 0.0


def test_a_wall_jump_is_the_workstations_alone():
    clock = LinkedClock(start=START)
    clock.jump_wall(120)
    assert clock.time() == START + 120
    assert clock.server_time() == START


# ---------------------------------------------------------------------------- linking


def test_only_one_clock_is_linked_at_a_time():
    first, second = LinkedClock(), LinkedClock()
    assert linked_clock() is None
    with first:
        assert first.linked
        assert linked_clock() is first
        assert first.link() is first  # idempotent
        with pytest.raises(RuntimeError, match="another LinkedClock"):
            second.link()
        assert not second.linked
        second.unlink()  # not linked: changes nothing
        assert linked_clock() is first
    assert not first.linked
    assert linked_clock() is None
    first.unlink()  # idempotent
    with second:
        assert linked_clock() is second
    assert linked_clock() is None


async def test_while_linked_the_process_clock_follows_the_server_time():
    real_before = time.time()
    clock = LinkedClock(start=START, skew_s=240)
    with clock:
        assert time.time() == pytest.approx(START, abs=1e-3)
        await clock.advance(3600.5)
        clock.sync_server()
        assert time.time() == pytest.approx(START + 3600.5, abs=1e-3)
        assert time.time() == pytest.approx(clock.server_time(), abs=1e-3)
        now = dt.datetime.now(dt.UTC).timestamp()
        assert now == pytest.approx(clock.server_time(), abs=1e-3)
        assert abs(time.time() - clock.time()) == pytest.approx(240, abs=1e-3)  # not the skew
        await clock.advance(60)
        clock.sync_server()
        assert time.time() == pytest.approx(START + 3660.5, abs=1e-3)
    assert abs(time.time() - real_before) < 60  # real time again


async def test_a_clock_advanced_before_linking_starts_the_server_at_its_time():
    clock = LinkedClock(start=START)
    await clock.advance(500)
    with clock:
        assert time.time() == pytest.approx(START + 500, abs=1e-3)


def test_sync_server_without_a_link_leaves_the_process_clock_alone():
    clock = LinkedClock(start=START)
    clock.sync_server()
    assert abs(time.time() - START) > 1  # the test machine is not at the default start
