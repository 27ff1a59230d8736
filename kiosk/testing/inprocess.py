"""The reference server in this very process: Django's WSGI app behind an httpx transport.

For virtual time (DESIGN §7): the client's requests go through :class:`InProcessTransport`,
which builds a WSGI environ and calls Django's ``WSGIHandler`` inline - no socket, no thread -
after moving time-machine to the linked clock's server time
(:class:`~kiosk.testing.virtual.LinkedClock`). The same Django + DRF + simplejwt code as under
gunicorn answers; a 12-hour shift takes seconds. (Measured in the prototype: ASGI through
``httpx.ASGITransport`` was 3-5x slower, and its thread hand-offs let virtual time run ahead.)

Django can be configured once per process, so the server is a process-wide singleton with an
in-memory SQLite database (shared cache, so it lives as long as the process). What may differ
between uses of it:

* token lifetimes and rotation - :meth:`InProcessServer.configure` changes them in place.
  ``override_settings(SIMPLE_JWT=...)`` is *not* enough: simplejwt's reload handler rebinds
  ``rest_framework_simplejwt.settings.api_settings`` only, while ``tokens``, ``serializers``,
  ``authentication``... keep the object they imported, and ``AccessToken.lifetime`` is a class
  attribute read at import. So the new settings object is installed in every simplejwt module
  and the token classes' lifetimes are set directly (both restored by ``configure()`` again);
* everything else the ``KIOSK_SERVER_*`` environment decides (blacklist app, dialect, user
  model...) is fixed by the first use in the process; asking for another value raises.

Also: ``DJANGO_ALLOW_ASYNC_UNSAFE`` is set (the ORM is called from the event loop's thread on
purpose), the transport yields to the loop before and after each call (so concurrent windows
interleave and single flight is exercised), and it adds the ``Date`` header gunicorn would.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import sys
import time
from collections.abc import Mapping
from datetime import timedelta
from email.utils import formatdate
from typing import Any, Literal

import httpx

from kiosk.testing.virtual import linked_clock

#: Demo users of the reference server (``dave`` is inactive).
DEMO_USERS: dict[str, str] = {
    "alice": "alice-secret",
    "bob": "bob-secret",
    "carol": "carol-secret",
    "dave": "dave-secret",
}

#: The base URL clients use for the in-process server (loopback, so plain HTTP is allowed).
BASE_URL = "http://127.0.0.1"

#: Environment the in-process server is configured with, unless the caller overrides it.
_DEFAULT_ENV = {
    "KIOSK_SERVER_TEST_ENDPOINTS": "1",
    "KIOSK_SERVER_FAST_HASHER": "1",
}

Latency = float | Literal["measured"] | None

_setup_env: dict[str, str] | None = None
_active_config: tuple[float, float, bool] | None = None
_originals: dict[str, Any] = {}


class InProcessConfigError(RuntimeError):
    """The in-process server was asked for a configuration this process cannot give."""


def _ensure_django(extra_env: Mapping[str, str]) -> None:
    """Configure Django for the reference server once per process; migrate and seed."""
    global _setup_env
    wanted = {**_DEFAULT_ENV, **extra_env}
    if _setup_env is not None:
        differing = {k for k in set(wanted) | set(_setup_env) if wanted.get(k) != _setup_env.get(k)}
        if differing:
            raise InProcessConfigError(
                "the in-process server is configured once per process; it already runs with "
                f"{ {k: _setup_env.get(k) for k in sorted(differing)} }, not "
                f"{ {k: wanted.get(k) for k in sorted(differing)} } (use the gunicorn server, "
                "simplejwt_server without in_process, for other settings)"
            )
        return
    module = os.environ.get("DJANGO_SETTINGS_MODULE")
    if "django.conf" in sys.modules:
        from django.conf import settings

        if settings.configured and module != "kiosk.testing.server.settings":
            raise InProcessConfigError(
                f"Django is already configured in this process ({module!r}); the in-process "
                "reference server needs kiosk.testing.server.settings"
            )
    os.environ["DJANGO_SETTINGS_MODULE"] = "kiosk.testing.server.settings"
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    # Lifetimes and rotation are set per use by configure(); the rest comes from the environment,
    # which is put back once the settings module has read it: gunicorn servers started later by
    # this process must not inherit the in-memory database (ReferenceServer only setdefaults it).
    env = {
        **wanted,
        "KIOSK_SERVER_DB": f"file:kiosk-inprocess-{os.getpid()}?mode=memory&cache=shared",
    }
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    import django
    from django.core.management import call_command

    try:
        django.setup()
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    call_command("migrate", interactive=False, verbosity=0)
    from kiosk.testing.server.ward.seed import seed

    seed()
    _setup_env = wanted


def _install_token_settings(access_s: float, refresh_s: float, rotate: bool) -> None:
    """Give simplejwt these lifetimes and rotation, in every module that holds its settings."""
    global _active_config
    config = (access_s, refresh_s, rotate)
    if _active_config == config:
        return
    from django.conf import settings
    from rest_framework_simplejwt import settings as jwt_settings
    from rest_framework_simplejwt import tokens

    if not _originals:
        _originals["SIMPLE_JWT"] = dict(settings.SIMPLE_JWT)
    user_settings = dict(_originals["SIMPLE_JWT"])
    user_settings["ACCESS_TOKEN_LIFETIME"] = timedelta(seconds=access_s)
    user_settings["REFRESH_TOKEN_LIFETIME"] = timedelta(seconds=refresh_s)
    user_settings["ROTATE_REFRESH_TOKENS"] = rotate
    if user_settings.get("AUTH_TOKEN_CLASSES") and "Sliding" in str(
        user_settings["AUTH_TOKEN_CLASSES"]
    ):
        user_settings["SLIDING_TOKEN_LIFETIME"] = timedelta(seconds=access_s)
        user_settings["SLIDING_TOKEN_REFRESH_LIFETIME"] = timedelta(seconds=refresh_s)
    settings.SIMPLE_JWT = user_settings
    fresh = jwt_settings.APISettings(
        user_settings, jwt_settings.DEFAULTS, jwt_settings.IMPORT_STRINGS
    )
    for name, module in list(sys.modules.items()):
        if name.startswith("rest_framework_simplejwt") and hasattr(module, "api_settings"):
            setattr(module, "api_settings", fresh)  # noqa: B010 - a module attribute by name
    tokens.AccessToken.lifetime = fresh.ACCESS_TOKEN_LIFETIME
    tokens.RefreshToken.lifetime = fresh.REFRESH_TOKEN_LIFETIME
    tokens.SlidingToken.lifetime = fresh.SLIDING_TOKEN_LIFETIME
    _active_config = config


class InProcessServer:
    """The reference server's Django app, called in this process.

    Several objects may exist (one per token configuration); they share one Django and one
    database. The object whose transport handles a request makes its lifetimes current.

    Args:
        access_s: access token lifetime.
        refresh_s: refresh token lifetime.
        rotate: ``ROTATE_REFRESH_TOKENS``.
        extra_env: ``KIOSK_SERVER_*`` settings for the whole process (first use decides).
        latency: virtual time each request takes under a linked clock: a number of seconds,
            ``"measured"`` (the real time the server code took, the default) or None (none).

    Attributes:
        users: demo user names and passwords.
        base_url: ``http://127.0.0.1``.
    """

    def __init__(
        self,
        *,
        access_s: float = 900.0,
        refresh_s: float = 43200.0,
        rotate: bool = True,
        extra_env: Mapping[str, str] | None = None,
        latency: Latency = "measured",
    ) -> None:
        _ensure_django(extra_env or {})
        self.access_s = float(access_s)
        self.refresh_s = float(refresh_s)
        self.rotate = rotate
        self.latency: Latency = latency
        self.users: dict[str, str] = dict(DEMO_USERS)
        self.base_url = BASE_URL
        self._running = True
        self.requests_served = 0
        self.activate()

    # ------------------------------------------------------------------ configuration

    def activate(self) -> None:
        """Make this object's token lifetimes and rotation the server's."""
        _install_token_settings(self.access_s, self.refresh_s, self.rotate)

    def configure(
        self,
        *,
        access_s: float | None = None,
        refresh_s: float | None = None,
        rotate: bool | None = None,
    ) -> InProcessServer:
        """Change lifetimes or rotation (for the next requests)."""
        if access_s is not None:
            self.access_s = float(access_s)
        if refresh_s is not None:
            self.refresh_s = float(refresh_s)
        if rotate is not None:
            self.rotate = rotate
        self.activate()
        return self

    # ------------------------------------------------------------------ like ReferenceServer

    @property
    def running(self) -> bool:
        """False between :meth:`stop` and :meth:`start`: connections are refused."""
        return self._running

    def stop(self, *, graceful: bool = True) -> None:
        """Take the server away: every request fails to connect until :meth:`start`."""
        self._running = False

    def start(self) -> InProcessServer:
        """Bring the server back (same database)."""
        self._running = True
        return self

    def restart(self) -> None:
        """Stop and start again (a no-op in virtual time, but the database stays)."""
        self.stop()
        self.start()

    def close(self) -> None:
        """Nothing to release: the database lives as long as the process."""

    def stats(self) -> dict[str, int]:
        """The server's request counters (``obtain``, ``refresh``, ``refresh_ok``...)."""
        from kiosk.testing.server.ward import stats

        return stats.snapshot()

    def reset_stats(self) -> None:
        """Zero the request counters."""
        from kiosk.testing.server.ward import stats

        stats.reset()

    def observation_counts(self, note_prefix: str) -> dict[str, int]:
        """How many observation rows carry each note starting with ``note_prefix``."""
        from django.db.models import Count

        from kiosk.testing.server.ward.models import Observation

        rows = (
            Observation.objects.filter(note__startswith=note_prefix)
            .values("note")
            .annotate(n=Count("id"))
        )
        return {row["note"]: int(row["n"]) for row in rows}

    def live_refresh_tokens(self, username: str) -> int:
        """Refresh tokens of ``username`` the server would still accept (at the server's time).

        Outstanding, not blacklisted and not expired. Needs the blacklist app.
        """
        from django.utils import timezone
        from rest_framework_simplejwt.token_blacklist.models import OutstandingToken

        clock = linked_clock()
        if clock is not None:
            clock.sync_server()
        return int(
            OutstandingToken.objects.filter(
                user__username=username,
                expires_at__gt=timezone.now(),
                blacklistedtoken__isnull=True,
            ).count()
        )

    def patient_ids(self) -> list[int]:
        """The ids of the seeded patients."""
        from kiosk.testing.server.ward.models import Patient

        return list(Patient.objects.order_by("id").values_list("id", flat=True))

    def transport(self) -> InProcessTransport:
        """A new httpx transport that calls this server in-process."""
        return InProcessTransport(self)


