"""spec: durations, rates and fault specs as text, and fault plans scheduled on an injector."""

from __future__ import annotations

import math

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kiosk.core.backoff import parse_retry_after
from kiosk.testing.clock import VirtualClock
from kiosk.testing.faults import FaultInjector
from kiosk.testing.spec import (
    FaultPlan,
    FaultWindow,
    SpecError,
    parse_duration,
    parse_faults,
    parse_rate,
)

#: Seconds per unit, written out here independently of the module's table.
SECONDS_PER = {"ms": 0.001, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0}

ALL_KINDS = [
    "outage",
    "wifi",
    "flaky",
    "connect_timeout",
    "read_timeout",
    "latency",
    "restart",
    "5xx",
    "500",
    "502",
    "503",
    "504",
    "429",
]


# ---------------------------------------------------------------------------- parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30.0),
        ("5m", 300.0),
        ("5min", 300.0),
        ("3h", 10_800.0),
        ("2d", 172_800.0),
        ("250ms", 0.25),
        ("1.5h", 5_400.0),
        ("1h30m", 5_400.0),
        ("1h30m15s", 5_415.0),
        ("1d2h", 93_600.0),
        ("2m500ms", 120.5),
        (" 5 m ", 300.0),
        ("1H30M", 5_400.0),
    ],
)
def test_parse_duration_reads_units_and_compounds(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(("text", "seconds"), [("90", 90.0), ("0", 0.0), ("2.5", 2.5)])
def test_a_bare_number_is_seconds(text, seconds):
    assert parse_duration(text) == seconds


def test_numbers_pass_through_as_seconds():
    assert parse_duration(90) == 90.0
    assert parse_duration(1.5) == 1.5
    assert isinstance(parse_duration(3), float)


def test_minus_zero_is_plain_zero():
    value = parse_duration("-0")
    assert value == 0.0
    assert math.copysign(1.0, value) == 1.0


@pytest.mark.parametrize(
    "bad",
    [
        "-5",
        "-5m",
        "-1h30m",
        "nan",
        "inf",
        "-inf",
        "",
        "   ",
        "abc",
        "5x",
        "5mins",
        "h",
        "1h30",
        "m5",
        "1.h",
        "1h-30m",
        "1e400",
        float("nan"),
        float("inf"),
        -1.0,
    ],
)
def test_parse_duration_rejects_garbage_negative_and_non_finite(bad):
    with pytest.raises(SpecError):
        parse_duration(bad)


def test_spec_error_is_a_value_error():
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("soon")


@given(st.text())
def test_any_text_is_a_duration_or_a_spec_error(text):
    try:
        value = parse_duration(text)
    except SpecError:
        return
    assert math.isfinite(value)
    assert value >= 0


_numbers = st.one_of(
    st.integers(min_value=0, max_value=10**6).map(str),
    st.tuples(st.integers(0, 10_000), st.integers(0, 999)).map(lambda p: f"{p[0]}.{p[1]:03d}"),
)


@given(st.lists(st.tuples(_numbers, st.sampled_from(sorted(SECONDS_PER))), min_size=1, max_size=5))
def test_durations_built_from_parts_parse_to_their_sum(parts):
    text = "".join(number + unit for number, unit in parts)
    expected = sum(float(number) * SECONDS_PER[unit] for number, unit in parts)
    assert parse_duration(text) == pytest.approx(expected, rel=1e-12, abs=1e-12)


# ---------------------------------------------------------------------------- parse_rate


@pytest.mark.parametrize(
    ("text", "per_second"),
    [
        ("10", 10.0),
        ("10/s", 10.0),
        ("10/sec", 10.0),
        ("0.5", 0.5),
        ("1/min", 1 / 60),
        ("1/m", 1 / 60),
        ("60/h", 1 / 60),
        ("3600/h", 1.0),
        (" 2/S ", 2.0),
    ],
)
def test_parse_rate_reads_counts_per_unit(text, per_second):
    assert parse_rate(text) == pytest.approx(per_second)


def test_parse_rate_takes_numbers():
    assert parse_rate(4) == 4.0
    assert parse_rate(0.25) == 0.25


@pytest.mark.parametrize("bad", [0, -3, 0.0, float("nan"), float("inf")])
def test_parse_rate_rejects_numbers_that_are_no_rate(bad):
    with pytest.raises(SpecError, match="positive"):
        parse_rate(bad)


@pytest.mark.parametrize(
    "bad",
    ["0", "0/s", "0/min", "-1", "-1/min", "10/d", "10/x", "10/hour", "abc", "", "nan", "inf/h"],
)
def test_parse_rate_rejects_zero_negative_and_bad_units(bad):
    with pytest.raises(SpecError):
        parse_rate(bad)


def test_parse_rate_names_the_allowed_units():
    with pytest.raises(SpecError, match=r"/s, /min or /h"):
        parse_rate("5/fortnight")


# ---------------------------------------------------------------------------- parse_faults


@pytest.mark.parametrize("spec", [None, "", "   ", " , ,"])
def test_no_spec_is_no_faults(spec):
    plan = parse_faults(spec)
    assert plan.windows == ()
    assert plan.skew_s == 0.0
    assert plan.restarts == []


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_every_kind_parses_with_its_start_and_duration(kind):
    plan = parse_faults(f"{kind}@1h+5m")
    assert plan.windows == (FaultWindow(kind, 3600.0, 300.0, {}),)
    assert plan.windows[0].end_s == 3900.0


def test_kinds_and_parameter_names_are_case_insensitive():
    plan = parse_faults("OUTAGE@1h+5m, Flaky@2h+1m:P=0.5")
    assert [w.kind for w in plan.windows] == ["outage", "flaky"]
    assert plan.windows[1].params == {"p": 0.5}


@pytest.mark.parametrize(
    ("spec", "params"),
    [
        ("flaky@7h+10m:p=0.2", {"p": 0.2}),
        ("flaky@7h+10m:p=0", {"p": 0.0}),
        ("flaky@7h+10m:p=1", {"p": 1.0}),
        ("429@2h+1m:retry_after=5", {"retry_after": 5.0}),
        ("429@2h+1m:retry_after=2m", {"retry_after": 120.0}),
        ("latency@1h+10m:delay=2s", {"delay": 2.0}),
        ("latency@1h+10m:delay=250ms", {"delay": 0.25}),
        ("read_timeout@4h+2m:path=/api/token/refresh/", {"path": "/api/token/refresh/"}),
        (
            "5xx@1h+1m:p=0.5:retry_after=3:path=/api/me/",
            {"p": 0.5, "retry_after": 3.0, "path": "/api/me/"},
        ),
        ("503@1h+1m: p = 0.25 ", {"p": 0.25}),
    ],
)
def test_parameters_are_parsed_to_their_types(spec, params):
    (window,) = parse_faults(spec).windows
    assert window.params == params


@pytest.mark.parametrize(
    ("item", "skew"),
    [("skew=4m", 240.0), ("skew=-4m", -240.0), ("skew=+90s", 90.0), ("SKEW=1h", 3600.0)],
)
def test_skew_is_a_signed_duration_and_no_window(item, skew):
    plan = parse_faults(f"outage@1h+1m, {item}")
    assert plan.skew_s == skew
    assert [w.kind for w in plan.windows] == ["outage"]


def test_windows_are_sorted_by_start_time():
    plan = parse_faults("5xx@5h+30s, outage@3h+5m, restart@6h+20s, 429@2h+1m, latency@3h+1m")
    assert [(w.kind, w.start_s) for w in plan.windows] == [
        ("429", 7200.0),
        ("outage", 10800.0),
        ("latency", 10800.0),  # same start: the spec's order
        ("5xx", 18000.0),
        ("restart", 21600.0),
    ]
    assert [w.kind for w in plan.restarts] == ["restart"]


def test_the_documented_example_round_trips_through_describe():
    spec = (
        "outage@3h+5m, 5xx@5h+30s, 429@2h+1m:retry_after=5, latency@1h+10m:delay=2s, "
        "flaky@7h+10m:p=0.2, read_timeout@4h+2m:path=/refresh/, restart@6h+20s, skew=-4m"
    )
    plan = parse_faults(spec)
    assert len(plan.windows) == 7
    assert parse_faults(plan.describe()) == plan


@pytest.mark.parametrize(
    ("start", "duration"),
    [(1_234_567.0, 0.125), (3600.125, 1.0), (0.0, 1e-7), (1e16, 5.0), (43_200.5, 86_400.25)],
)
def test_describe_keeps_large_and_precise_times(start, duration):
    plan = FaultPlan((FaultWindow("outage", start, duration),), skew_s=-1_000_000.5)
    again = parse_faults(plan.describe())
    assert again.windows[0].start_s == start
    assert again.windows[0].duration_s == duration
    assert again.skew_s == -1_000_000.5


_finite = st.floats(min_value=0, max_value=1e12, allow_nan=False, allow_infinity=False)
_params = st.fixed_dictionaries(
    {},
    optional={
        "p": st.floats(min_value=0, max_value=1),
        "retry_after": _finite,
        "delay": _finite,
        "path": st.text(alphabet="abcdefghij/_-.", min_size=1, max_size=20),
    },
)
_windows = st.builds(
    FaultWindow,
    kind=st.sampled_from(ALL_KINDS),
    start_s=_finite,
    duration_s=_finite.filter(lambda d: d > 0),
    params=_params,
)


@given(
    st.lists(_windows, max_size=6),
    st.floats(min_value=-1e9, max_value=1e9, allow_nan=False),
)
def test_any_plan_round_trips_through_describe(windows, skew):
    plan = FaultPlan(tuple(sorted(windows, key=lambda w: w.start_s)), skew + 0.0)
    assert parse_faults(plan.describe()) == plan


@pytest.mark.parametrize(
    "item",
    [
        "outage",
        "outage@1h",
        "nope@1h+1m",
        "outage@1h+0s",
        "outage@1h+5x",
        "outage@-1h+5m",
        "outage@+5m",
        "outage@soon+5m",
        "outage@1h+1m:q=2",
        "outage@1h+1m:nonsense",
        "flaky@1h+1m:p",
        "flaky@1h+1m:p=x",
        "flaky@1h+1m:p=1.5",
        "flaky@1h+1m:p=-0.1",
        "flaky@1h+1m:p=nan",
        "429@1h+1m:retry_after=-1",
        "latency@1h+1m:delay=soon",
        "skew=abc",
        "skew=",
        "skew=--5m",
    ],
)
def test_every_malformed_item_is_a_spec_error_that_names_it(item):
    with pytest.raises(SpecError) as caught:
        parse_faults(f"outage@10s+1s, {item}, 5xx@1h+1m")
    message = str(caught.value)
    assert item in message
    assert "outage@10s+1s" not in message


def test_a_parameter_without_a_value_says_so():
    with pytest.raises(SpecError, match="needs a value"):
        parse_faults("flaky@1h+1m:p")


def test_an_unknown_kind_lists_the_known_ones():
    with pytest.raises(SpecError, match="read_timeout"):
        parse_faults("gremlins@1h+1m")


@given(st.text())
def test_any_text_is_a_fault_plan_or_a_spec_error(text):
    try:
        plan = parse_faults(text)
    except SpecError:
        return
    assert isinstance(plan, FaultPlan)
    assert all(w.duration_s > 0 and w.start_s >= 0 for w in plan.windows)


_SPEC_PIECES = [*"@+:=,-.150hms e", "ms", "p", "retry_after", "delay", "path", "skew=", "nan"]


@given(st.lists(st.sampled_from([*ALL_KINDS, *_SPEC_PIECES]), max_size=30).map("".join))
def test_near_miss_specs_are_a_fault_plan_or_a_spec_error(text):
    try:
        plan = parse_faults(text)
    except SpecError:
        return
    assert all(w.kind in ALL_KINDS and w.duration_s > 0 for w in plan.windows)


# ---------------------------------------------------------------------------- FaultPlan.apply


def _injector(clock: VirtualClock | None = None) -> FaultInjector:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json={"ok": True}))
    return FaultInjector(transport, clock=clock)


