"""Test-only request counters: a middleware that counts, and the ``/_test/stats/`` views.

Installed only when ``KIOSK_SERVER_TEST_ENDPOINTS=1``. Counts live in the ``StatCounter`` table and
are bumped with ``F()`` updates, so the figures add up across gunicorn workers. Keys:

- ``obtain``, ``refresh``, ``verify``, ``blacklist``: POSTs to the simplejwt endpoints (any status);
- ``refresh_ok`` / ``refresh_401``: refreshes answered 200 / 401;
- ``api_401``: 401 responses from everything *except* the token endpoints, i.e. API requests that
  carried a missing, expired or rejected access token (what a client had to replay).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable

from django.contrib.auth import get_user_model
from django.db import DatabaseError, IntegrityError
from django.db.models import F
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET, require_POST

from .models import StatCounter

logger = logging.getLogger(__name__)

KEYS = ("obtain", "refresh", "refresh_ok", "refresh_401", "blacklist", "verify", "api_401")

# Paths as routed in kiosk.testing.server.urls.
TOKEN_PATHS = {
    "/api/token/": "obtain",
    "/api/token/refresh/": "refresh",
    "/api/token/verify/": "verify",
    "/api/token/blacklist/": "blacklist",
    # djoser and dj-rest-auth variants (settings.WIRE_DIALECT)
    "/auth/jwt/create/": "obtain",
    "/auth/jwt/refresh/": "refresh",
    "/auth/jwt/verify/": "verify",
    "/dj-rest-auth/login/": "obtain",
    "/dj-rest-auth/token/refresh/": "refresh",
    "/dj-rest-auth/token/verify/": "verify",
    "/dj-rest-auth/logout/": "blacklist",
}


def bump(keys: Iterable[str]) -> None:
    """Add one to each counter in ``keys`` (creating missing rows)."""
    for key in keys:
        if StatCounter.objects.filter(key=key).update(value=F("value") + 1):
            continue
        try:
            StatCounter.objects.create(key=key, value=1)
        except IntegrityError:  # another worker created it first
            StatCounter.objects.filter(key=key).update(value=F("value") + 1)


def snapshot() -> dict[str, int]:
    """Return every counter (missing ones as 0)."""
    values = dict(StatCounter.objects.values_list("key", "value"))
    return {key: int(values.get(key, 0)) for key in KEYS}


def reset() -> None:
    """Set every counter to 0."""
    for key in KEYS:
        StatCounter.objects.update_or_create(key=key, defaults={"value": 0})


def _keys_for(request: HttpRequest, response: HttpResponse) -> list[str]:
    token_key = TOKEN_PATHS.get(request.path_info) if request.method == "POST" else None
    if token_key is None:
        is_token_path = request.path_info in TOKEN_PATHS
        return ["api_401"] if response.status_code == 401 and not is_token_path else []
    keys = [token_key]
    if token_key == "refresh" and response.status_code in (200, 401):
        keys.append("refresh_ok" if response.status_code == 200 else "refresh_401")
    return keys


class StatsMiddleware:
    """Counts token-endpoint POSTs and API 401s into ``StatCounter`` rows."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        keys = _keys_for(request, response)
        if keys:
            try:
                bump(keys)
            except DatabaseError:
                # The counters are diagnostics: a failed bump must not turn the answer into a 500.
                logger.exception("could not count %s", keys)
        return response


@require_GET
def stats_view(request: HttpRequest) -> JsonResponse:
    """``GET /_test/stats/``: every counter (no authentication)."""
    return JsonResponse(snapshot())


@require_POST
def reset_view(request: HttpRequest) -> JsonResponse:
    """``POST /_test/stats/reset/``: zero every counter and return them."""
    reset()
    return JsonResponse(snapshot())


@require_POST
def set_password_view(request: HttpRequest) -> JsonResponse:
    """``POST /_test/set-password/`` ``{"username", "password"}``: change a user's password.

    What an administrator's password reset does on a real server; with ``CHECK_REVOKE_TOKEN``
    it revokes every token the user holds.
    """
    try:
        data = json.loads(request.body)
        user = get_user_model().objects.get(username=data["username"])
    except (ValueError, KeyError, TypeError, get_user_model().DoesNotExist):
        return JsonResponse({"detail": "unknown user"}, status=400)
    user.set_password(data.get("password") or "")
    user.save(update_fields=["password"])
    return JsonResponse({"username": user.username})
