"""Server-corrected time and clock-driven deadlines (kiosk.core.clock).

Named test_core_clock.py, not test_clock.py: tests/unit/testing/test_clock.py (VirtualClock)
exists, and pytest's default "prepend" import mode needs unique basenames.
"""

from __future__ import annotations

import asyncio
import email.utils

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kiosk_test_helpers import NOW, FakeClock, settle

from kiosk.core.clock import (
    MAX_SAMPLE_RTT_S,
    Clock,
    DeadlineExceeded,
    ServerTimeOffset,
    SystemClock,
    parse_http_date,
    wait_with_deadline,
)

#: NOW as an HTTP Date header.
NOW_DATE = "Tue, 14 Nov 2023 22:13:20 GMT"


def test_the_fixture_date_is_now() -> None:
    assert email.utils.formatdate(NOW, usegmt=True) == NOW_DATE


# ------------------------------------------------------------------ parse_http_date


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (NOW_DATE, NOW),
        ("Tue, 14 Nov 2023 23:13:20 +0100", NOW),
        ("Tuesday, 14-Nov-23 22:13:20 GMT", NOW),  # RFC 850, obsolete but allowed
        ("Tue Nov 14 22:13:20 2023 GMT", NOW),
        ("Thu, 01 Jan 1970 00:00:00 GMT", 0),
    ],
)
def test_parse_http_date(value: str, expected: float) -> None:
    assert parse_http_date(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "garbage",
        "120",
        "-1",
        "Tue, 14 Nov 2023 22:13:20",  # no zone: ambiguous, refused
        "Tue, 14 Nov 2023 22:13:20 -0000",  # RFC 2822: "-0000" means zone unknown
        "Tue, 32 Nov 2023 22:13:20 GMT",
        "Tue, 14 Foo 2023 22:13:20 GMT",
        "Tue, 14 Nov 2023 25:13:20 GMT",
        "Tue, 14 Nov 99999 22:13:20 GMT",
        "Tue, 14 Nov 2023 22:13:20 +9999",
        "\x00\x00",
        "²",
    ],
)
def test_parse_http_date_garbage(value: str | None) -> None:
    assert parse_http_date(value) is None


@settings(max_examples=200, deadline=None)
@given(
    value=st.text(max_size=60)
    | st.from_regex(r"\A\w{3}, \d{1,6} \w{3} \d{1,6} [\d:]{1,12} .{0,6}\Z")
)
def test_parse_http_date_never_raises(value: str) -> None:
    parsed = parse_http_date(value)
    assert parsed is None or isinstance(parsed, float)


# ------------------------------------------------------------------ ServerTimeOffset


def test_offset_is_zero_and_unknown_until_observed() -> None:
    clock = FakeClock()
    offset = ServerTimeOffset(clock)
    assert offset.known is False
    assert offset.offset == 0.0
    assert offset.server_time() == clock.time()


def test_observe_with_a_date_header_uses_the_middle_of_second_and_round_trip() -> None:
    clock = FakeClock(start=NOW - 100)
    offset = ServerTimeOffset(clock)
    # Local clock 100 s behind; request sent at -101 s, answered at -99 s (midpoint -100).
    result = offset.observe(date_header=NOW_DATE, sent_at=NOW - 101, received_at=NOW - 99)
    assert result == pytest.approx(100.5)
    assert offset.known
    assert offset.offset == pytest.approx(100.5)
    assert offset.server_time() == pytest.approx(NOW + 0.5)


def test_a_fast_local_clock_gives_a_negative_offset() -> None:
    offset = ServerTimeOffset(FakeClock())
    assert offset.observe(
        date_header=NOW_DATE, sent_at=NOW + 240, received_at=NOW + 240
    ) == pytest.approx(-239.5)


def test_observe_averages_date_and_iat() -> None:
    offset = ServerTimeOffset(FakeClock())
    result = offset.observe(date_header=NOW_DATE, sent_at=NOW, received_at=NOW, iat=NOW + 1)
    assert result == pytest.approx((0.5 + 1.5) / 2)


def test_observe_with_iat_only() -> None:
    offset = ServerTimeOffset(FakeClock())
    assert offset.observe(date_header=None, sent_at=NOW, received_at=NOW + 2, iat=NOW + 10) == (
        pytest.approx(9.5)
    )


@pytest.mark.parametrize("header", [None, "", "not a date", "Tue, 14 Nov 2023 22:13:20"])
def test_unreadable_observation_keeps_the_previous_estimate(header: str | None) -> None:
    offset = ServerTimeOffset(FakeClock())
    offset.observe(date_header=NOW_DATE, sent_at=NOW - 30, received_at=NOW - 30)
    assert offset.observe(date_header=header, sent_at=NOW, received_at=NOW) is None
    assert offset.offset == pytest.approx(30.5)
    assert offset.known


def test_first_unreadable_observation_leaves_it_unknown() -> None:
    offset = ServerTimeOffset(FakeClock())
    assert offset.observe(date_header="bad", sent_at=NOW, received_at=NOW) is None
    assert offset.known is False


