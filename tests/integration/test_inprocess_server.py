"""The in-process reference server: the real Django + simplejwt code, on the linked virtual clock.

Every request goes through ``server.transport()`` into Django's WSGI app in this process, so
what is checked here is simplejwt itself answering at the virtual server time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import jwt
import pytest

from kiosk.testing.inprocess import InProcessServer, shared_server
from kiosk.testing.virtual import LinkedClock

pytestmark = pytest.mark.server

ACCESS_S = 60
REFRESH_S = 3600
USER = "carol"  # other in-process tests count alice's live tokens

#: The reference server's defaults: the CareLink general-ward lifetimes (15 min, 12 h).
DEFAULT_ACCESS_S = 15 * 60
DEFAULT_REFRESH_S = 12 * 3600


def _claims(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


@pytest.fixture
def server() -> Iterator[InProcessServer]:
    # latency=None: a request costs no virtual time, so the tests can await it directly.
    srv = shared_server(access_s=ACCESS_S, refresh_s=REFRESH_S, rotate=True, latency=None)
    yield srv
    shared_server()  # the defaults again, and started: the next test may not ask for any


def _revoke_every_refresh_token(username: str) -> None:
    """Blacklist all of ``username``'s refresh tokens: the database outlives the test.

    Through the ORM, not the API: a token that expired on this test's clock would be live
    again for the next test, whose clock starts at the same virtual instant.
    """
    from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

    for token in OutstandingToken.objects.filter(
        user__username=username, blacklistedtoken__isnull=True
    ):
        BlacklistedToken.objects.create(token=token)


class Api:
    """An httpx client on the in-process server, with the token endpoints as methods."""

    def __init__(self, server: InProcessServer, client: httpx.AsyncClient) -> None:
        self.server = server
        self.client = client

    async def login(self, user: str = USER) -> dict[str, str]:
        response = await self.client.post(
            "/api/token/", json={"username": user, "password": self.server.users[user]}
        )
        assert response.status_code == 200, response.text
        pair: dict[str, str] = response.json()
        return pair

    async def refresh(self, token: str) -> httpx.Response:
        return await self.client.post("/api/token/refresh/", json={"refresh": token})

    async def logout(self, token: str) -> httpx.Response:
        return await self.client.post("/api/token/blacklist/", json={"refresh": token})

    async def me(self, access: str) -> httpx.Response:
        return await self.client.get("/api/me/", headers={"Authorization": f"Bearer {access}"})


@pytest.fixture
async def api(server: InProcessServer, virtual_clock: LinkedClock) -> AsyncIterator[Api]:
    async with httpx.AsyncClient(transport=server.transport(), base_url=server.base_url) as client:
        yield Api(server, client)
    _revoke_every_refresh_token(USER)


async def test_tokens_are_issued_at_the_virtual_server_time(api, virtual_clock):
    await virtual_clock.advance(12_345.75)
    virtual_clock.add_skew(300)  # the workstation's clock is not the server's
    pair = await api.login()
    access, refresh = _claims(pair["access"]), _claims(pair["refresh"])
    assert access["iat"] == int(virtual_clock.server_time())
    assert access["iat"] != int(virtual_clock.time())
    assert access["exp"] - access["iat"] == ACCESS_S
    assert refresh["iat"] == access["iat"]
    assert refresh["exp"] - refresh["iat"] == REFRESH_S


async def test_configure_changes_the_lifetimes_of_the_next_login(api, server):
    before = _claims((await api.login())["access"])
    server.configure(access_s=120, refresh_s=7200)
    pair = await api.login()
    assert before["exp"] - before["iat"] == ACCESS_S
    assert _claims(pair["access"])["exp"] - _claims(pair["access"])["iat"] == 120
    assert _claims(pair["refresh"])["exp"] - _claims(pair["refresh"])["iat"] == 7200
    refreshed = await api.refresh(pair["refresh"])
    new_access = _claims(refreshed.json()["access"])
    assert new_access["exp"] - new_access["iat"] == 120


async def test_the_date_header_is_the_virtual_server_time(api, virtual_clock):
    await virtual_clock.advance(7200)
    first = await api.client.get("/api/me/")
    await virtual_clock.advance(3600)
    second = await api.client.get("/api/me/")
    assert first.status_code == second.status_code == 401  # no token; the Date is there anyway
    first_date = parsedate_to_datetime(first.headers["date"]).timestamp()
    second_date = parsedate_to_datetime(second.headers["date"]).timestamp()
    assert first_date == int(virtual_clock.server_time()) - 3600
    assert second_date == int(virtual_clock.server_time())
    assert len(second.headers.get_list("date")) == 1


async def test_stop_refuses_connections_and_start_brings_back_the_same_database(api, server):
    pair = await api.login()
    server.stop()
    assert not server.running
    with pytest.raises(httpx.ConnectError):
        await api.client.post("/api/token/refresh/", json={"refresh": pair["refresh"]})
    with pytest.raises(httpx.ConnectError):
        await api.me(pair["access"])
    server.start()
    assert server.running
    assert (await api.me(pair["access"])).status_code == 200
    refreshed = await api.refresh(pair["refresh"])  # the token outstanding before the stop
    assert refreshed.status_code == 200


async def test_a_rotated_refresh_token_is_blacklisted(api):
    pair = await api.login()
    first = await api.refresh(pair["refresh"])
    assert first.status_code == 200
    rotated = first.json()["refresh"]
    assert rotated != pair["refresh"]
    again = await api.refresh(pair["refresh"])
    assert again.status_code == 401
    assert again.json()["code"] == "token_not_valid"
    assert (await api.refresh(rotated)).status_code == 200


async def test_live_refresh_tokens_counts_outstanding_unrevoked_tokens(api, server):
    before = server.live_refresh_tokens(USER)
    first = await api.login()
    second = await api.login()
    assert server.live_refresh_tokens(USER) == before + 2
    rotated = (await api.refresh(first["refresh"])).json()["refresh"]
    assert server.live_refresh_tokens(USER) == before + 2  # the old one out, the new one in
    assert (await api.logout(rotated)).status_code == 200
    assert server.live_refresh_tokens(USER) == before + 1
    assert (await api.logout(second["refresh"])).status_code == 200
    assert server.live_refresh_tokens(USER) == before


async def test_expired_refresh_tokens_are_not_live(api, server, virtual_clock):
    await api.login()
    live = server.live_refresh_tokens(USER)
    assert live >= 1
    await virtual_clock.advance(REFRESH_S + 1)
    assert server.live_refresh_tokens(USER) == live - 1


async def test_an_access_token_expires_on_the_virtual_clock(api, virtual_clock):
    pair = await api.login()
    await virtual_clock.advance(ACCESS_S - 1)
    fresh = await api.me(pair["access"])
    assert fresh.status_code == 200
    assert fresh.json()["username"] == USER
    await virtual_clock.advance(2)
    expired = await api.me(pair["access"])
    assert expired.status_code == 401
    assert expired.json()["code"] == "token_not_valid"


async def test_a_request_takes_the_configured_virtual_latency(api, server, virtual_clock):
    server.latency = 0.5

    async def call() -> tuple[int, float]:
        response = await api.client.get("/api/me/")
        return response.status_code, parsedate_to_datetime(response.headers["date"]).timestamp()

    status, stamped = await virtual_clock.run(call())
    assert status == 401
    assert virtual_clock.monotonic() == 0.5
    assert stamped == int(virtual_clock.server_time() - 0.5)  # stamped when it was answered


async def test_a_direct_request_costs_no_virtual_time(api, server, virtual_clock):
    server.latency = 0.5
    response = await api.client.get("/api/me/")  # nothing advances the clock here
    assert response.status_code == 401
    assert virtual_clock.monotonic() == 0.0


def test_shared_server_is_one_object_per_process(server):
    again = shared_server(access_s=ACCESS_S, refresh_s=REFRESH_S, rotate=True, latency=None)
    assert again is server


async def test_shared_server_gives_left_out_settings_their_defaults(server, virtual_clock):
    server.configure(access_s=120, refresh_s=600)
    again = shared_server(rotate=False)  # what an in_process marker without lifetimes asks
    assert (again.access_s, again.refresh_s, again.rotate) == (
        DEFAULT_ACCESS_S,
        DEFAULT_REFRESH_S,
        False,
    )
    assert again.latency == "measured"
    async with httpx.AsyncClient(transport=again.transport(), base_url=again.base_url) as client:
        pair = (
            await client.post("/api/token/", json={"username": USER, "password": again.users[USER]})
        ).json()
        refreshed = await client.post("/api/token/refresh/", json={"refresh": pair["refresh"]})
    _revoke_every_refresh_token(USER)
    access = _claims(pair["access"])
    assert access["exp"] - access["iat"] == DEFAULT_ACCESS_S
    assert "refresh" not in refreshed.json()  # no rotation


def test_shared_server_rejects_unknown_settings(server):
    with pytest.raises(TypeError, match="acces_s"):
        shared_server(acces_s=60)
