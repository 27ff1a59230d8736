"""Text forms of a shift simulation: durations, request rates and fault specs.

Used by ``kiosk simulate`` and by :class:`~kiosk.testing.shift.ShiftPlan` (which also takes
the parsed objects directly).

Durations: ``30s``, ``5m``, ``3h``, ``1h30m``, ``250ms``, ``1.5h``; a bare number is seconds.

Rates (requests per second per window): ``10``, ``10/s``, ``1/min``, ``60/h``.

Fault spec: items separated by commas, each ``KIND@START+DURATION[:KEY=VALUE...]`` (times from
the start of the shift), or ``skew=[-]DURATION`` (the workstation's clock runs that much ahead
of the server's; virtual time only)::

    outage@3h+5m, 5xx@5h+30s, 429@2h+1m:retry_after=5, latency@1h+10m:delay=2s,
    flaky@7h+10m:p=0.2, read_timeout@4h+2m:path=/refresh/, restart@6h+20s, skew=4m

========================  ============================================================
kind                      effect on every matching request in the window
========================  ============================================================
``outage``, ``wifi``      connection fails (``ConnectError``: not sent)
``flaky``                 like ``outage`` for a share ``p`` of requests (default 0.3)
``connect_timeout``       timeout before sending (``ConnectTimeout``: not sent)
``read_timeout``          sent and processed, answer lost (``ReadTimeout``)
``5xx``                   HTTP 503 (or ``500``, ``502``, ``503``, ``504`` as the kind)
``429``                   HTTP 429 with ``Retry-After`` (``retry_after``, default 5 s)
``latency``               the answer comes ``delay`` late (default 2 s)
``restart``               the real server is stopped for the window, then started again
========================  ============================================================

Every kind takes ``path=SUBSTRING`` to hit only some endpoints (``path=/api/token/refresh/``)
and ``p=SHARE`` to hit only that share of the matching requests (default 1, flaky 0.3).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from kiosk.testing.faults import FaultInjector, FaultKind

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|min|s|m|h|d)")


class SpecError(ValueError):
    """A duration, rate or fault spec that cannot be read (the message says why)."""


def parse_duration(text: str | float) -> float:
    """Seconds in ``text`` (``90``, ``30s``, ``5m``, ``1h30m``, ``250ms``).

    Raises:
        SpecError: not a duration, or negative.
    """
    if isinstance(text, int | float):
        value = float(text)
    else:
        raw = text.strip().lower().replace(" ", "")
        try:
            value = float(raw)
        except ValueError:
            pos, value = 0, 0.0
            for match in _PART.finditer(raw):
                if match.start() != pos:
                    break
                value += float(match.group(1)) * _UNITS[match.group(2)]
                pos = match.end()
            if pos != len(raw) or not raw:
                raise SpecError(
                    f"{text!r} is not a duration (examples: 30s, 5m, 1h30m, 250ms)"
                ) from None
    if value != value or value < 0 or value == float("inf"):
        raise SpecError(f"{text!r}: a duration must be a finite number of seconds >= 0")
    return value + 0.0  # "-0" is 0.0, not -0.0 (which describe() would write as "-0s")


def parse_rate(text: str | float) -> float:
    """Requests per second in ``text`` (``10``, ``10/s``, ``1/min``, ``60/h``).

    Raises:
        SpecError: not a rate, or not positive.
    """
    if isinstance(text, int | float):
        value = float(text)
    else:
        count, _, per = text.strip().lower().partition("/")
        try:
            value = float(count)
        except ValueError:
            raise SpecError(f"{text!r} is not a rate (examples: 10, 10/s, 1/min)") from None
        if per:
            unit = {"s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}.get(per)
            if unit is None:
                raise SpecError(f"{text!r}: the rate's unit must be /s, /min or /h")
            value /= unit
    if not value > 0 or value == float("inf"):
        raise SpecError(f"{text!r}: a rate must be a positive number of requests")
    return value


@dataclass(frozen=True)
class FaultWindow:
    """One fault of a spec: ``kind`` from ``start_s`` for ``duration_s``.

    Attributes:
        kind: the spec's kind (``outage``, ``5xx``, ``429``, ``restart``...).
        start_s: seconds after the start of the shift.
        duration_s: how long it lasts.
        params: the ``KEY=VALUE`` parameters, parsed.
    """

    kind: str
    start_s: float
    duration_s: float
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def end_s(self) -> float:
        """When it ends."""
        return self.start_s + self.duration_s


@dataclass(frozen=True)
class FaultPlan:
    """A parsed fault spec.

    Attributes:
        windows: the faults on the client's transport and the server restarts, by start time.
        skew_s: how far the workstation's clock runs ahead of the server's.
    """

    windows: tuple[FaultWindow, ...] = ()
    skew_s: float = 0.0

    @property
    def restarts(self) -> list[FaultWindow]:
        """The windows during which the real server is stopped."""
        return [w for w in self.windows if w.kind == "restart"]

    def apply(self, injector: FaultInjector) -> None:
        """Schedule every transport fault of the plan on ``injector`` (which needs a clock)."""
        for w in self.windows:
            if w.kind == "restart":
                continue
            kind, extra = _injector_kind(w)
            injector.window(kind, w.start_s, w.end_s, path=str(w.params.get("path", "")), **extra)

    def describe(self) -> str:
        """The plan as a spec string again (``parse_faults(plan.describe()) == plan``)."""
        parts = [
            f"{w.kind}@{_seconds(w.start_s)}+{_seconds(w.duration_s)}"
            + "".join(f":{k}={v}" for k, v in w.params.items())
            for w in self.windows
        ]
        if self.skew_s:
            parts.append(f"skew={_seconds(self.skew_s)}")
        return ", ".join(parts)


def _seconds(value: float) -> str:
    """``value`` as a duration that parses back to exactly ``value``.

    ``:g`` alone keeps 6 significant digits (``3600.125`` became ``3600.12``) and switches to
    exponents (``1.23457e+06``), which a duration cannot contain: its ``+`` is the spec's.
    """
    text = f"{value:g}"
    if "e" in text or float(text) != value:
        text = format(Decimal(repr(value)), "f")  # the shortest exact form, without exponent
    return f"{text}s"


_STATUS_KINDS = {"5xx": 503, "500": 500, "502": 502, "503": 503, "504": 504, "429": 429}
_KINDS = {
    "outage",
    "wifi",
    "flaky",
    "connect_timeout",
    "read_timeout",
    "latency",
    "restart",
    *_STATUS_KINDS,
}
_PARAMS: dict[str, Any] = {
    "p": float,
    "retry_after": parse_duration,
    "delay": parse_duration,
    "path": str,
}


def _injector_kind(w: FaultWindow) -> tuple[FaultKind, dict[str, Any]]:
    # Every kind honours p (flaky is an outage with p=0.3 by default).
    probability = float(w.params.get("p", 0.3 if w.kind == "flaky" else 1.0))
    if w.kind in {"outage", "wifi", "flaky"}:
        return "connect_error", {"probability": probability}
    if w.kind in {"connect_timeout", "read_timeout"}:
        kind: FaultKind = "connect_timeout" if w.kind == "connect_timeout" else "read_timeout"
        return kind, {"probability": probability}
    if w.kind == "latency":
        return "latency", {"seconds": float(w.params.get("delay", 2.0)), "probability": probability}
    status = _STATUS_KINDS[w.kind]
    extra: dict[str, Any] = {"status": status, "probability": probability}
    if status == 429 or "retry_after" in w.params:
        # A number: the injector writes it as delta-seconds (whole seconds, RFC 9110).
        extra["retry_after"] = float(w.params.get("retry_after", 5.0))
    return "status", extra


def _item_duration(item: str, what: str, text: str) -> float:
    """``parse_duration(text)``, with an error message that names the spec item."""
    try:
        return parse_duration(text)
    except SpecError as exc:
        raise SpecError(f"fault {item!r}: {what}: {exc}") from None


def parse_faults(spec: str | None) -> FaultPlan:
    """Parse a fault spec (see the module docstring); None or "" is no faults.

    Raises:
        SpecError: an unknown kind or parameter, or a malformed item (the message names it).
    """
    if not spec or not spec.strip():
        return FaultPlan()
    windows: list[FaultWindow] = []
    skew = 0.0
    for raw in spec.split(","):
        item = raw.strip()
        if not item:
            continue
        if item.lower().startswith("skew="):
            value = item[5:].strip()
            sign = -1.0 if value.startswith("-") else 1.0
            unsigned = value[1:] if value[:1] in {"+", "-"} else value
            skew = sign * _item_duration(item, "skew", unsigned)
            continue
        head, *params = item.split(":")
        kind, at, when = head.partition("@")
        kind = kind.strip().lower()
        if not at:
            raise SpecError(f"fault {item!r}: write KIND@START+DURATION (e.g. outage@3h+5m)")
        if kind not in _KINDS:
            raise SpecError(
                f"fault {item!r}: unknown kind {kind!r} (known: {', '.join(sorted(_KINDS))})"
            )
        start_text, plus, duration_text = when.partition("+")
        if not plus:
            raise SpecError(f"fault {item!r}: give its duration, e.g. {kind}@{start_text}+30s")
        parsed: dict[str, Any] = {}
        for param in params:
            key, eq, value = param.partition("=")
            key = key.strip().lower()
            if not eq and key in _PARAMS:
                raise SpecError(f"fault {item!r}: parameter {key!r} needs a value ({key}=...)")
            if not eq or key not in _PARAMS:
                raise SpecError(
                    f"fault {item!r}: unknown parameter {param!r} (known: {', '.join(_PARAMS)})"
                )
            try:
                parsed[key] = _PARAMS[key](value.strip())
            except ValueError as exc:
                raise SpecError(f"fault {item!r}: {key}: {exc}") from None
        if "p" in parsed and not 0 <= parsed["p"] <= 1:
            raise SpecError(f"fault {item!r}: p is a probability between 0 and 1")
        start = _item_duration(item, "start", start_text)
        duration = _item_duration(item, "duration", duration_text)
        if duration <= 0:
            raise SpecError(f"fault {item!r}: the duration must be positive")
        windows.append(FaultWindow(kind, start, duration, parsed))
    windows.sort(key=lambda w: w.start_s)
    return FaultPlan(tuple(windows), skew)


__all__ = [
    "FaultPlan",
    "FaultWindow",
    "SpecError",
    "parse_duration",
    "parse_faults",
    "parse_rate",
]
