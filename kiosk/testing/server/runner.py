"""Runs the reference server under gunicorn on 127.0.0.1: :class:`ReferenceServer` and a small CLI.

The server runs in its own process group (gunicorn master + workers), with its SQLite database, log
and environment in a work directory. ``restart()`` keeps the port and the database, so tests can
take the server away for a while and bring the same one back.

CLI (foreground until Ctrl-C, e.g. for ``kiosk demo``)::

    python -m kiosk.testing.server.runner --port 8000 --access-s 60
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import weakref
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx

# The directory that holds the ``kiosk`` package: put on the children's PYTHONPATH so the server
# imports this very tree even when kiosk is not installed.
_SOURCE_ROOT = Path(__file__).resolve().parents[3]

_START_TIMEOUT_S = 20.0
_STOP_TIMEOUT_S = 10.0
_LOG_TAIL_CHARS = 4000

# Every demo account (see ward/seed.py); ``dave`` is inactive, so his logins answer 401.
DEMO_USERS: dict[str, str] = {
    "alice": "alice-secret",
    "bob": "bob-secret",
    "carol": "carol-secret",
    "dave": "dave-secret",
}


# Servers still running at interpreter exit (a test run that forgot, or failed, to stop one).
_LIVE: weakref.WeakSet[ReferenceServer] = weakref.WeakSet()


@atexit.register
def _stop_leftovers() -> None:
    for server in list(_LIVE):
        server.stop(graceful=False)


def _free_port() -> int:
    # Closed again before gunicorn binds it; the window is tiny on a test machine and gunicorn
    # sets SO_REUSEADDR, which restart() relies on to rebind the same port at once.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _flag(value: bool) -> str:
    return "1" if value else "0"


class ReferenceServer:
    """The reference simplejwt server under gunicorn (gthread workers) on 127.0.0.1.

    Use it as a context manager, or call :meth:`start` and :meth:`stop`::

        with ReferenceServer(access_s=3) as server:
            httpx.post(f"{server.base_url}/api/token/", json={"username": "alice", ...})

    Attributes:
        users: Demo usernames and passwords (``dave`` is inactive).
        workdir: Holds ``db.sqlite3`` and ``gunicorn.log``.
    """

    def __init__(
        self,
        *,
        access_s: float = 900.0,
        refresh_s: float = 43200.0,
        rotate: bool = True,
        blacklist: bool = True,
        workers: int = 2,
        threads: int = 4,
        workdir: Path | None = None,
        extra_env: dict[str, str] | None = None,
        port: int | None = None,
        tls: bool = False,
    ) -> None:
        """Configure the server; nothing runs until :meth:`start`.

        Args:
            access_s: Access token lifetime in seconds.
            refresh_s: Refresh token lifetime in seconds.
            rotate: ``ROTATE_REFRESH_TOKENS``.
            blacklist: Install the token_blacklist app (and ``BLACKLIST_AFTER_ROTATION``).
            workers: Gunicorn worker processes.
            threads: Threads per worker.
            workdir: Directory for the database and log; a temporary one (removed on exit of the
                context manager) when None.
            extra_env: Extra environment for the server processes; wins over the settings above.
            port: Port to bind on 127.0.0.1; a free one is picked when None.
            tls: Serve HTTPS with a certificate from a test CA made for this server
                (:attr:`ca_bundle`), as behind a hospital's own PKI.
        """
        self.users: dict[str, str] = dict(DEMO_USERS)
        self.workers = workers
        self.threads = threads
        self._own_workdir = workdir is None
        self.workdir: Path = (
            Path(tempfile.mkdtemp(prefix="kiosk-refserver-")) if workdir is None else workdir
        )
        self._env_overrides = {
            "KIOSK_SERVER_ACCESS_S": repr(float(access_s)),
            "KIOSK_SERVER_REFRESH_S": repr(float(refresh_s)),
            "KIOSK_SERVER_ROTATE": _flag(rotate),
            "KIOSK_SERVER_BLACKLIST": _flag(blacklist),
            "KIOSK_SERVER_FAST_HASHER": "1",
            "KIOSK_SERVER_TEST_ENDPOINTS": "1",
            **(extra_env or {}),
        }
        self._port = port
        self.tls = tls
        self._tls_files: Any = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._migrated = False

    # -- properties ---------------------------------------------------------------------------

    @property
    def db_path(self) -> Path:
        """The SQLite database file."""
        return self.workdir / "db.sqlite3"

    @property
    def log_path(self) -> Path:
        """Gunicorn's combined stdout/stderr."""
        return self.workdir / "gunicorn.log"

    @property
    def port(self) -> int:
        """The TCP port on 127.0.0.1 (fixed by the first :meth:`start`).

        Raises:
            RuntimeError: Before the first start when no port was given.
        """
        if self._port is None:
            raise RuntimeError("ReferenceServer has no port before start()")
        return self._port

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` (``https://`` with ``tls``), without a trailing slash."""
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def ca_bundle(self) -> str | None:
        """With ``tls``: the PEM file of the CA that signed the server's certificate."""
        if not self.tls:
            return None
        return str(self._tls().ca)

    def _tls(self) -> Any:
        if self._tls_files is None:
            from kiosk.testing.server.tls import make_test_pki

            self._tls_files = make_test_pki(self.workdir / "tls")
        return self._tls_files

    def _verify(self) -> Any:
        """What this process's own httpx calls to the server verify against."""
        if not self.tls:
            return True
        import ssl

        return ssl.create_default_context(cafile=self.ca_bundle)

    @property
    def pid(self) -> int | None:
        """The gunicorn master's PID while running, else None."""
        return self._proc.pid if self.running and self._proc is not None else None

    @property
    def running(self) -> bool:
        """Whether the gunicorn master is alive."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def env(self) -> dict[str, str]:
        """The environment the server processes run with."""
        env = dict(os.environ)
        env.update(self._env_overrides)
        env.setdefault("KIOSK_SERVER_DB", str(self.db_path))
        env["DJANGO_SETTINGS_MODULE"] = "kiosk.testing.server.settings"
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(_SOURCE_ROOT), env.get("PYTHONPATH", "")) if p
        )
        env["PYTHONUNBUFFERED"] = "1"
        return env

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> Self:
        """Migrate and seed (first start only), launch gunicorn and wait until it answers.

        Returns:
            The server itself, for ``server = ReferenceServer().start()``.

        Raises:
            RuntimeError: Migration failed, or gunicorn died or did not answer within 20 s (the
                message carries the tail of its log).
        """
        if self.running:
            return self
        self.workdir.mkdir(parents=True, exist_ok=True)
        env = self.env
        if not self._migrated:
            self._migrate(env)
        if self._port is None:
            self._port = _free_port()
        cmd = [
            sys.executable,
            "-m",
            "gunicorn",
            "kiosk.testing.server.wsgi:application",
            "--bind",
            f"127.0.0.1:{self._port}",
            "--worker-class",
            "gthread",
            "--workers",
            str(self.workers),
            "--threads",
            str(self.threads),
            # 1,000 concurrent keep-alive clients must all fit: connections beyond this are not
            # accepted until others close.
            "--worker-connections",
            "2000",
            "--backlog",
            "2048",
            "--keep-alive",
            "30",
            "--timeout",
            "60",
            # SIGTERM waits at most this long for in-flight requests: stop() stays quick.
            "--graceful-timeout",
            "5",
            "--log-level",
            "warning",
        ]
        if self.tls:
            files = self._tls()
            cmd += ["--certfile", str(files.cert), "--keyfile", str(files.key)]
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                cmd,
                env=env,
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Its own process group, so a hard kill reaches the workers too.
                start_new_session=True,
            )
        _LIVE.add(self)
        self._wait_until_ready()
        return self

    def stop(self, *, graceful: bool = True) -> None:
        """Stop gunicorn and wait for it (and its workers) to exit. Idempotent.

        Args:
            graceful: SIGTERM (in-flight requests finish, at most 5 s) with a SIGKILL fallback
                after 10 s; False sends SIGKILL to the whole process group at once (a crash).
        """
        proc, self._proc = self._proc, None
        _LIVE.discard(self)
        if proc is None or proc.poll() is not None:
            return
        if graceful:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=_STOP_TIMEOUT_S)
                return
            except subprocess.TimeoutExpired:
                pass
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        # Orphaned workers notice their dead master within a second; wait until the port is free
        # so "stopped" means connection refused.
        self._wait_port_closed()

    def restart(self) -> None:
        """Stop, then start again on the same port with the same database."""
        self.stop()
        self.start()

    def close(self) -> None:
        """Stop the server and remove the work directory if this object created it."""
        self.stop()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- test endpoints -----------------------------------------------------------------------

    def stats(self) -> dict[str, int]:
        """Return the request counters (see ``kiosk.testing.server.ward.stats``)."""
        response = httpx.get(f"{self.base_url}/_test/stats/", timeout=10.0, verify=self._verify())
        response.raise_for_status()
        return {key: int(value) for key, value in response.json().items()}

    def reset_stats(self) -> None:
        """Zero the request counters."""
        httpx.post(
            f"{self.base_url}/_test/stats/reset/", timeout=10.0, verify=self._verify()
        ).raise_for_status()

    def live_refresh_tokens(self, username: str) -> int:
        """Refresh tokens of ``username`` the server would still accept, from its database.

        Outstanding, not blacklisted and not expired (by the real clock). Needs the blacklist app
        (without it the server keeps no record of the tokens it issued: raises ``RuntimeError``).
        """
        import sqlite3

        with contextlib.closing(sqlite3.connect(self.db_path)) as db:
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
            if "token_blacklist_outstandingtoken" not in tables:
                raise RuntimeError("this server has no token_blacklist app: no token records")
            users = "accounts_user" if "accounts_user" in tables else "auth_user"
            (count,) = db.execute(
                f"""
                SELECT COUNT(*) FROM token_blacklist_outstandingtoken o
                JOIN {users} u ON u.id = o.user_id
                WHERE (u.username = ? OR u.email = ?) AND o.expires_at > datetime('now')
                  AND o.id NOT IN (SELECT token_id FROM token_blacklist_blacklistedtoken)
                """,
                (username, username),
            ).fetchone()
        return int(count)

    # -- internals ----------------------------------------------------------------------------

    def _migrate(self, env: dict[str, str]) -> None:
        result = subprocess.run(
            [sys.executable, "-m", "kiosk.testing.server.manage", "migrate-and-seed"],
            env=env,
            cwd=self.workdir,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"reference server: migrate-and-seed failed ({result.returncode}):\n"
                f"{(result.stdout + result.stderr)[-_LOG_TAIL_CHARS:]}"
            )
        self._migrated = True

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + _START_TIMEOUT_S
        url = f"{self.base_url}/_test/stats/"
        verify = self._verify()
        while True:
            proc = self._proc
            if proc is None or proc.poll() is not None:
                code = None if proc is None else proc.returncode
                self._proc = None
                raise RuntimeError(
                    f"reference server: gunicorn exited ({code}) before answering on "
                    f"{self.base_url}; log tail:\n{self._log_tail()}"
                )
            try:
                # Any HTTP answer will do (a 404 too, when the test endpoints are switched off).
                httpx.get(url, timeout=1.0, verify=verify)
                return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.stop(graceful=False)
                raise RuntimeError(
                    f"reference server: no answer on {self.base_url} within "
                    f"{_START_TIMEOUT_S:.0f} s; log tail:\n{self._log_tail()}"
                )
            time.sleep(0.05)

    def _wait_port_closed(self) -> None:
        deadline = time.monotonic() + _STOP_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    pass
            except OSError:
                return
            time.sleep(0.05)

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-_LOG_TAIL_CHARS:]
        except OSError:
            return "(no log)"


def main(argv: list[str] | None = None) -> None:
    """Run the reference server in the foreground until Ctrl-C.

    Args:
        argv: Command-line arguments; defaults to ``sys.argv[1:]``.
    """
    parser = argparse.ArgumentParser(
        prog="python -m kiosk.testing.server.runner",
        description="Run the kiosk reference simplejwt server on 127.0.0.1 (tests and demos only).",
    )
    parser.add_argument("--port", type=int, default=None, help="port (default: a free one)")
    parser.add_argument("--access-s", type=float, default=900.0, help="access lifetime (s)")
    parser.add_argument("--refresh-s", type=float, default=43200.0, help="refresh lifetime (s)")
    parser.add_argument("--no-rotate", action="store_true", help="ROTATE_REFRESH_TOKENS off")
    parser.add_argument("--no-blacklist", action="store_true", help="without token_blacklist")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--workdir", type=Path, default=None, help="keep the database here")
    args = parser.parse_args(argv)

    server = ReferenceServer(
        access_s=args.access_s,
        refresh_s=args.refresh_s,
        rotate=not args.no_rotate,
        blacklist=not args.no_blacklist,
        workers=args.workers,
        threads=args.threads,
        workdir=args.workdir,
        port=args.port,
    )
    with server:
        print(f"kiosk reference server on {server.base_url}  (pid {server.pid})", flush=True)
        print(f"  token endpoint: {server.base_url}/api/token/", flush=True)
        for username, password in server.users.items():
            note = "  (inactive)" if username == "dave" else ""
            print(f"  user {username} / {password}{note}", flush=True)
        print("Ctrl-C to stop.", flush=True)
        try:
            while server.running:
                time.sleep(0.5)
        except KeyboardInterrupt:
            return
        print(f"gunicorn exited; log tail:\n{server._log_tail()}", file=sys.stderr)
        raise SystemExit(1)


if __name__ == "__main__":
    main()