def test_apply_schedules_every_transport_fault_and_skips_restarts():
    plan = parse_faults(
        "outage@10s+5s, restart@20s+5s, 429@30s+5s, 5xx@40s+5s:retry_after=2.5, 502@50s+5s, "
        "latency@60s+5s:delay=3s, flaky@70s+5s, read_timeout@80s+5s:path=/refresh/, "
        "connect_timeout@90s+5s:p=0.5, wifi@100s+5s"
    )
    injector = _injector(VirtualClock())
    plan.apply(injector)
    got = [
        (w.kind, w.start_s, w.end_s, w.status, w.retry_after, w.seconds, w.probability, w.path)
        for w in injector.windows
    ]
    assert got == [
        ("connect_error", 10, 15, 503, None, 0.0, 1.0, ""),
        ("status", 30, 35, 429, "5", 0.0, 1.0, ""),
        ("status", 40, 45, 503, "3", 0.0, 1.0, ""),  # 2.5 s: whole delta-seconds, rounded up
        ("status", 50, 55, 502, None, 0.0, 1.0, ""),
        ("latency", 60, 65, 503, None, 3.0, 1.0, ""),
        ("connect_error", 70, 75, 503, None, 0.0, 0.3, ""),
        ("read_timeout", 80, 85, 503, None, 0.0, 1.0, "/refresh/"),
        ("connect_timeout", 90, 95, 503, None, 0.0, 0.5, ""),
        ("connect_error", 100, 105, 503, None, 0.0, 1.0, ""),
    ]


