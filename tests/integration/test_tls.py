"""HTTPS behind a hospital's own PKI: the reference server with a certificate from a private CA.

With ``ca_bundle`` the token client and the application's API client both trust that CA (one
shared SSL context); without it the login fails with a typed error and a HIGH ``tls_error``
security event - the Qt shell shows its "Tell IT" banner for it.
"""

from __future__ import annotations

import httpx
import pytest

from kiosk.core import (
    EventKind,
    MemoryVault,
    ServerSettings,
    Severity,
    State,
    TlsVerificationError,
    TokenManager,
)
from kiosk.testing.server.runner import ReferenceServer
from kiosk.testing.server.tls import make_test_pki

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def tls_server():
    with ReferenceServer(tls=True, access_s=3) as server:
        yield server


async def test_with_the_hospital_ca_bundle_a_session_works_over_https(tls_server):
    assert tls_server.base_url.startswith("https://")
    settings = ServerSettings(base_url=tls_server.base_url, ca_bundle=tls_server.ca_bundle)
    events = []
    async with TokenManager(settings, vault=MemoryVault()) as tm:
        tm.subscribe(events.append)
        await tm.login("alice", tls_server.users["alice"])
        async with httpx.AsyncClient(
            base_url=settings.base_url, auth=tm.auth, verify=tm.ssl_context
        ) as api:
            me = await api.get("/api/me/")
            await tm.refresh()
            again = await api.get("/api/me/")
        assert tm.state is State.ACTIVE
        await tm.logout()
    assert me.status_code == 200
    assert again.status_code == 200
    assert me.json()["username"] == "alice"
    assert "tls_error" not in [e.kind.value for e in events]
    assert tls_server.live_refresh_tokens("alice") == 0


async def test_without_the_ca_bundle_the_login_fails_with_a_tls_security_event(tls_server):
    settings = ServerSettings(base_url=tls_server.base_url)
    events = []
    async with TokenManager(settings, vault=MemoryVault()) as tm:
        tm.subscribe(events.append)
        with pytest.raises(TlsVerificationError, match="certificate"):
            await tm.login("alice", tls_server.users["alice"])
        with pytest.raises(TlsVerificationError):
            await tm.login("alice", tls_server.users["alice"])
        assert tm.state is State.LOGGED_OUT
    tls_events = [e for e in events if e.kind is EventKind.TLS_ERROR]
    assert len(tls_events) == 1  # once per run of failures, not once per attempt
    assert tls_events[0].severity is Severity.HIGH
    assert "ca_bundle" in tls_events[0].message
    assert tls_server.users["alice"] not in tls_events[0].message


async def test_a_ca_bundle_of_another_ca_is_refused_too(tls_server, tmp_path):
    other = make_test_pki(tmp_path / "other-hospital")
    settings = ServerSettings(base_url=tls_server.base_url, ca_bundle=str(other.ca))
    events = []
    async with TokenManager(settings, vault=MemoryVault()) as tm:
        tm.subscribe(events.append)
        with pytest.raises(TlsVerificationError):
            await tm.login("alice", tls_server.users["alice"])
    (event,) = [e for e in events if e.kind is EventKind.TLS_ERROR]
    assert str(other.ca) in event.message  # IT is told which bundle was used


async def test_an_api_client_without_the_managers_context_does_not_trust_the_hospital_ca(
    tls_server,
):
    # Why the bridge passes tm.ssl_context to its API client: httpx's default trust store
    # does not know the hospital's CA.
    async with httpx.AsyncClient(base_url=tls_server.base_url) as plain:
        with pytest.raises(httpx.ConnectError):
            await plain.get("/api/me/")
