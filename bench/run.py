"""kiosk benchmarks against the reference simplejwt server (gunicorn on 127.0.0.1).

    python bench/run.py --quick --json   # ~2.5 min; one JSON object on stdout, progress on stderr
    python bench/run.py --json           # larger counts, three burst rounds (~12 min)

Measured side by side in one run (see bench/RESULTS.md for the figures and their reading):

1. ``burst_*``: N concurrent GETs through ``tm.auth`` on an expired access token (rotation +
   blacklist): refresh POSTs the server saw (target exactly 1), failed requests, wall time.
2. ``burst_*_httpx_docs_pattern``: the same through httpx's documented refresh-on-401 recipe.
3. ``burst_*_authlib``: the same through authlib's ``AsyncOAuth2Client`` adapted to simplejwt
   (leeway shorter than the token); ``*_authlib_default_leeway``: with its default 60 s leeway.
4. ``burst_wall_ratio`` = kiosk's burst wall time / authlib's (target <= 1.0).
5. ``overhead_ratio``: median sequential GET through ``tm.auth`` / with a static header (<= 1.05).
6. ``refresh_latency_ratio``: median ``tm.refresh()`` / median raw refresh POST (<= 1.10).
7. ``startup_ratio``: process start -> sign-in window shown, kiosk / bare PySide6 window (<= 1.5).
8. ``rss_ratio``: RSS signed in with the workspace and three windows / a bare PySide6 window
   that imported httpx, PyJWT and keyring (<= 1.25). 7 and 8: bench/qt_bench.py.
9. ``ui_stall_p99_ms``: p99 UI event-loop stall of the real KioskApp while 5 windows request
   through the bridge across 20 refreshes, 3 s access tokens (<= 16 ms; bench/qt_probes.py).
10. ``shift_12h_wall_s``: wall seconds of ``kiosk.testing.shift.measure_shift_12h()`` (a 12 h
    general-ward shift on virtual time, in a child process; <= 10 s; bench/shift_bench.py).

7-10 run in child processes, one after another, after 5 and 6 in the first burst round's wait
for the tokens to expire (nothing else runs then); the burst starts when they are done.

Exit status is 0 whenever the benchmark ran (``--strict``: 1 when a target is missed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

# ``python bench/run.py`` puts bench/ on sys.path; the kiosk package is installed (editable), but
# make the repository root importable too so the script also runs from a plain checkout.
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))

import qt_bench
import scenarios
import shift_bench
from scenarios import progress

from kiosk.testing.server.runner import ReferenceServer

AUTHLIB_DEFAULT_LEEWAY_S = 60  # AsyncOAuth2Client(..., leeway=60): authlib's default

TARGETS: dict[str, tuple[str, float]] = {
    "burst_refreshes": ("==", 1),
    "burst_failures": ("==", 0),
    "burst_wall_ratio": ("<=", 1.0),
    "overhead_ratio": ("<=", 1.05),
    "refresh_latency_ratio": ("<=", 1.10),
    "startup_ratio": ("<=", 1.5),
    "rss_ratio": ("<=", 1.25),
    "ui_stall_p99_ms": ("<=", 16),
    "shift_12h_wall_s": ("<=", 10),
}


def _meets(value: float | None, op: str, bound: float) -> bool:
    if value is None:
        return False
    return value == bound if op == "==" else value <= bound


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _git_state() -> dict[str, Any]:
    """The commit measured and the paths that differed from it (the tree moves under us)."""
    root = Path(__file__).resolve().parents[1]

    def git(*cmd: str) -> str:
        done = subprocess.run(
            ["git", *cmd], cwd=root, capture_output=True, text=True, check=False, timeout=10
        )
        return done.stdout

    try:
        dirty = [line[3:] for line in git("status", "--porcelain").splitlines() if line[3:]]
        return {"commit": git("rev-parse", "--short", "HEAD").strip(), "uncommitted": dirty}
    except (OSError, subprocess.SubprocessError) as exc:
        return {"error": str(exc)}


def _round(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, dict):
        return {k: _round(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_round(v) for v in value]
    return value


def _sequential(args: argparse.Namespace, server: ReferenceServer, out: dict[str, Any]) -> None:
    """Overhead and refresh latency, on their own event loop (run in a worker thread)."""

    async def measure() -> None:
        progress(f"overhead: {args.overhead} sequential GETs per variant in {args.rounds} rounds")
        ov = await scenarios.overhead(server, args.overhead, args.rounds)
        out["overhead_ratio"] = ov.pop("ratio")
        out["overhead_detail"] = ov
        progress(
            f"  overhead ratio {out['overhead_ratio']:.3f} "
            f"({ov['median_ms_kiosk']:.3f} ms vs {ov['median_ms_static']:.3f} ms)"
        )
        progress(f"refresh latency: {args.refreshes} refreshes per variant, interleaved")
        rl = await scenarios.refresh_latency(server, args.refreshes)
        out["refresh_latency_ratio"] = rl.pop("ratio")
        out["refresh_latency_detail"] = rl
        progress(
            f"  refresh latency ratio {out['refresh_latency_ratio']:.3f} "
            f"({rl['median_ms_kiosk']:.2f} ms vs {rl['median_ms_raw']:.2f} ms)"
        )

    try:
        asyncio.run(measure())
    except Exception as exc:  # reported in the JSON; the bursts still run
        out["sequential_error"] = f"{type(exc).__name__}: {exc}"
        progress(f"sequential measurements failed: {out['sequential_error']}")


def _app(
    args: argparse.Namespace,
    long_srv: ReferenceServer,
    stall_srv: ReferenceServer,
    out: dict[str, Any],
) -> None:
    """Startup, memory, UI stalls and the 12 h shift: child processes, one after another."""
    progress(
        f"qt: startup {args.startup_runs} + memory {args.rss_runs} alternating runs per variant"
    )
    try:
        qt = qt_bench.measure(long_srv.base_url, runs=args.startup_runs, rss_runs=args.rss_runs)
        out.update(qt)
        st, rss = qt["startup_detail"], qt["rss_detail"]
        progress(
            f"  startup ratio {qt['startup_ratio']:.3f} ({st['median_s_kiosk']:.3f} s vs "
            f"{st['median_s_bare']:.3f} s); rss ratio {qt['rss_ratio']:.3f} "
            f"({rss['median_mb_kiosk_4_windows']:.1f} MB vs {rss['median_mb_floor']:.1f} MB)"
        )
    except Exception as exc:  # reported in the JSON; the rest still runs
        out["qt_error"] = f"{type(exc).__name__}: {exc}"
        progress(f"qt startup/memory failed: {out['qt_error']}")

    progress(
        f"ui stall: 5 windows requesting through {args.stall_refreshes} refreshes "
        f"({args.stall_access_s:g} s access tokens)"
    )
    try:
        stall = qt_bench.ui_stall(stall_srv.base_url, refreshes=args.stall_refreshes)
        out["ui_stall_p99_ms"] = stall["p99_ms"] if not stall["timed_out"] else None
        out["ui_stall_detail"] = stall
        progress(
            f"  ui stall p50 {stall['p50_ms']:.2f} / p99 {stall['p99_ms']:.2f} / max "
            f"{stall['max_ms']:.1f} ms over {stall['samples']} beats, "
            f"{stall['refresh_successes']} refreshes, {stall['answers']} answers"
        )
    except Exception as exc:
        out["ui_stall_error"] = f"{type(exc).__name__}: {exc}"
        progress(f"ui stall failed: {out['ui_stall_error']}")

    progress("shift: measure_shift_12h() (12 h general ward, 5 windows, virtual time)")
    try:
        shift = shift_bench.measure()
        out["shift_12h_wall_s"] = shift["wall_s"]
        out["shift_12h_detail"] = shift
        progress(
            f"  shift {shift['wall_s']:.2f} s wall, {shift['refreshes']} refreshes, "
            f"{shift['requests']} requests"
        )
    except Exception as exc:
        out["shift_error"] = f"{type(exc).__name__}: {exc}"
        progress(f"shift failed: {out['shift_error']}")


async def _measure(
    args: argparse.Namespace,
    burst_srv: ReferenceServer,
    long_srv: ReferenceServer,
    stall_srv: ReferenceServer,
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    sequential: dict[str, Any] = {}

    progress(f"warm-up: {args.warmup} concurrent GETs with a valid token")
    out["warmup_burst_wall_s"] = (await scenarios.static_burst(burst_srv, args.warmup)).wall_s

    def while_waiting() -> None:
        _sequential(args, long_srv, sequential)
        _app(args, long_srv, stall_srv, sequential)

    rounds: list[dict[str, scenarios.BurstResult]] = []
    for index in range(args.burst_rounds):
        progress(f"burst round {index + 1}/{args.burst_rounds}: {args.burst} concurrent GETs")
        rounds.append(
            await scenarios.burst_round(
                burst_srv,
                args.burst,
                docs_n=args.docs_burst,
                leeway_fair=args.authlib_leeway,
                leeway_default=AUTHLIB_DEFAULT_LEEWAY_S,
                # The sequential and app measurements use the wait for the tokens to expire
                # (round 1).
                while_waiting=while_waiting if index == 0 else None,
            )
        )
    out.update(sequential)

    def summary(key: str, suffix: str) -> None:
        results = [r[key] for r in rounds]
        out[f"burst_refreshes{suffix}"] = max(r.refreshes for r in results)
        out[f"burst_failures{suffix}"] = max(r.failures for r in results)
        out[f"burst_wall_s{suffix}"] = statistics.median(r.wall_s for r in results)

    summary("kiosk", "")
    summary("httpx_docs", "_httpx_docs_pattern")
    summary("authlib", "_authlib")
    summary("authlib_default_leeway", "_authlib_default_leeway")
    out["burst_n_httpx_docs_pattern"] = args.docs_burst
    # Each refresh the server accepted with the one shared refresh token is a live token chain:
    # more than 1 means the session split (DESIGN §4), even where no request failed.
    out["burst_refresh_ok_httpx_docs_pattern"] = max(
        r["httpx_docs"].server.get("refresh_ok", 0) for r in rounds
    )
    out["burst_wall_ratio"] = out["burst_wall_s"] / out["burst_wall_s_authlib"]
    out["burst_rounds_detail"] = [{k: v.as_dict() for k, v in r.items()} for r in rounds]

    if args.baseline:
        progress(f"baseline: {args.burst} concurrent GETs with a valid static token")
        baseline = await scenarios.static_burst(burst_srv, args.burst)
        out["burst_wall_s_static_token_baseline"] = baseline.wall_s
        progress(f"  static-token burst: {baseline.wall_s:.2f} s {baseline.statuses}")
    return out


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python bench/run.py", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="the spec's counts, ~2 min")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--burst", type=int, default=1000, help="concurrent GETs per burst")
    parser.add_argument(
        "--docs-burst", type=int, default=None, help="GETs in the httpx-docs burst (200 / 1000)"
    )
    parser.add_argument("--burst-rounds", type=int, default=None, help="burst rounds (1 / 3)")
    parser.add_argument(
        "--burst-access-s", type=float, default=60.0, help="access lifetime of the burst server"
    )
    parser.add_argument("--authlib-leeway", type=int, default=5, help="authlib leeway (s)")
    parser.add_argument("--overhead", type=int, default=None, help="GETs per variant (2000 / 6000)")
    parser.add_argument("--rounds", type=int, default=None, help="overhead rounds (20 / 60)")
    parser.add_argument("--refreshes", type=int, default=None, help="refreshes per variant")
    parser.add_argument("--warmup", type=int, default=200, help="GETs in the warm-up burst")
    parser.add_argument(
        "--startup-runs", type=int, default=None, help="startup runs per variant (15 / 25)"
    )
    parser.add_argument("--rss-runs", type=int, default=None, help="RSS runs per variant (5 / 7)")
    parser.add_argument(
        "--stall-refreshes", type=int, default=20, help="refreshes the UI-stall load spans"
    )
    parser.add_argument(
        "--stall-access-s", type=float, default=3.0, help="access lifetime of the UI-stall server"
    )
    parser.add_argument(
        "--baseline",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also time a valid-static-token burst (default: off quick, on full)",
    )
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--threads", type=int, default=8, help="gunicorn threads per worker")
    args = parser.parse_args(argv)
    quick = args.quick
    defaults = {
        "docs_burst": 200 if quick else args.burst,
        "burst_rounds": 1 if quick else 3,
        "overhead": 2000 if quick else 6000,
        "rounds": 20 if quick else 60,
        "refreshes": 100 if quick else 300,
        "startup_runs": 15 if quick else 25,
        "rss_runs": 5 if quick else 7,
        "baseline": not quick,
    }
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    return args


HEADLINE = [
    "burst_refreshes",
    "burst_failures",
    "burst_wall_s",
    "burst_refreshes_httpx_docs_pattern",
    "burst_failures_httpx_docs_pattern",
    "burst_wall_s_httpx_docs_pattern",
    "burst_n_httpx_docs_pattern",
    "burst_refresh_ok_httpx_docs_pattern",
    "burst_refreshes_authlib",
    "burst_failures_authlib",
    "burst_wall_s_authlib",
    "burst_refreshes_authlib_default_leeway",
    "burst_failures_authlib_default_leeway",
    "burst_wall_s_authlib_default_leeway",
    "burst_wall_s_static_token_baseline",
    "burst_wall_ratio",
    "overhead_ratio",
    "refresh_latency_ratio",
    "startup_ratio",
    "rss_ratio",
    "ui_stall_p99_ms",
    "shift_12h_wall_s",
]


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    started = time.perf_counter()
    load_start = os.getloadavg()  # the machine is shared: say how busy it was
    date = datetime.now(UTC).isoformat(timespec="seconds")
    git_state = _git_state()  # at the start: the code this run imported
    progress(f"starting reference servers (gunicorn gthread {args.workers}x{args.threads})")
    burst_srv = ReferenceServer(
        access_s=args.burst_access_s, workers=args.workers, threads=args.threads
    )
    long_srv = ReferenceServer(access_s=900.0, workers=args.workers, threads=args.threads)
    stall_srv = ReferenceServer(
        access_s=args.stall_access_s, workers=args.workers, threads=args.threads
    )
    try:
        burst_srv.start()
        long_srv.start()
        stall_srv.start()
        measured = asyncio.run(_measure(args, burst_srv, long_srv, stall_srv))
    finally:
        burst_srv.close()
        long_srv.close()
        stall_srv.close()

    ok = {name: _meets(measured.get(name), op, bound) for name, (op, bound) in TARGETS.items()}
    result: dict[str, Any] = {"benchmark": "kiosk", "quick": args.quick, "date": date}
    result.update({key: measured.get(key) for key in HEADLINE})
    result["targets"] = {name: f"{op} {bound:g}" for name, (op, bound) in TARGETS.items()}
    result["ok"] = ok
    result["all_ok"] = all(ok.values())
    result["details"] = {k: v for k, v in measured.items() if k not in set(HEADLINE)}
    result["config"] = {
        "burst_n": args.burst,
        "burst_n_httpx_docs_pattern": args.docs_burst,
        "burst_rounds": args.burst_rounds,
        "burst_access_s": args.burst_access_s,
        "authlib_leeway_s": args.authlib_leeway,
        "authlib_default_leeway_s": AUTHLIB_DEFAULT_LEEWAY_S,
        "pool": "httpx.Limits(max_connections=n+100, max_keepalive_connections=n+100)",
        "overhead_gets_per_variant": args.overhead,
        "overhead_rounds": args.rounds,
        "refreshes_per_variant": args.refreshes,
        "gunicorn": f"gthread workers={args.workers} threads={args.threads}",
        "startup_runs_per_variant": args.startup_runs,
        "rss_runs_per_variant": args.rss_runs,
        "ui_stall": {
            "windows": 5,
            "refreshes": args.stall_refreshes,
            "access_s": args.stall_access_s,
            "heartbeat_ms": 5,
        },
        "qt_platform": "offscreen",
    }
    packages = ("httpx", "httpcore", "anyio", "authlib", "django", "djangorestframework-simplejwt")
    result["environment"] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "loadavg_1_5_15_start": list(load_start),
        "loadavg_1_5_15_end": list(os.getloadavg()),
        **{name: _version(name) for name in (*packages, "gunicorn")},
        **{name: _version(name) for name in ("PySide6_Essentials", "PySide6", "shiboken6")},
    }
    result["git"] = git_state
    result["runtime_s"] = time.perf_counter() - started
    result = _round(result)
    if args.json:
        print(json.dumps(result), flush=True)
    else:
        for key in HEADLINE:
            print(f"{key:<42} {result[key]}")
        for name, passed in ok.items():
            print(f"target {name:<35} {result['targets'][name]:<8} {'ok' if passed else 'MISSED'}")
        print(f"runtime {result['runtime_s']:.1f} s")
    progress(f"done in {result['runtime_s']:.1f} s; targets met: {ok}")
    return 1 if args.strict and not result["all_ok"] else 0


if __name__ == "__main__":
    sys.exit(main())