def test_latest_observation_wins() -> None:
    offset = ServerTimeOffset(FakeClock())
    offset.observe(date_header=NOW_DATE, sent_at=NOW - 30, received_at=NOW - 30)
    offset.observe(date_header=NOW_DATE, sent_at=NOW + 5, received_at=NOW + 5)
    assert offset.offset == pytest.approx(-4.5)


def test_the_first_sample_is_taken_however_slow() -> None:
    offset = ServerTimeOffset(FakeClock())
    assert offset.observe(date_header=NOW_DATE, sent_at=NOW - 60, received_at=NOW) == (
        pytest.approx(30.5)
    )


def test_slow_round_trips_do_not_move_a_known_offset() -> None:
    offset = ServerTimeOffset(FakeClock())
    offset.observe(date_header=NOW_DATE, sent_at=NOW - 10, received_at=NOW - 10)
    # A refresh stuck for minutes behind a busy server: its Date says little.
    slow = offset.observe(
        date_header=NOW_DATE, sent_at=NOW - 300, received_at=NOW - 300 + MAX_SAMPLE_RTT_S + 0.1
    )
    assert slow is None
    assert offset.offset == pytest.approx(10.5)
    # A round trip of exactly the limit still counts.
    assert offset.observe(
        date_header=NOW_DATE, sent_at=NOW - 1, received_at=NOW - 1 + MAX_SAMPLE_RTT_S
    ) == pytest.approx(0.5)


def test_server_time_follows_the_local_clock() -> None:
    clock = FakeClock()
    offset = ServerTimeOffset(clock)
    offset.observe(date_header=NOW_DATE, sent_at=NOW - 60, received_at=NOW - 60)
    clock.advance(10)
    assert offset.server_time() == pytest.approx(NOW + 10 + 60.5)
    clock.jump(3600)  # the workstation's clock is stepped: server time moves with it
    assert offset.server_time() == pytest.approx(NOW + 3610 + 60.5)


# ------------------------------------------------------------------ wait_with_deadline


async def test_returns_the_result_when_it_comes_first() -> None:
    clock = FakeClock()

    async def work() -> str:
        await clock.sleep(1)
        return "done"

    waiter = asyncio.ensure_future(wait_with_deadline(clock, work(), 5))
    await settle()
    assert clock.sleepers == 2  # the work and the deadline
    clock.advance(1)
    assert await waiter == "done"
    await settle()
    assert clock.sleepers == 0  # the deadline timer was cancelled


async def test_an_already_finished_awaitable_returns_at_once() -> None:
    clock = FakeClock()
    future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    future.set_result(7)
    assert await wait_with_deadline(clock, future, 10) == 7


async def test_raises_deadline_exceeded_and_cancels_the_work() -> None:
    clock = FakeClock()
    never: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    waiter = asyncio.ensure_future(wait_with_deadline(clock, never, 5))
    await settle()
    clock.advance(4.9)
    await settle()
    assert not waiter.done()
    clock.advance(0.1)
    with pytest.raises(DeadlineExceeded, match=r"5\.000 s"):
        await waiter
    assert never.cancelled()


async def test_deadline_runs_on_the_clock_not_the_loop() -> None:
    # Virtual time: the deadline passes with no real time passing at all.
    clock = FakeClock()
    loop = asyncio.get_running_loop()
    started = loop.time()
    waiter = asyncio.ensure_future(wait_with_deadline(clock, loop.create_future(), 3600))
    await settle()
    clock.advance(3600)
    with pytest.raises(DeadlineExceeded):
        await waiter
    assert loop.time() - started < 1


async def test_errors_of_the_work_propagate() -> None:
    clock = FakeClock()

    async def fails() -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        await wait_with_deadline(clock, fails(), 5)
    await settle()
    assert clock.sleepers == 0


async def test_none_timeout_waits_without_a_timer() -> None:
    clock = FakeClock()
    future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    waiter = asyncio.ensure_future(wait_with_deadline(clock, future, None))
    await settle()
    assert clock.sleepers == 0
    clock.advance(10**6)
    await settle()
    assert not waiter.done()
    future.set_result("late but fine")
    assert await waiter == "late but fine"


async def test_cancelling_the_waiter_cancels_work_and_timer() -> None:
    clock = FakeClock()
    work: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    waiter = asyncio.ensure_future(wait_with_deadline(clock, work, 5))
    await settle()
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    await settle()
    assert work.cancelled()
    assert clock.sleepers == 0


async def test_zero_timeout_with_pending_work_expires_at_once() -> None:
    clock = FakeClock()
    waiter = asyncio.ensure_future(
        wait_with_deadline(clock, asyncio.get_running_loop().create_future(), 0)
    )
    await settle()
    clock.advance(0)
    with pytest.raises(DeadlineExceeded):
        await waiter


# ------------------------------------------------------------------ SystemClock


async def test_system_clock_is_a_clock() -> None:
    clock: Clock = SystemClock()
    first = clock.monotonic()
    await clock.sleep(0)
    await clock.sleep(-1)  # negative sleeps are clamped, not errors
    assert clock.monotonic() >= first
    assert clock.time() > NOW  # after the fixture date


async def test_system_clock_deadline() -> None:
    with pytest.raises(DeadlineExceeded):
        await wait_with_deadline(SystemClock(), asyncio.Event().wait(), 0.01)
