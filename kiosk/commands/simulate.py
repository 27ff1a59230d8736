"""``kiosk simulate``: play a shift and report its KPIs (QA's proof that a build survives one).

Two modes::

    kiosk simulate --server URL --username U --password-env VAR [--config FILE] [server flags]
                   [--profile general-ward] --duration 30s --windows 5 [--processes 1] --rate 10
                   [--faults SPEC] [--json]
    kiosk simulate --virtual --hours 12 [--profile general-ward] [--windows 5] [--faults SPEC]
                   [--json]

The first runs in real time against a live server: every window issues ``--rate`` requests a
second (``GET /api/me/``, and where the server has the demo ward API a few patient-list GETs
and observation POSTs with an ``Idempotency-Key``); the nurse logs in once and signs out at the
end. The second runs the bundled reference server (real Django + simplejwt) in this process on
virtual time, with the profile's token lifetimes: a 12 h shift in seconds (there ``--config``
gives only the ``[session]`` policy).

``--json`` prints one object: every :class:`~kiosk.testing.shift.ShiftReport` field (``wall_s``
included), ``kpi_failures`` and ``ok``. ``refreshes`` counts the refresh requests that reached
the server, which is what the server's own counters see.

Exit status: 0 when every KPI threshold is met and no work was lost, 1 when not, 2 on usage
errors (and when the first login fails).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from typing import Any

from kiosk.commands.server_args import UsageError, add_server_flags, settings_from_args
from kiosk.core.errors import ConfigurationError, KioskError

#: The order of the fields in the readable output.
_SHOWN = (
    "duration_s",
    "windows",
    "requests",
    "requests_failed",
    "requests_recovered",
    "requests_lost",
    "duplicate_writes",
    "refreshes",
    "server_refreshes",
    "refresh_failures",
    "refresh_success_rate",
    "refresh_latency_p50_ms",
    "refresh_latency_p95_ms",
    "logins",
    "interruptions",
    "forced_logouts",
    "user_visible_401",
    "locks",
    "session_duration_s",
    "wall_s",
)


def _policy(args: argparse.Namespace) -> Any:
    from kiosk.core.config import load_policy
    from kiosk.core.settings import profile

    if args.config is not None:
        return load_policy(args.config, profile=args.profile)
    return profile(args.profile or "general-ward")


def _plan(args: argparse.Namespace, policy: Any) -> Any:
    from kiosk.testing.shift import ShiftPlan
    from kiosk.testing.spec import parse_duration, parse_faults, parse_rate

    if args.windows < 1:
        raise UsageError("--windows must be at least 1")
    if args.processes != 1:
        raise UsageError(
            "--processes: only 1 for now; several kiosk processes sharing one workstation "
            "session arrive with the workstation-sync work"
        )
    if args.virtual:
        if args.hours is not None and args.duration is not None:
            raise UsageError("give --hours or --duration, not both")
        duration = args.hours * 3600 if args.hours is not None else None
        if args.duration is not None:
            duration = parse_duration(args.duration)
        if duration is None:
            duration = 12 * 3600.0
        rate = parse_rate(args.rate) if args.rate is not None else 1 / 60
    else:
        if args.hours is not None:
            raise UsageError("--hours is for --virtual; give a live run's --duration")
        duration = parse_duration(args.duration if args.duration is not None else "30s")
        rate = parse_rate(args.rate if args.rate is not None else "1")
    if not duration > 0:
        raise UsageError("the shift must last longer than 0 s")
    faults = parse_faults(args.faults)
    for window in faults.windows:
        if window.start_s >= duration:
            raise UsageError(
                f"fault {window.kind}@{window.start_s:g}s starts after the shift ends "
                f"({duration:g} s)"
            )
    return ShiftPlan(
        duration_s=duration,
        windows=args.windows,
        rate_per_s=rate,
        user=args.username or "alice",
        faults=faults,
        profile=policy,
        seed=args.seed,
    )


def _simulator(args: argparse.Namespace, plan: Any) -> Any:
    from kiosk.testing.shift import PROFILE_LIFETIMES, ShiftSimulator

    if args.virtual:
        if args.server:
            raise UsageError("--virtual runs the bundled reference server: no --server")
        access_s, refresh_s = PROFILE_LIFETIMES.get(
            plan.policy.name, PROFILE_LIFETIMES["general-ward"]
        )
        if args.access_s is not None:
            access_s = args.access_s
        return ShiftSimulator.in_process(access_s=access_s, refresh_s=refresh_s)
    if args.access_s is not None:
        raise UsageError("--access-lifetime is for --virtual (a live server decides its own)")
    if not args.username or not args.password_env:
        raise UsageError("a live run needs --username and --password-env VAR")
    password = os.environ.get(args.password_env)
    if not password:
        raise UsageError(f"environment variable {args.password_env} is empty or unset")
    settings, _given = settings_from_args(args, args.server)
    if plan.fault_plan.skew_s:
        raise UsageError("skew= faults need --virtual (a live server's clock is its own)")
    if plan.fault_plan.restarts:
        raise UsageError("restart faults need --virtual (kiosk cannot restart a live server)")
    return ShiftSimulator.remote(settings, {args.username: password})


def render(data: dict[str, Any]) -> str:
    """The report as a readable table, then the verdict."""
    lines = []
    for key in _SHOWN:
        value = data.get(key)
        if isinstance(value, float):
            value = f"{value:.4g}" if key.endswith("rate") else f"{value:.1f}"
        lines.append(f"{key:<24} {value}")
    failures = data.get("kpi_failures") or []
    if data.get("requests_lost"):
        lines.append(f"lost work by reason      {data.get('lost_reasons')}")
    if data.get("failure_reasons"):
        lines.append(f"failed attempts          {data.get('failure_reasons')}")
    lines.append(
        "KPIs met" if data["ok"] else "KPIs MISSED: " + "; ".join(failures or ["lost work"])
    )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Play the shift; 0 KPIs met, 1 missed, 2 usage error or failed first login."""
    from kiosk.testing.spec import SpecError

    try:
        policy = _policy(args)
        plan = _plan(args, policy)
        simulator = _simulator(args, plan)
    except (UsageError, ConfigurationError, SpecError) as exc:
        print(f"kiosk simulate: {exc}", file=sys.stderr)
        return 2
    mode = "virtual time, in-process reference server" if args.virtual else "real time"
    print(
        f"kiosk simulate: {plan.duration_s:g} s shift, {plan.windows} window(s), "
        f"profile {plan.policy.name}, {mode}",
        file=sys.stderr,
        flush=True,
    )
    try:
        report = asyncio.run(simulator.run(plan))
    except ValueError as exc:
        print(f"kiosk simulate: {exc}", file=sys.stderr)
        return 2
    except KioskError as exc:
        print(f"kiosk simulate: the first login failed: {exc}", file=sys.stderr)
        return 2
    data = report.as_dict()
    data["ok"] = report.ok and report.requests_lost == 0
    print(json.dumps(data) if args.json else render(data), flush=True)
    return 0 if data["ok"] else 1


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``simulate`` to the ``kiosk`` command."""
    parser = sub.add_parser(
        "simulate",
        help="play a shift (live server, or --virtual on virtual time) and report its KPIs",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    parser.add_argument("--server", metavar="URL", help="the live server's base URL")
    parser.add_argument("--username", help="the nurse's account on the live server")
    parser.add_argument(
        "--password-env", metavar="VAR", help="environment variable holding the password"
    )
    parser.add_argument(
        "--virtual",
        action="store_true",
        help="run the bundled reference server in-process on virtual time",
    )
    parser.add_argument("--hours", type=float, help="the shift's length (--virtual; default 12)")
    parser.add_argument("--duration", help="the shift's length, e.g. 30s, 5m, 12h (default 30s)")
    parser.add_argument("--profile", help="icu, general-ward (default), outpatient, research")
    parser.add_argument("--windows", type=int, default=5, help="kiosk windows (default 5)")
    parser.add_argument(
        "--processes", type=int, default=1, help="kiosk processes on the workstation (1)"
    )
    parser.add_argument(
        "--rate", help="requests a second per window (10, 1/min...; live 1, virtual 1/min)"
    )
    parser.add_argument(
        "--faults", metavar="SPEC", help="e.g. 'outage@3h+5m, 5xx@5h+30s, skew=4m' (docs/qa.md)"
    )
    parser.add_argument(
        "--access-lifetime",
        dest="access_s",
        type=float,
        metavar="S",
        help="--virtual: the bundled server's access token lifetime (default: the profile's)",
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of every random choice")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    add_server_flags(parser)
    parser.set_defaults(func=run)


__all__ = ["register", "render", "run"]
