"""The refresh patterns kiosk is compared with, adapted to simplejwt as faithfully as possible.

* :class:`HttpxDocsRefreshAuth` - the refresh-on-401 recipe from httpx's "Custom authentication
  schemes" docs (the ``requires_response_body`` example): send with the access token; on a 401
  yield ``build_refresh_request()``, ``update_tokens()`` from its answer, replay once. No lock
  (the docs' recipe has none: ``auth_flow`` is meant to do no I/O and no synchronisation).
* :func:`make_authlib_client` - authlib's ``AsyncOAuth2Client`` with ``token_endpoint`` set to
  simplejwt's refresh URL. authlib refreshes *before* sending when
  ``expires_at - leeway < now`` (under an ``anyio.Lock``); it never reacts to a 401. Adapted with
  authlib's own extension points only (compliance hooks + the ``update_token`` callback):

  - ``refresh_token_request`` hook: authlib's form body ``grant_type=refresh_token&
    refresh_token=...`` becomes simplejwt's ``refresh=...`` (simplejwt's ``TokenRefreshView``
    parses form bodies as well as JSON; the JSON ``{"refresh": ...}`` and this form body are the
    same serializer input);
  - ``refresh_token_response`` hook: simplejwt's ``{"access", "refresh"}`` becomes an OAuth2 token
    dict (``access_token``, ``refresh_token``, ``token_type: Bearer``, ``expires_at`` = the access
    JWT's ``exp``); a simplejwt rejection (401 ``token_not_valid``) becomes OAuth2's
    ``{"error": "invalid_grant"}``, so authlib raises ``OAuthError`` as it would against an OAuth2
    server;
  - ``token_endpoint_auth_method="none"`` (simplejwt has no client credentials; authlib then adds
    a ``client_id`` field, which simplejwt ignores);
  - ``update_token`` callback: counts the refreshes authlib completed (the persistence hook).
"""

from __future__ import annotations

import base64
import json
import warnings
from collections.abc import Generator
from typing import Any

import httpx

REFRESH_PATH = "/api/token/refresh/"


def jwt_exp(token: str) -> int:
    """The ``exp`` claim of a JWT, read without verifying it (client-side bookkeeping only)."""
    payload = token.split(".")[1]
    payload += "=" * (-len(payload) % 4)
    return int(json.loads(base64.urlsafe_b64decode(payload))["exp"])


class HttpxDocsRefreshAuth(httpx.Auth):
    """httpx's documented refresh-on-401 recipe, with simplejwt's refresh call filled in.

    The structure, names and control flow are the docs' (``requires_response_body``,
    ``build_refresh_request``, ``update_tokens``); only the ``...`` bodies are written here, and
    the ``X-Authentication`` header of the docs is simplejwt's ``Authorization: Bearer``.
    """

    requires_response_body = True

    def __init__(self, access_token: str, refresh_token: str, refresh_url: str) -> None:
        self.access_token = access_token
        self.refresh_token = refresh_token
        self.refresh_url = refresh_url

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self.access_token}"
        response = yield request

        if response.status_code == 401:
            # If the server issues a 401 response, then issue a request to
            # refresh tokens, and resend the request.
            refresh_response = yield self.build_refresh_request()
            self.update_tokens(refresh_response)

            request.headers["Authorization"] = f"Bearer {self.access_token}"
            yield request

    def build_refresh_request(self) -> httpx.Request:
        """``POST {"refresh": <current refresh token>}`` to simplejwt's refresh endpoint."""
        return httpx.Request("POST", self.refresh_url, json={"refresh": self.refresh_token})

    def update_tokens(self, response: httpx.Response) -> None:
        """Take the new access token (and, with rotation, the new refresh token).

        The docs leave error handling open; a refused refresh keeps the old tokens, so the replay
        goes out with the expired access token and comes back 401 (counted as a failure).
        """
        if response.status_code != 200:
            return
        data = response.json()
        self.access_token = data["access"]
        self.refresh_token = data.get("refresh", self.refresh_token)


def _simplejwt_refresh_request(url: str, headers: dict[str, str], body: str) -> tuple[Any, ...]:
    """authlib ``refresh_token_request`` hook: OAuth2's form fields -> simplejwt's ``refresh``."""
    from authlib.common.urls import url_decode, url_encode

    fields = dict(url_decode(body))
    return url, headers, url_encode([("refresh", fields["refresh_token"])])


def _simplejwt_refresh_response(response: httpx.Response) -> httpx.Response:
    """authlib ``refresh_token_response`` hook: simplejwt's answer -> an OAuth2 token response."""
    if response.status_code >= 500:
        return response
    try:
        data = response.json()
    except ValueError:
        return response
    if response.status_code == 200 and isinstance(data, dict) and "access" in data:
        token: dict[str, Any] = {
            "access_token": data["access"],
            "token_type": "Bearer",
            "expires_at": jwt_exp(data["access"]),
        }
        if "refresh" in data:
            token["refresh_token"] = data["refresh"]
        return httpx.Response(200, json=token, request=response.request)
    detail = data.get("detail") if isinstance(data, dict) else None
    error = {"error": "invalid_grant", "error_description": str(detail)}
    return httpx.Response(400, json=error, request=response.request)


class AuthlibCounter:
    """authlib's ``update_token`` callback: counts the refreshes authlib completed."""

    def __init__(self) -> None:
        self.updates = 0

    async def __call__(self, token: dict[str, Any], **_: Any) -> None:
        self.updates += 1


def make_authlib_client(
    base_url: str,
    *,
    access: str,
    refresh: str,
    leeway: int,
    limits: httpx.Limits,
    timeout: float,
) -> tuple[Any, AuthlibCounter]:
    """An ``AsyncOAuth2Client`` holding a simplejwt token pair, adapted as the module says."""
    with warnings.catch_warnings():
        # authlib 1.9 prefers the ``httpx2`` fork and warns when it falls back to httpx.
        warnings.simplefilter("ignore")
        from authlib.integrations.httpx_client import AsyncOAuth2Client

    counter = AuthlibCounter()
    token = {
        "access_token": access,
        "refresh_token": refresh,
        "token_type": "Bearer",
        "expires_at": jwt_exp(access),
    }
    client = AsyncOAuth2Client(
        client_id="kiosk-bench",
        token=token,
        token_endpoint=base_url + REFRESH_PATH,
        token_endpoint_auth_method="none",
        update_token=counter,
        leeway=leeway,
        base_url=base_url,
        limits=limits,
        timeout=timeout,
    )
    client.register_compliance_hook("refresh_token_request", _simplejwt_refresh_request)
    client.register_compliance_hook("refresh_token_response", _simplejwt_refresh_response)
    return client, counter
