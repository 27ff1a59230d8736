"""The measurements behind ``bench/run.py``: bursts on an expired token, per-request overhead, and
refresh latency. Each function talks to an already running reference server and returns plain data.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from patterns import REFRESH_PATH, HttpxDocsRefreshAuth, jwt_exp, make_authlib_client

from kiosk.core import MemoryVault, ServerSettings, TokenManager
from kiosk.testing.server.runner import ReferenceServer

API_PATH = "/api/me/"
OBTAIN_PATH = "/api/token/"
USER, PASSWORD = "alice", "alice-secret"
#: Generous client timeouts: the burst measures how long things take, not which timeout fires.
CLIENT_TIMEOUT_S = 120.0


def progress(message: str) -> None:
    """One line of progress on stderr (stdout carries only the JSON)."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def burst_limits(n: int) -> httpx.Limits:
    """A pool large enough that no request of an ``n``-request burst queues for a connection."""
    return httpx.Limits(max_connections=n + 100, max_keepalive_connections=n + 100)


async def obtain_pair(base_url: str) -> tuple[str, str]:
    """Log in with a plain httpx call: ``(access, refresh)``."""
    async with httpx.AsyncClient(base_url=base_url, timeout=CLIENT_TIMEOUT_S) as client:
        response = await client.post(OBTAIN_PATH, json={"username": USER, "password": PASSWORD})
        response.raise_for_status()
        data = response.json()
        return data["access"], data["refresh"]


# --------------------------------------------------------------------------------------- bursts


@dataclass
class BurstResult:
    """One burst of concurrent GETs: what the server saw and what the caller got."""

    refreshes: int
    failures: int
    wall_s: float
    statuses: dict[str, int] = field(default_factory=dict)
    server: dict[str, int] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "refreshes": self.refreshes,
            "failures": self.failures,
            "wall_s": round(self.wall_s, 3),
            "statuses": self.statuses,
            "server": self.server,
            **self.extra,
        }


async def fire_burst(
    server: ReferenceServer, n: int, get: Callable[[], Awaitable[httpx.Response]]
) -> BurstResult:
    """Zero the server's counters, fire ``n`` concurrent GETs, count refreshes and failures."""
    server.reset_stats()
    started = time.perf_counter()
    results = await asyncio.gather(*(get() for _ in range(n)), return_exceptions=True)
    wall = time.perf_counter() - started
    stats = server.stats()
    statuses: dict[str, int] = {}
    failures = 0
    for result in results:
        if isinstance(result, BaseException):
            key = type(result).__name__
            failures += 1
        else:
            key = str(result.status_code)
            failures += result.status_code != 200
        statuses[key] = statuses.get(key, 0) + 1
    return BurstResult(stats["refresh"], failures, wall, statuses, stats)


async def static_burst(server: ReferenceServer, n: int) -> BurstResult:
    """``n`` concurrent GETs with a *valid* static token: no auth logic and no refresh at all.

    Used as the warm-up (gunicorn's threads, both ends' code paths) and as the baseline of what
    the same burst costs the application's httpx pool with nothing to coordinate.
    """
    access, _ = await obtain_pair(server.base_url)
    async with httpx.AsyncClient(
        base_url=server.base_url,
        headers={"Authorization": f"Bearer {access}"},
        limits=burst_limits(n),
        timeout=CLIENT_TIMEOUT_S,
    ) as client:
        result = await fire_burst(server, n, lambda: client.get(API_PATH))
    if result.failures:
        progress(f"static-token burst: {result.failures} of {n} failed ({result.statuses})")
    return result


