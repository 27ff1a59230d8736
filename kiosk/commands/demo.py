"""``kiosk demo``: the reference server and a headless session against it.

Starts the bundled reference simplejwt server (gunicorn on 127.0.0.1, demo users) with short
token lifetimes so a whole refresh cycle is visible in seconds, then logs in, calls the ward
API, lets the access token be refreshed proactively, makes bursts of concurrent requests and
signs out, printing each security event as it happens and the KPI counters at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

import httpx

from kiosk.core import MemoryVault, SecurityEvent, ServerSettings, TokenManager


def _print_event(event: SecurityEvent) -> None:
    print(f"  [{event.severity.name:<6}] {event.kind.value:<22} {event.message}", flush=True)


async def _headless_demo(base_url: str, username: str, password: str, seconds: float) -> int:
    server = ServerSettings(base_url=base_url)
    async with TokenManager(server, vault=MemoryVault()) as tm:
        tm.subscribe(_print_event)
        print(f"- signing in as {username}", flush=True)
        await tm.login(username, password)
        async with httpx.AsyncClient(base_url=base_url, auth=tm.auth) as api:
            me = (await api.get("/api/me/")).json()
            patients = (await api.get("/api/patients/")).json()
            print(f"- /api/me/ -> {me.get('username')}; {len(patients)} patients on the ward")
            print(f"- working for {seconds:g} s (the access token lives 5 s; watch it renew)")
            loop = asyncio.get_running_loop()
            end = loop.time() + seconds
            requests = 0
            while loop.time() < end:
                burst = await asyncio.gather(*(api.get("/api/me/") for _ in range(20)))
                requests += len(burst)
                failed = [r.status_code for r in burst if r.status_code != 200]
                if failed:
                    print(f"  ! {len(failed)} requests failed: {failed[:5]}", flush=True)
                await asyncio.sleep(1.0)
            print(f"- {requests} API requests sent")
        print("- signing out (the refresh token is blacklisted on the server)", flush=True)
        await tm.logout()
        print("- KPIs:")
        for name, value in tm.metrics().items():
            shown = f"{value:.3f}" if isinstance(value, float) else value
            print(f"    {name:<26} {shown}")
        failures = tm.metrics()["user_visible_401"] + tm.metrics()["refresh_failures"]
        return 0 if failures == 0 else 1


def run(args: argparse.Namespace) -> int:
    """Run the demo; 0 when the session had no failures."""
    try:
        from kiosk.testing.server.runner import ReferenceServer
    except ImportError as exc:  # pragma: no cover - depends on the install
        print(
            f"kiosk demo needs the reference server: pip install 'kiosk[server]' ({exc})",
            file=sys.stderr,
        )
        return 2
    print(
        "Starting the reference simplejwt server (Django + simplejwt under gunicorn)...", flush=True
    )
    with ReferenceServer(access_s=args.access_s, refresh_s=3600) as server:
        print(f"  listening on {server.base_url} (pid {server.pid})", flush=True)
        username = args.username
        code = asyncio.run(
            _headless_demo(server.base_url, username, server.users[username], args.seconds)
        )
        stats = server.stats()
        print(
            f"- the server saw {stats['obtain']} login(s), {stats['refresh']} refresh(es), "
            f"{stats['blacklist']} blacklist call(s)"
        )
    print("Demo finished." if code == 0 else "Demo finished with failures.", flush=True)
    return code


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``demo`` to the ``kiosk`` command."""
    demo = sub.add_parser("demo", help="run the reference server and a demo session against it")
    demo.add_argument("--seconds", type=float, default=12.0, help="how long to work (default 12)")
    demo.add_argument("--access-s", type=float, default=5.0, help="access token lifetime")
    demo.add_argument("--username", default="alice", choices=["alice", "bob", "carol"])
    demo.set_defaults(func=run)
