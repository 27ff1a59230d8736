"""The kiosk pytest plugin (registered through the ``pytest11`` entry point).

Fixtures (docs/qa.md has copy-paste examples):

* ``simplejwt_server`` - the reference server, real Django + simplejwt, with the CareLink
  settings. By default under gunicorn on 127.0.0.1, shared by every test of the same
  configuration; ``@pytest.mark.simplejwt_server(access_s=3, rotate=True, blacklist=True,
  extra_env={...})`` configures it. With ``in_process=True`` it is the in-process server
  (:class:`~kiosk.testing.inprocess.InProcessServer`: Django's WSGI app behind an httpx
  transport, ``server.transport()``), which follows the ``virtual_clock``.
* ``simplejwt_server_factory`` - ``factory(**config)`` for a gunicorn server of any
  configuration (shared per configuration, stopped at the end of the session).
* ``private_simplejwt_server`` - a gunicorn server of the test's own (stop/restart it freely).
* ``virtual_clock`` - a :class:`~kiosk.testing.virtual.LinkedClock`: the client's clock (give it
  to ``TokenManager(clock=...)``) that also moves the in-process server's clock (time-machine),
  so token expiry, idle lock and the shift cap happen in virtual time. ``await
  virtual_clock.advance(s)`` or ``await virtual_clock.run(coro)``.
* ``fault_injector`` - a :class:`~kiosk.testing.faults.FaultInjector` transport: scripted
  faults (``fail_status``, ``connect_error``, ``connect_timeout``, ``read_timeout``,
  ``latency``, ``corrupt_token``, ``outage``) and, on the ``virtual_clock`` when the test uses
  it, time windows (``window("connect_error", 3 * 3600, 3 * 3600 + 300)``). It forwards to the
  in-process server when the test's ``simplejwt_server`` is in-process.
* ``shift`` - a :class:`~kiosk.testing.harness.ShiftHarness`: ``shift.run(hours=12,
  windows=5, faults="outage@3h+5m")`` plays a whole shift on virtual time and returns a
  :class:`~kiosk.testing.shift.ShiftReport`; ``shift.run_real_time(...)`` against gunicorn;
  ``shift.qt(...)`` through real Qt windows. A failing test shows the shift's KPIs.

After each test, once a kiosk has turned Python's automatic garbage collection off (it
collects from a Qt timer in the UI thread instead: kiosk/qt/collector.py), the plugin collects
what is due, in the main thread: tests that run no Qt event loop would otherwise never collect.

Nothing heavy is imported until a fixture is used: the plugin loads in every pytest run of
an environment where kiosk is installed.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Generator, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from kiosk.testing.faults import FaultInjector
    from kiosk.testing.harness import ShiftHarness
    from kiosk.testing.inprocess import InProcessServer
    from kiosk.testing.server.runner import ReferenceServer
    from kiosk.testing.virtual import LinkedClock

ServerFactory = Callable[..., "ReferenceServer"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "simplejwt_server(**config): configuration of the simplejwt_server fixture "
        "(access_s, refresh_s, rotate, blacklist, extra_env; in_process=True for the "
        "in-process server on virtual time)",
    )


@pytest.fixture(autouse=True)
def _kiosk_collect_between_tests() -> Iterator[None]:
    """Collect what is due after each test once a kiosk turned automatic collection off."""
    yield
    if not gc.isenabled():
        from kiosk.qt.collector import collect_due_generations

        collect_due_generations()


def _key(config: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    return tuple(
        sorted(
            (k, tuple(sorted(v.items())) if isinstance(v, dict) else v) for k, v in config.items()
        )
    )


@pytest.fixture(scope="session")
def simplejwt_server_factory() -> Iterator[ServerFactory]:
    """Start (or reuse) a reference server for a configuration: ``factory(access_s=3)``."""
    from kiosk.testing.server.runner import ReferenceServer

    servers: dict[tuple[tuple[str, Any], ...], ReferenceServer] = {}

    def factory(**config: Any) -> ReferenceServer:
        key = _key(config)
        server = servers.get(key)
        if server is None:
            server = servers[key] = ReferenceServer(**config)
        if not server.running:
            server.start()
        return server

    yield factory
    for server in servers.values():
        server.close()


def _marker_config(request: pytest.FixtureRequest) -> dict[str, Any]:
    marker = request.node.get_closest_marker("simplejwt_server")
    return dict(marker.kwargs) if marker else {}


def _in_process(config: dict[str, Any]) -> InProcessServer:
    from kiosk.testing.inprocess import shared_server

    config = dict(config)
    config.pop("in_process", None)
    extra_env = dict(config.pop("extra_env", None) or {})
    if "blacklist" in config:
        extra_env["KIOSK_SERVER_BLACKLIST"] = "1" if config.pop("blacklist") else "0"
    unknown = set(config) - {"access_s", "refresh_s", "rotate", "latency"}
    if unknown:
        raise pytest.UsageError(
            f"simplejwt_server(in_process=True) does not take {', '.join(sorted(unknown))}"
        )
    if extra_env:
        config["extra_env"] = extra_env
    return shared_server(**config)


@pytest.fixture
def simplejwt_server(
    request: pytest.FixtureRequest, simplejwt_server_factory: ServerFactory
) -> ReferenceServer | InProcessServer:
    """The reference server, configured by the test's ``simplejwt_server`` marker if any."""
    config = _marker_config(request)
    if config.get("in_process"):
        return _in_process(config)
    config.pop("in_process", None)
    return simplejwt_server_factory(**config)


@pytest.fixture
def private_simplejwt_server(request: pytest.FixtureRequest) -> Iterator[ReferenceServer]:
    """A reference server of this test's own, which it may stop and restart."""
    from kiosk.testing.server.runner import ReferenceServer

    config = _marker_config(request)
    if config.pop("in_process", False):
        raise pytest.UsageError("private_simplejwt_server is a gunicorn server: no in_process")
    with ReferenceServer(**config) as server:
        yield server


@pytest.fixture
def virtual_clock() -> Iterator[LinkedClock]:
    """The client's virtual clock, linked to the in-process server's clock for this test."""
    from kiosk.testing.virtual import LinkedClock

    with LinkedClock() as clock:
        yield clock


@pytest.fixture
def fault_injector(request: pytest.FixtureRequest) -> FaultInjector:
    """A fault-injecting transport to hand to ``TokenManager(transport=...)``.

    On the test's ``virtual_clock`` if it uses one (time windows and latency then run on it);
    forwarding to the in-process server if the test's ``simplejwt_server`` is in-process.
    """
    from kiosk.testing.faults import FaultInjector

    clock = None
    if "virtual_clock" in request.fixturenames:
        clock = request.getfixturevalue("virtual_clock")
    inner = None
    if "simplejwt_server" in request.fixturenames and _marker_config(request).get("in_process"):
        inner = request.getfixturevalue("simplejwt_server").transport()
    return FaultInjector(inner, clock=clock)


@pytest.fixture
def shift(request: pytest.FixtureRequest) -> ShiftHarness:
    """Whole shifts in one call: ``shift.run(hours=12, windows=5, faults=...)`` -> ShiftReport."""
    from kiosk.testing.harness import ShiftHarness

    harness = ShiftHarness(request)
    request.node.stash[_SHIFT_KEY] = harness
    return harness


_SHIFT_KEY = pytest.StashKey["ShiftHarness"]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    harness = item.stash.get(_SHIFT_KEY, None)
    if harness is not None and report.failed and harness.reports:
        report.sections.append(("kiosk shift reports", harness.summary()))
    return report