async def burst_round(
    server: ReferenceServer,
    n: int,
    *,
    docs_n: int,
    leeway_fair: int,
    leeway_default: int,
    while_waiting: Callable[[], None] | None = None,
) -> dict[str, BurstResult]:
    """One round: four sessions see their access token expire, then each takes a burst.

    All four log in first; then the event loop is *blocked* (``time.sleep``) until every access
    token has expired on the server, like a workstation suspended on its cart. Blocking matters
    for kiosk only: its proactive scheduler would otherwise renew the token before it expires and
    there would be no expired token to burst on. The other patterns have no background activity.
    ``while_waiting`` (the sequential measurements) runs in a worker thread during that wait, so
    the wait is not dead time; it is joined before the first burst.

    Bursts then run one after the other; kiosk's goes first and its session is signed out right
    after, so its scheduler cannot add refreshes to the other bursts' counts.
    """
    base = server.base_url
    tm = TokenManager(ServerSettings(base_url=base), vault=MemoryVault())
    await tm.start()
    results: dict[str, BurstResult] = {}
    try:
        await tm.login(USER, PASSWORD)
        docs_access, docs_refresh = await obtain_pair(base)
        fair_access, fair_refresh = await obtain_pair(base)
        dflt_access, dflt_refresh = await obtain_pair(base)
        expires = max(jwt_exp(t) for t in (docs_access, fair_access, dflt_access))
        wait = expires + 1.2 - time.time()
        progress(f"  sessions logged in; blocking the loop {wait:.1f} s until the tokens expired")
        worker = None
        if while_waiting is not None:
            worker = threading.Thread(target=while_waiting, name="bench-sequential")
            worker.start()
        time.sleep(max(wait, 0.0))  # noqa: ASYNC251 - on purpose, see the docstring
        if worker is not None:
            worker.join()

        # kiosk: TokenManager + TokenAuth.
        async with httpx.AsyncClient(
            base_url=base, auth=tm.auth, limits=burst_limits(n), timeout=CLIENT_TIMEOUT_S
        ) as api:
            result = await fire_burst(server, n, lambda: api.get(API_PATH))
        metrics = tm.metrics()
        result.extra["client_refresh_attempts"] = metrics["refresh_attempts"]
        result.extra["client_requests_replayed"] = metrics["requests_replayed"]
        results["kiosk"] = result
        await tm.logout()
        progress(f"  kiosk: {_brief(result)}")

        # authlib, leeway shorter than the token's lifetime (the configuration that works).
        results["authlib"] = await _authlib_burst(server, n, fair_access, fair_refresh, leeway_fair)
        progress(f"  authlib (leeway {leeway_fair} s): {_brief(results['authlib'])}")

        # httpx docs recipe.
        auth = HttpxDocsRefreshAuth(docs_access, docs_refresh, base + REFRESH_PATH)
        async with httpx.AsyncClient(
            base_url=base, auth=auth, limits=burst_limits(docs_n), timeout=CLIENT_TIMEOUT_S
        ) as api:
            results["httpx_docs"] = await fire_burst(server, docs_n, lambda: api.get(API_PATH))
        results["httpx_docs"].extra["n"] = docs_n
        progress(f"  httpx docs recipe ({docs_n} GETs): {_brief(results['httpx_docs'])}")

        # authlib with its default leeway, which outlives the token.
        results["authlib_default_leeway"] = await _authlib_burst(
            server, n, dflt_access, dflt_refresh, leeway_default
        )
        progress(
            f"  authlib (leeway {leeway_default} s): {_brief(results['authlib_default_leeway'])}"
        )
    finally:
        await tm.aclose()
    return results


async def _authlib_burst(
    server: ReferenceServer, n: int, access: str, refresh: str, leeway: int
) -> BurstResult:
    client, counter = make_authlib_client(
        server.base_url,
        access=access,
        refresh=refresh,
        leeway=leeway,
        limits=burst_limits(n),
        timeout=CLIENT_TIMEOUT_S,
    )
    async with client:
        result = await fire_burst(server, n, lambda: client.get(API_PATH))
    result.extra["client_token_updates"] = counter.updates
    result.extra["leeway_s"] = leeway
    return result


def _brief(result: BurstResult) -> str:
    return (
        f"{result.refreshes} refreshes, {result.failures} failures, {result.wall_s:.2f} s "
        f"{result.statuses}"
    )


# ------------------------------------------------------------------------------------ overhead


