"""Why kiosk's burst was slower than authlib's (httpx's pool), and what the gate's hand-off does.

    python bench/burst_probe.py        # ~5 min; one JSON object on stdout, progress on stderr
    python bench/burst_probe.py --repeat 3 --no-static --access-s 20   # more rounds, less waiting
    python bench/burst_probe.py --rtt-ms 100 --no-static --no-all-at-once  # a remote server

Bursts of 1,000 concurrent GETs, each on its own ``AsyncClient`` (pool of 1,100), against one
reference server (gunicorn gthread 2x8), one after the other in one process. Each kiosk and
authlib burst first waits, loop blocked, until its session's access token has expired:

* ``static``: a valid static ``Authorization`` header - no auth logic, no refresh, every request
  enters httpcore's pool at once;
* ``static_anyio_lock``: the same, but each request first passes an ``anyio.Lock`` (acquire,
  release), which is all that authlib's ``ensure_active_token`` does once the token is fresh;
* ``authlib``: authlib's ``AsyncOAuth2Client`` on an expired token (leeway 5 s, as in ``run.py``);
* ``kiosk``: ``tm.auth`` on an expired token, the gate as shipped: FIFO, at most
  ``GATE_RELEASE_BATCH`` waiters per loop iteration, at most the hand-off's adaptive limit of
  them unanswered at once;
* ``kiosk_per_turn_only``: the same without the limit (FIFO, one per loop iteration - what
  authlib's lock amounts to);
* ``kiosk_all_at_once``: no hand-off at all: every waiter leaves in the loop iteration the
  refresh lands in, which is what the gate did before (bench/out/quick1.json: 25.8 s).

``--rtt-ms`` puts bench/latency_proxy.py between every client and the server (the server's
counters are still read directly): the same bursts against a server that far away, for the
hand-off's tuning, which was made on the loopback.

Each burst reports its wall time, the refreshes and failures the server saw, the client's CPU
time, and ``connections``: how many connections the client's pool opened.

The mechanism. httpcore 1.0.9's ``_assign_requests_to_connections`` runs on every request start
and every response close, and costs O(connections) plus, for every *idle* connection, a socket
check (``has_expired``: getpeername + poll) and another O(connections) scan. Released all at
once, 1,000 requests find no idle connection, open ~1,000, and every later event pays
~1,000 x 1,000. Let go one per loop iteration (authlib's lock, ``kiosk_per_turn_only``), early
requests finish while later ones still wait and their connections are reused - but nothing
stops the entries from outrunning the server: requests pile up in flight until the pool's own
bookkeeping has slowed the client down to the server's pace, and how many connections that
takes (14 to 80 here) depends on how fast the first answers come back. The adaptive limit
admits a new request when an earlier one is answered (Vegas: more while the round trips stay
near their minimum), so the pool stays at a handful of busy connections and the client's CPU
goes to requests rather than to the pool.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx

sys.path.insert(1, str(Path(__file__).resolve().parents[1]))

from patterns import jwt_exp, make_authlib_client
from scenarios import (
    API_PATH,
    CLIENT_TIMEOUT_S,
    PASSWORD,
    USER,
    burst_limits,
    fire_burst,
    obtain_pair,
    progress,
    static_burst,
)

import kiosk.core.manager as manager_module
from kiosk.core import MemoryVault, ServerSettings, TokenManager
from kiosk.testing.server.runner import ReferenceServer

N = 1000
#: How the kiosk variants configure kiosk.core.manager's hand-off.
VARIANTS: dict[str, dict[str, int]] = {
    "kiosk": {},
    "kiosk_per_turn_only": {"HANDOFF_MIN_LIMIT": 10 * N, "HANDOFF_MAX_LIMIT": 10 * N},
    "kiosk_all_at_once": {
        "GATE_RELEASE_BATCH": 10 * N,
        "HANDOFF_MIN_LIMIT": 10 * N,
        "HANDOFF_MAX_LIMIT": 10 * N,
    },
}


class _Behind:
    """The server as the clients see it through the latency proxy (counters read directly)."""

    def __init__(self, server: ReferenceServer, base_url: str) -> None:
        self._server = server
        self.base_url = base_url

    def reset_stats(self) -> None:
        self._server.reset_stats()

    def stats(self) -> dict[str, int]:
        return self._server.stats()


@contextlib.contextmanager
def _latency_proxy(server: ReferenceServer, rtt_ms: float) -> Iterator[Any]:
    """``server`` itself, or, with ``rtt_ms``, the server behind the latency proxy."""
    if not rtt_ms:
        yield server
        return
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    script = Path(__file__).with_name("latency_proxy.py")
    proxy = subprocess.Popen(
        [sys.executable, str(script), str(port), str(server.port), str(rtt_ms)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proxy.stdout is not None
        if proxy.stdout.readline().strip() != "ready":
            raise RuntimeError("the latency proxy did not start")
        yield _Behind(server, f"http://127.0.0.1:{port}")
    finally:
        proxy.terminate()
        proxy.wait(timeout=10)


def _count_connections(client: httpx.AsyncClient) -> list[int]:
    """Count the connections ``client``'s pool opens from now on."""
    pool = client._transport._pool  # type: ignore[attr-defined]
    opened = [0]
    create = pool.create_connection

    def counting(origin: Any) -> Any:
        opened[0] += 1
        return create(origin)

    pool.create_connection = counting
    return opened


