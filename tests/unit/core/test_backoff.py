"""Backoff with full jitter, Retry-After parsing and the retry delay (kiosk.core.backoff)."""

from __future__ import annotations

import email.utils
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk.core.backoff import (
    MAX_RETRY_AFTER_S,
    ExponentialBackoff,
    parse_retry_after,
    retry_delay,
)
from kiosk.core.settings import BackoffPolicy

NOW = 1_700_000_000.0


class RecordingRandom(random.Random):
    """``uniform`` returns the top of its range and records every range asked for."""

    def __init__(self) -> None:
        super().__init__(0)
        self.ranges: list[tuple[float, float]] = []

    def uniform(self, a: float, b: float) -> float:
        self.ranges.append((a, b))
        return b


def http_date(when: float) -> str:
    return email.utils.formatdate(when, usegmt=True)


# ------------------------------------------------------------------ ExponentialBackoff


def test_bounds_double_until_the_cap() -> None:
    rng = RecordingRandom()
    backoff = ExponentialBackoff(BackoffPolicy(base_s=1.0, factor=2.0, cap_s=60.0), rng)
    draws = [next(backoff) for _ in range(9)]
    assert [b for _, b in rng.ranges] == [1, 2, 4, 8, 16, 32, 60, 60, 60]
    assert all(a == 0 for a, _ in rng.ranges)  # full jitter: the draw starts at zero
    assert draws == [1, 2, 4, 8, 16, 32, 60, 60, 60]


def test_attempts_are_counted_and_reset() -> None:
    rng = RecordingRandom()
    backoff = ExponentialBackoff(BackoffPolicy(base_s=0.5, factor=3.0, cap_s=100.0), rng)
    assert backoff.attempt == 0
    next(backoff)
    next(backoff)
    assert backoff.attempt == 2
    backoff.reset()
    assert backoff.attempt == 0
    next(backoff)
    assert rng.ranges == [(0, 0.5), (0, 1.5), (0, 0.5)]


def test_is_its_own_iterator() -> None:
    backoff = ExponentialBackoff(BackoffPolicy(), random.Random(1))
    assert iter(backoff) is backoff
    delays = [d for _, d in zip(range(5), backoff, strict=False)]
    assert len(delays) == 5
    assert backoff.attempt == 5


@settings(max_examples=200, deadline=None)
@given(
    base=st.floats(min_value=0.001, max_value=10),
    factor=st.floats(min_value=1.0, max_value=10),
    cap=st.floats(min_value=0.001, max_value=3600),
    seed=st.integers(0, 2**32),
)
def test_full_jitter_draws_stay_within_their_bounds(
    base: float, factor: float, cap: float, seed: int
) -> None:
    backoff = ExponentialBackoff(
        BackoffPolicy(base_s=base, factor=factor, cap_s=cap), random.Random(seed)
    )
    for attempt in range(40):
        delay = next(backoff)
        assert 0 <= delay <= min(cap, base * factor**attempt) + 1e-9


def test_draws_are_spread_not_fixed() -> None:
    backoff = ExponentialBackoff(BackoffPolicy(base_s=60, cap_s=60), random.Random(3))
    draws = [next(backoff) for _ in range(200)]
    assert min(draws) < 10
    assert max(draws) > 50


def test_seeded_backoffs_are_reproducible() -> None:
    def run() -> list[float]:
        backoff = ExponentialBackoff(BackoffPolicy(), random.Random(42))
        return [next(backoff) for _ in range(10)]

    assert run() == run()


def test_the_iterator_is_endless_over_a_long_outage() -> None:
    # A 12 h refresh token at ~30 s per capped attempt is ~1,500 attempts; 2.0 ** 1024
    # overflows a float, which used to end the "endless" iterator with OverflowError.
    rng = RecordingRandom()
    backoff = ExponentialBackoff(BackoffPolicy(base_s=1.0, factor=2.0, cap_s=60.0), rng)
    for _ in range(5000):
        assert 0 <= next(backoff) <= 60
    assert backoff.attempt == 5000
    assert rng.ranges[-1] == (0, 60)