async def overhead(server: ReferenceServer, per_variant: int, rounds: int) -> dict[str, Any]:
    """Sequential GETs through ``tm.auth`` vs a static ``Authorization`` header, interleaved.

    One client and so one keep-alive connection (one gunicorn worker) for both variants; each
    round runs ``per_variant / rounds`` GETs of each, alternating which variant goes first.
    """
    base = server.base_url
    chunk = max(1, per_variant // rounds)
    access, _ = await obtain_pair(base)
    static = {"Authorization": f"Bearer {access}"}
    times: dict[str, list[float]] = {"kiosk": [], "static": []}
    cpu = {"kiosk": 0.0, "static": 0.0}
    failures = {"kiosk": 0, "static": 0}
    async with TokenManager(ServerSettings(base_url=base), vault=MemoryVault()) as tm:
        await tm.login(USER, PASSWORD)
        auth = tm.auth
        async with httpx.AsyncClient(base_url=base, timeout=CLIENT_TIMEOUT_S) as api:

            async def run(variant: str, count: int, record: bool) -> None:
                perf = time.perf_counter
                cpu_started = time.thread_time()
                for _ in range(count):
                    if variant == "kiosk":
                        started = perf()
                        response = await api.get(API_PATH, auth=auth)
                        elapsed = perf() - started
                    else:
                        started = perf()
                        response = await api.get(API_PATH, headers=static)
                        elapsed = perf() - started
                    if record:
                        times[variant].append(elapsed)
                        failures[variant] += response.status_code != 200
                if record:
                    cpu[variant] += time.thread_time() - cpu_started

            await run("kiosk", 100, record=False)
            await run("static", 100, record=False)
            for index in range(rounds):
                order = ("kiosk", "static") if index % 2 == 0 else ("static", "kiosk")
                for variant in order:
                    await run(variant, chunk, record=True)
        await tm.logout()
    med_k = statistics.median(times["kiosk"])
    med_s = statistics.median(times["static"])
    return {
        "ratio": med_k / med_s,
        "median_ms_kiosk": med_k * 1000,
        "median_ms_static": med_s * 1000,
        "mean_ms_kiosk": statistics.fmean(times["kiosk"]) * 1000,
        "mean_ms_static": statistics.fmean(times["static"]) * 1000,
        # Client CPU (this thread) per request: what kiosk's flow costs, free of server noise.
        "client_cpu_ms_kiosk": cpu["kiosk"] / len(times["kiosk"]) * 1000,
        "client_cpu_ms_static": cpu["static"] / len(times["static"]) * 1000,
        "requests_per_variant": len(times["kiosk"]),
        "rounds": rounds,
        "failures": failures,
    }


# ------------------------------------------------------------------------------ refresh latency


async def refresh_latency(server: ReferenceServer, samples: int) -> dict[str, Any]:
    """``await tm.refresh()`` vs a raw httpx POST to the refresh endpoint, interleaved.

    Both rotate (the raw chain stores each new refresh token), both reuse one client (kiosk's own
    token client, and one ``AsyncClient`` for the raw chain). Between samples the loop runs idle
    callbacks (``asyncio.sleep(0)``) so work one variant scheduled is not billed to the other.
    """
    base = server.base_url
    _, raw_refresh = await obtain_pair(base)
    times: dict[str, list[float]] = {"kiosk": [], "raw": []}
    cpu = {"kiosk": 0.0, "raw": 0.0}
    async with TokenManager(ServerSettings(base_url=base), vault=MemoryVault()) as tm:
        await tm.login(USER, PASSWORD)
        async with httpx.AsyncClient(base_url=base, timeout=CLIENT_TIMEOUT_S) as raw:
            current = raw_refresh

            async def kiosk_once() -> float:
                started = time.perf_counter()
                await tm.refresh()
                return time.perf_counter() - started

            async def raw_once() -> float:
                nonlocal current
                started = time.perf_counter()
                response = await raw.post(REFRESH_PATH, json={"refresh": current})
                data = response.json()
                current = data["refresh"]
                return time.perf_counter() - started

            async def settle() -> None:
                for _ in range(3):
                    await asyncio.sleep(0)

            for _ in range(5):  # warm-up, not recorded
                await kiosk_once()
                await settle()
                await raw_once()
                await settle()
            for index in range(samples):
                order = (("kiosk", kiosk_once), ("raw", raw_once))
                if index % 2:
                    order = order[::-1]
                for name, once in order:
                    cpu_started = time.thread_time()
                    times[name].append(await once())
                    await settle()
                    cpu[name] += time.thread_time() - cpu_started
        metrics = tm.metrics()
        await tm.logout()
    med_k = statistics.median(times["kiosk"])
    med_r = statistics.median(times["raw"])
    return {
        "ratio": med_k / med_r,
        "median_ms_kiosk": med_k * 1000,
        "median_ms_raw": med_r * 1000,
        "samples_per_variant": samples,
        # Client CPU (this thread) per refresh, including the idle callbacks run after it.
        "client_cpu_ms_kiosk": cpu["kiosk"] / samples * 1000,
        "client_cpu_ms_raw": cpu["raw"] / samples * 1000,
        "kiosk_metrics_refresh_latency_p50_ms": metrics["refresh_latency_p50_ms"],
        "kiosk_metrics_refresh_latency_p95_ms": metrics["refresh_latency_p95_ms"],
    }