async def _static(server: ReferenceServer, *, locked: bool) -> dict[str, Any]:
    access, _ = await obtain_pair(server.base_url)
    lock = anyio.Lock()
    async with httpx.AsyncClient(
        base_url=server.base_url,
        headers={"Authorization": f"Bearer {access}"},
        limits=burst_limits(N),
        timeout=CLIENT_TIMEOUT_S,
    ) as client:
        opened = _count_connections(client)

        async def get() -> httpx.Response:
            if locked:
                async with lock:
                    pass
            return await client.get(API_PATH)

        cpu = time.process_time()
        result = await fire_burst(server, N, get)
        return _brief(result, opened[0], time.process_time() - cpu)


def _block_until_expired(access: str) -> None:
    # Block the loop (so kiosk's scheduler cannot renew ahead) until the token expired.
    time.sleep(max(jwt_exp(access) + 1.2 - time.time(), 0.0))


async def _authlib(server: ReferenceServer) -> dict[str, Any]:
    access, refresh = await obtain_pair(server.base_url)
    _block_until_expired(access)
    client, _ = make_authlib_client(
        server.base_url,
        access=access,
        refresh=refresh,
        leeway=5,
        limits=burst_limits(N),
        timeout=CLIENT_TIMEOUT_S,
    )
    async with client:
        opened = _count_connections(client)
        cpu = time.process_time()
        result = await fire_burst(server, N, lambda: client.get(API_PATH))
    return _brief(result, opened[0], time.process_time() - cpu)


async def _kiosk(server: ReferenceServer, variant: str) -> dict[str, Any]:
    shipped = {name: getattr(manager_module, name) for name in VARIANTS["kiosk_all_at_once"]}
    for name, value in VARIANTS[variant].items():
        setattr(manager_module, name, value)
    tm = TokenManager(ServerSettings(base_url=server.base_url), vault=MemoryVault())
    await tm.start()
    try:
        await tm.login(USER, PASSWORD)
        _block_until_expired((await tm.access_token()).reveal())
        async with httpx.AsyncClient(
            base_url=server.base_url,
            auth=tm.auth,
            limits=burst_limits(N),
            timeout=CLIENT_TIMEOUT_S,
        ) as api:
            opened = _count_connections(api)
            cpu = time.process_time()
            result = await fire_burst(server, N, lambda: api.get(API_PATH))
            cpu = time.process_time() - cpu
        await tm.logout()
    finally:
        await tm.aclose()
        for name, value in shipped.items():
            setattr(manager_module, name, value)
    return _brief(result, opened[0], cpu)


def _brief(result: Any, connections: int, cpu_s: float) -> dict[str, Any]:
    return {
        "wall_s": round(result.wall_s, 3),
        "refreshes": result.refreshes,
        "failures": result.failures,
        "client_cpu_s": round(cpu_s, 3),
        "connections": connections,
    }


async def main(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {
        "n": N,
        "access_s": args.access_s,
        "shipped": {
            name: getattr(manager_module, name)
            for name in ("GATE_RELEASE_BATCH", "HANDOFF_MIN_LIMIT", "HANDOFF_MAX_LIMIT")
        },
    }
    for limit in args.max_limits:
        VARIANTS[f"kiosk_max_limit_{limit}"] = {"HANDOFF_MAX_LIMIT": limit}
    variants = [v for v in VARIANTS if not (args.no_all_at_once and v == "kiosk_all_at_once")]
    out["rtt_ms"] = args.rtt_ms
    with (
        ReferenceServer(access_s=args.access_s, workers=2, threads=8) as real,
        _latency_proxy(real, args.rtt_ms) as server,
    ):
        await static_burst(server, 200)  # warm-up
        if not args.no_static:
            progress("static")
            out["static"] = await _static(server, locked=False)
            progress("static_anyio_lock")
            out["static_anyio_lock"] = await _static(server, locked=True)
        for index in range(args.repeat):
            # authlib and the kiosk variants alternate, so all see the same (noisy) machine;
            # which kiosk variant goes first rotates from round to round.
            shift = index % len(variants)
            order = ["authlib", *variants[shift:], *variants[:shift]]
            for name in order:
                progress(f"round {index + 1}: {name}")
                run = _authlib(server) if name == "authlib" else _kiosk(server, name)
                out.setdefault(name, []).append(await run)
                progress(f"  {out[name][-1]}")
    for name in ("authlib", *variants):
        walls = [r["wall_s"] for r in out[name]]
        out.setdefault("median_wall_s", {})[name] = round(statistics.median(walls), 3)
    authlib = out["median_wall_s"]["authlib"]
    out["median_wall_ratio_vs_authlib"] = {
        name: round(out["median_wall_s"][name] / authlib, 3) for name in variants
    }
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python bench/burst_probe.py")
    parser.add_argument("--access-s", type=float, default=30.0, help="access token lifetime")
    parser.add_argument("--repeat", type=int, default=2, help="rounds of authlib + kiosk variants")
    parser.add_argument("--no-static", action="store_true", help="skip the static-token bursts")
    parser.add_argument("--no-all-at-once", action="store_true", help="skip the old gate (~30 s)")
    parser.add_argument(
        "--max-limits",
        type=lambda text: [int(v) for v in text.split(",") if v],
        default=[],
        help="also kiosk with these HANDOFF_MAX_LIMIT values (e.g. 128,256)",
    )
    parser.add_argument(
        "--rtt-ms", type=float, default=0.0, help="round-trip time a proxy adds (a remote server)"
    )
    print(json.dumps(asyncio.run(main(parser.parse_args()))), flush=True)