def test_integer_policies_do_not_overflow_either() -> None:
    backoff = ExponentialBackoff(BackoffPolicy(base_s=1, factor=2, cap_s=30), random.Random(0))
    backoff.attempt = 2000
    assert 0 <= next(backoff) <= 30


# ------------------------------------------------------------------ parse_retry_after


@pytest.mark.parametrize(
    ("header", "expected"),
    [("0", 0.0), ("7", 7.0), ("120", 120.0), (" 30 ", 30.0), ("300", 300.0)],
)
def test_delta_seconds(header: str, expected: float) -> None:
    assert parse_retry_after(header, NOW) == expected


def test_absent_header() -> None:
    assert parse_retry_after(None, NOW) is None


@pytest.mark.parametrize(
    "header", ["", "   ", "soon", "1.5", "-5", "-0", "+5", "5s", "1e3", "0x10", "²", "٣", "NaN"]
)
def test_unreadable_or_negative_values_are_ignored(header: str) -> None:
    assert parse_retry_after(header, NOW) is None


@pytest.mark.parametrize("header", ["301", "86400", "9" * 400])
def test_huge_delays_are_clamped(header: str) -> None:
    assert parse_retry_after(header, NOW) == MAX_RETRY_AFTER_S == 300.0


def test_http_date_in_the_future() -> None:
    assert parse_retry_after(http_date(NOW + 45), NOW) == pytest.approx(45)


def test_http_date_is_measured_on_the_given_clock() -> None:
    # The date is the server's: "now" is the server-corrected time, not ours.
    header = http_date(NOW + 45)
    assert parse_retry_after(header, NOW + 40) == pytest.approx(5)


def test_http_date_in_the_past_means_now() -> None:
    assert parse_retry_after(http_date(NOW - 3600), NOW) == 0.0


def test_http_date_far_in_the_future_is_clamped() -> None:
    assert parse_retry_after(http_date(NOW + 7 * 86400), NOW) == MAX_RETRY_AFTER_S


@pytest.mark.parametrize(
    "header", ["Tue, 14 Nov 2023 25:99:99 GMT", "Tue, 14 Nov 2023 22:13:20", "Mon, 32 Foo 2023"]
)
def test_malformed_or_zoneless_dates_are_ignored(header: str) -> None:
    assert parse_retry_after(header, NOW) is None


@settings(max_examples=200, deadline=None)
@given(header=st.text(max_size=60) | st.from_regex(r"\A\s*\d{1,500}\s*\Z"))
def test_any_header_gives_none_or_a_clamped_delay(header: str) -> None:
    delay = parse_retry_after(header, NOW)
    assert delay is None or 0.0 <= delay <= MAX_RETRY_AFTER_S


# ------------------------------------------------------------------ retry_delay


def test_retry_delay_without_retry_after_is_the_draw() -> None:
    rng = RecordingRandom()
    backoff = ExponentialBackoff(BackoffPolicy(base_s=4.0), rng)
    assert retry_delay(backoff, None) == 4.0
    assert backoff.attempt == 1


def test_retry_after_is_a_floor() -> None:
    backoff = ExponentialBackoff(BackoffPolicy(base_s=4.0), RecordingRandom())
    assert retry_delay(backoff, 120.0) == 120.0
    assert backoff.attempt == 1  # the backoff still advances


def test_a_longer_draw_wins_over_a_short_retry_after() -> None:
    backoff = ExponentialBackoff(BackoffPolicy(base_s=4.0), RecordingRandom())
    assert retry_delay(backoff, 1.0) == 4.0


@settings(max_examples=200, deadline=None)
@given(
    retry_after=st.none() | st.floats(min_value=0, max_value=MAX_RETRY_AFTER_S),
    attempts=st.integers(0, 50),
    seed=st.integers(0, 2**32),
)
def test_retry_delay_is_never_sooner_than_asked_nor_later_than_cap_plus_asked(
    retry_after: float | None, attempts: int, seed: int
) -> None:
    policy = BackoffPolicy()
    backoff = ExponentialBackoff(policy, random.Random(seed))
    backoff.attempt = attempts
    delay = retry_delay(backoff, retry_after)
    floor = retry_after or 0.0
    assert floor <= delay <= policy.cap_s + floor