class InProcessTransport(httpx.AsyncBaseTransport):
    """An ``httpx.AsyncBaseTransport`` that hands each request to Django's WSGI app inline."""

    def __init__(self, server: InProcessServer) -> None:
        from django.core.handlers.wsgi import WSGIHandler

        self._server = server
        self._wsgi = httpx.WSGITransport(app=WSGIHandler(), remote_addr="127.0.0.1")

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        server = self._server
        await request.aread()
        # Let the other windows run first: their requests interleave with this one.
        await asyncio.sleep(0)
        if not server.running:
            raise httpx.ConnectError(
                "in-process server stopped (connection refused)", request=request
            )
        server.activate()
        clock = linked_clock()
        if clock is not None:
            clock.sync_server()
        started = time.perf_counter()
        response = self._wsgi.handle_request(request)
        try:
            body = b"".join(response.stream)  # type: ignore[arg-type]  # WSGITransport: sync
        finally:
            with contextlib.suppress(Exception):
                response.stream.close()  # type: ignore[union-attr]
        took = time.perf_counter() - started
        server.requests_served += 1
        headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() != "date"]
        # time.time() is the server's (time-machine) time here, as gunicorn would stamp it.
        headers.append(("date", formatdate(time.time(), usegmt=True)))
        latency = took if server.latency == "measured" else server.latency
        if clock is not None and latency and clock.driving:
            await clock.sleep(latency)
        return httpx.Response(response.status_code, headers=headers, content=body, request=request)


_shared: InProcessServer | None = None


def shared_server(**config: Any) -> InProcessServer:
    """The process's default :class:`InProcessServer`, (re)configured with ``config``.

    A setting left out of ``config`` gets :class:`InProcessServer`'s default, not the value the
    previous caller gave: every test of the process shares this server, and a
    ``simplejwt_server(in_process=True)`` test must not depend on which test ran before it.
    """
    global _shared
    extra_env = config.pop("extra_env", None)
    if _shared is None:
        _shared = InProcessServer(extra_env=extra_env, **config)
        return _shared
    if extra_env:
        _ensure_django(extra_env)
    defaults = inspect.signature(InProcessServer).parameters
    settings = {
        name: config.pop(name, defaults[name].default)
        for name in ("access_s", "refresh_s", "rotate", "latency")
    }
    if config:
        raise TypeError(f"shared_server() got unknown settings: {', '.join(sorted(config))}")
    _shared.latency = settings.pop("latency")
    _shared.configure(**settings)
    _shared.start()
    return _shared


__all__ = [
    "BASE_URL",
    "DEMO_USERS",
    "InProcessConfigError",
    "InProcessServer",
    "InProcessTransport",
    "shared_server",
]
