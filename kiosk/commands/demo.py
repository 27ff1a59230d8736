"""``kiosk demo``: the reference server and the kiosk against it.

Starts the bundled reference simplejwt server (gunicorn on 127.0.0.1, demo users) and then:

* with a display: opens the kiosk application against it (one-minute access tokens, so the
  indicator's refreshes are visible; user ``alice`` / ``alice-secret``);
* without one (or with ``--headless``): says so and runs a scripted walk-through of a short
  shift offscreen instead - printing each step and the indicator state, writing screenshots;
* with ``--core``: a session through the core alone (no Qt), printing every security event
  and the KPI counters.
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


def run_core(args: argparse.Namespace) -> int:
    """Run the core-only demo; 0 when the session had no failures."""
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


def _qt_demo(args: argparse.Namespace) -> int:
    from pathlib import Path

    from kiosk.testing.server.runner import ReferenceServer

    try:
        from kiosk.qt.runtime import has_display, qt_application
    except ImportError as exc:  # pragma: no cover - PySide6 missing
        print(f"Qt is not available ({exc}); running the core demo instead.", flush=True)
        return run_core(args)
    headless = args.headless or not has_display()
    access_s = 5.0 if headless else 60.0
    print(
        "Starting the reference simplejwt server (Django + simplejwt under gunicorn)...", flush=True
    )
    with ReferenceServer(access_s=access_s, refresh_s=3600) as server:
        print(
            f"  listening on {server.base_url} (pid {server.pid}); access tokens live "
            f"{access_s:g} s",
            flush=True,
        )
        app_qt = qt_application(offscreen=headless)
        from kiosk.qt.app import KioskApp

        app = KioskApp(ServerSettings(base_url=server.base_url), vault=MemoryVault())
        if not headless:
            app.start()
            app.login_window.form.reset(args.username)
            print(
                f"Sign in as {args.username} / {server.users[args.username]}. "
                "Close the windows to stop.",
                flush=True,
            )
            code = app_qt.exec()
            app.shutdown()
            return int(code)
        from kiosk.qt.walkthrough import Step, Walkthrough

        print(
            "No display found: running a scripted walk-through of a short shift offscreen.",
            flush=True,
        )
        shots = Path(args.screenshots)

        def report(step: Step) -> None:
            mark = "ok  " if step.ok else "FAIL"
            print(f"  {mark} {step.name:<20} {step.ms:>8.0f} ms  {step.detail}", flush=True)
            print(f"       indicator: {step.indicator}", flush=True)

        app.start()
        try:
            result = Walkthrough(
                app,
                args.username,
                server.users[args.username],
                refresh_timeout_s=30,
                screenshots=shots,
                report=report,
            ).run()
        finally:
            app.shutdown()
        stats = server.stats()
        print(
            f"- the server saw {stats['obtain']} login(s), {stats['refresh']} refresh(es), "
            f"{stats['blacklist']} blacklist call(s)"
        )
        print(f"- screenshots in {shots.resolve()}")
    print("Demo finished." if result.ok else "Demo finished with failures.", flush=True)
    return 0 if result.ok else 1


def main(args: argparse.Namespace) -> int:
    """``kiosk demo``: the Qt kiosk (or its offscreen walk-through), or ``--core``."""
    return run_core(args) if args.core else _qt_demo(args)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``demo`` to the ``kiosk`` command."""
    demo = sub.add_parser("demo", help="run the reference server and a demo session against it")
    demo.add_argument(
        "--seconds", type=float, default=12.0, help="--core: how long to work (default 12)"
    )
    demo.add_argument("--access-s", type=float, default=5.0, help="--core: access token lifetime")
    demo.add_argument("--username", default="alice", choices=["alice", "bob", "carol"])
    demo.add_argument(
        "--headless",
        action="store_true",
        help="run the scripted walk-through offscreen even with a display",
    )
    demo.add_argument("--core", action="store_true", help="the core alone, without Qt")
    demo.add_argument(
        "--screenshots",
        default="kiosk-demo-screenshots",
        metavar="DIR",
        help="where the walk-through writes its screenshots",
    )
    demo.set_defaults(func=main)
