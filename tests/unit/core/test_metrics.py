"""Session KPIs (kiosk.core.metrics)."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk.core.metrics import LATENCY_WINDOW, Metrics, percentile

# ------------------------------------------------------------------ percentile


def test_percentile_of_nothing() -> None:
    assert percentile([], 0.5) is None


@pytest.mark.parametrize(
    ("samples", "fraction", "expected"),
    [
        ([7.0], 0.5, 7.0),
        ([7.0], 0.95, 7.0),
        ([1, 2, 3, 4], 0.5, 2),  # ceil(0.5 * 4) = 2nd
        ([1, 2, 3, 4, 5, 6], 0.5, 3),  # ceil(0.5 * 6) = 3rd (half-to-even rounding gave 4)
        (list(range(1, 11)), 0.5, 5),  # 5th of 10 (it gave the 6th)
        (list(range(1, 11)), 0.9, 9),
        (list(range(1, 11)), 0.95, 10),  # ceil(9.5) = 10th
        (list(range(1, 21)), 0.95, 19),  # 19th of 20 (it gave the max)
        (list(range(1, 101)), 0.95, 95),
        (list(range(1, 101)), 0.99, 99),
        ([1, 2, 3], 0.0, 1),
        ([1, 2, 3], 1.0, 3),
    ],
)
def test_nearest_rank(samples: list[float], fraction: float, expected: float) -> None:
    assert percentile(samples, fraction) == expected


def test_percentile_does_not_need_sorted_input_nor_change_it() -> None:
    samples = [5.0, 1.0, 4.0, 2.0, 3.0]
    assert percentile(samples, 0.5) == 3.0
    assert samples == [5.0, 1.0, 4.0, 2.0, 3.0]


@settings(max_examples=200, deadline=None)
@given(
    samples=st.lists(st.floats(0, 1e6), min_size=1, max_size=200),
    fraction=st.floats(0, 1),
)
def test_percentile_is_the_nearest_rank(samples: list[float], fraction: float) -> None:
    value = percentile(samples, fraction)
    assert value in samples
    ordered = sorted(samples)
    # Nearest rank: the smallest sample with at least `fraction` of the samples <= it.
    at_or_below = sum(1 for s in ordered if s <= value)
    assert at_or_below >= fraction * len(ordered) - 1e-6
    strictly_below = sum(1 for s in ordered if s < value)
    assert strictly_below < max(1, math.ceil(fraction * len(ordered) - 1e-9))


# ------------------------------------------------------------------ Metrics


def test_fresh_metrics() -> None:
    snapshot = Metrics().as_dict(now=1000.0)
    assert snapshot == {
        "logins": 0,
        "login_failures": 0,
        "refresh_attempts": 0,
        "refresh_successes": 0,
        "refresh_failures": 0,
        "refresh_retries": 0,
        "refresh_success_rate": None,
        "refresh_latency_mean_ms": None,
        "refresh_latency_p50_ms": None,
        "refresh_latency_p95_ms": None,
        "requests": 0,
        "requests_replayed": 0,
        "user_visible_401": 0,
        "interruptions": 0,
        "gate_timeouts": 0,
        "session_start": None,
        "session_duration_s": None,
    }


def test_counters_success_rate_and_latencies() -> None:
    metrics = Metrics(logins=1, refresh_attempts=4, refresh_successes=3, refresh_failures=1)
    metrics.refresh_latencies.extend([0.010, 0.020, 0.030])
    metrics.requests = 50
    metrics.user_visible_401 = 1
    snapshot = metrics.as_dict(now=0)
    assert snapshot["refresh_success_rate"] == 0.75
    assert snapshot["refresh_latency_mean_ms"] == pytest.approx(20.0)
    assert snapshot["refresh_latency_p50_ms"] == pytest.approx(20.0)
    assert snapshot["refresh_latency_p95_ms"] == pytest.approx(30.0)
    assert snapshot["requests"] == 50
    assert snapshot["user_visible_401"] == 1


def test_duration_of_a_running_session_uses_now() -> None:
    metrics = Metrics(session_start=1000.0)
    assert metrics.as_dict(now=4600.0)["session_duration_s"] == 3600.0
    assert metrics.as_dict(now=5000.0)["session_duration_s"] == 4000.0


def test_duration_of_an_ended_session_ignores_now() -> None:
    metrics = Metrics(session_start=1000.0, session_end=44200.0)
    assert metrics.as_dict(now=99999.0)["session_duration_s"] == 43200.0


def test_latency_window_is_bounded() -> None:
    metrics = Metrics()
    for i in range(LATENCY_WINDOW + 500):
        metrics.refresh_latencies.append(float(i))
    assert len(metrics.refresh_latencies) == LATENCY_WINDOW
    assert metrics.refresh_latencies[0] == 500.0  # the oldest were dropped


def test_metrics_do_not_share_their_latency_window() -> None:
    a, b = Metrics(), Metrics()
    a.refresh_latencies.append(1.0)
    assert list(b.refresh_latencies) == []


def test_snapshot_is_json_ready_and_detached() -> None:
    metrics = Metrics(session_start=1.0, refresh_attempts=1, refresh_successes=1)
    metrics.refresh_latencies.append(0.012)
    snapshot = metrics.as_dict(now=2.0)
    json.dumps(snapshot, allow_nan=False)
    metrics.refresh_attempts += 5
    assert snapshot["refresh_attempts"] == 1
