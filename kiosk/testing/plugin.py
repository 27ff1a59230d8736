"""The kiosk pytest plugin (registered through the ``pytest11`` entry point).

Fixtures:

* ``simplejwt_server`` - the reference server (real Django + simplejwt under gunicorn on
  127.0.0.1) with the CareLink settings; shared by the whole test session. Parametrise it
  with ``@pytest.mark.simplejwt_server(access_s=3, rotate=True, blacklist=True)``: servers
  are shared per distinct configuration.
* ``simplejwt_server_factory`` - ``factory(**config)`` for a server of any configuration
  (shared per configuration, stopped at the end of the session).
* ``private_simplejwt_server`` - a server of its own for the test (stop/restart it freely).
* ``fault_injector`` - a :class:`~kiosk.testing.faults.FaultInjector` transport.

Nothing heavy is imported until a fixture is used: the plugin loads in every pytest run of
an environment where kiosk is installed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from kiosk.testing.faults import FaultInjector
    from kiosk.testing.server.runner import ReferenceServer

ServerFactory = Callable[..., "ReferenceServer"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "simplejwt_server(**config): configuration of the simplejwt_server fixture "
        "(access_s, refresh_s, rotate, blacklist, extra_env)",
    )


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


@pytest.fixture
def simplejwt_server(
    request: pytest.FixtureRequest, simplejwt_server_factory: ServerFactory
) -> ReferenceServer:
    """The reference server, configured by the test's ``simplejwt_server`` marker if any."""
    marker = request.node.get_closest_marker("simplejwt_server")
    config = dict(marker.kwargs) if marker else {}
    return simplejwt_server_factory(**config)


@pytest.fixture
def private_simplejwt_server(request: pytest.FixtureRequest) -> Iterator[ReferenceServer]:
    """A reference server of this test's own, which it may stop and restart."""
    from kiosk.testing.server.runner import ReferenceServer

    marker = request.node.get_closest_marker("simplejwt_server")
    config = dict(marker.kwargs) if marker else {}
    with ReferenceServer(**config) as server:
        yield server


@pytest.fixture
def fault_injector() -> FaultInjector:
    """A fault-injecting transport to hand to ``TokenManager(transport=...)``."""
    from kiosk.testing.faults import FaultInjector

    return FaultInjector()