@pytest.mark.parametrize(("kind", "status"), [("5xx", 503), ("500", 500), ("504", 504)])
def test_status_kinds_carry_their_status(kind, status):
    injector = _injector(VirtualClock())
    parse_faults(f"{kind}@0s+1s").apply(injector)
    (window,) = injector.windows
    assert (window.kind, window.status, window.retry_after) == ("status", status, None)


@pytest.mark.parametrize("kind", ["outage", "wifi", "latency", "429", "read_timeout"])
def test_every_kind_honours_p(kind):
    injector = _injector(VirtualClock())
    parse_faults(f"{kind}@0s+1s:p=0.25").apply(injector)
    assert injector.windows[0].probability == 0.25


def test_apply_needs_an_injector_with_a_clock():
    with pytest.raises(ValueError, match="clock"):
        parse_faults("outage@1s+1s").apply(_injector())


def test_a_plan_with_only_restarts_schedules_nothing():
    injector = _injector(VirtualClock())
    parse_faults("restart@1h+20s").apply(injector)
    assert injector.windows == []


async def test_applied_windows_hit_requests_at_their_time_on_the_clock():
    clock = VirtualClock()
    injector = _injector(clock)
    parse_faults("outage@10s+5s, 429@30s+5s:retry_after=2.5").apply(injector)
    async with httpx.AsyncClient(transport=injector, base_url="http://t") as client:
        assert (await client.get("/a")).status_code == 200
        await clock.advance(12)
        with pytest.raises(httpx.ConnectError):
            await client.get("/a")
        await clock.advance(4)  # 16 s: the outage is over
        assert (await client.get("/a")).status_code == 200
        await clock.advance(15)  # 31 s
        limited = await client.get("/a")
    assert limited.status_code == 429
    # The client's RFC 9110 parser can read the header: it asks for at least 2.5 s.
    assert parse_retry_after(limited.headers["retry-after"], clock.time()) == 3.0


async def test_an_outage_with_p_zero_lets_everything_through():
    clock = VirtualClock()
    injector = _injector(clock)
    parse_faults("outage@0s+10s:p=0").apply(injector)
    async with httpx.AsyncClient(transport=injector, base_url="http://t") as client:
        codes = [(await client.get("/a")).status_code for _ in range(20)]
    assert codes == [200] * 20
    assert injector.injected() == []
