"""The simplejwt wire dialects: what to send, and what an answer means. No I/O.

A dialect turns an intent (log in, refresh, log out) into a :class:`WireRequest` and a
server answer (status, headers, body bytes) into issued tokens or a *typed* failure.
Decisions key on HTTP status and the body's ``code``, never on ``detail``: simplejwt
translates ``detail`` through Django's LocaleMiddleware, so "Token is blacklisted" may
arrive in Dutch.

Failure taxonomy for a refresh (DESIGN §3):

* :class:`RefreshRejectedError` - definitive: 401 ``token_not_valid`` (blacklisted or
  expired), ``user_inactive``, ``user_not_found``, ``password_changed``, a 401 without
  code, and 4xx answers that retrying cannot fix;
* :class:`~kiosk.core.errors.ServerUnavailableError` - transient: 5xx and 429, with
  the ``Retry-After`` they carry;
* :class:`~kiosk.core.errors.ServerResponseError` on a 2xx - the server processed the
  refresh but its answer is unusable, so the outcome is unknown (the driver treats it
  like a read timeout).

Three dialects implement the same :class:`WireDialect` protocol:

* :class:`PairDialect` - simplejwt's access + refresh pair, with or without rotation (djoser
  reuses these views under other paths);
* :class:`SlidingDialect` - one sliding token (``token_type: sliding``) that is both the
  access and the refresh credential: it must be refreshed before its ``exp``, and
  ``refresh_exp`` is a hard cap that refreshing never moves (the server answers 401
  ``token_not_valid`` after it, which is definitive);
* :class:`CookieDialect` - dj-rest-auth with ``JWT_AUTH_HTTPONLY``: the refresh token comes
  only in an HttpOnly ``Set-Cookie`` (the body's ``refresh`` is ``""``); the kiosk keeps it in
  memory, sends it back in a ``Cookie`` header, and never persists it
  (:attr:`WireDialect.persist_refresh` is False). Logout goes through dj-rest-auth's logout
  endpoint with the cookie.

The manager never looks at a dialect's name: it asks the dialect what to send, what an
answer means, which token type renews the session and whether that token may be persisted.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from kiosk.core.claims import Token, decode_token
from kiosk.core.errors import (
    ConfigurationError,
    InvalidCredentialsError,
    NeedsReauthenticationError,
    ServerResponseError,
    ServerUnavailableError,
    TokenValidationError,
)
from kiosk.core.settings import ServerSettings

#: Body codes after which a refresh can never succeed.
DEFINITIVE_CODES = frozenset(
    {
        "token_not_valid",
        "user_inactive",
        "user_not_found",
        "password_changed",
        "bad_authorization_header",
    }
)


@dataclass(frozen=True, slots=True)
class WireRequest:
    """A request a dialect wants sent. ``json`` may hold secrets: it is not in the repr."""

    method: str
    path: str
    json: Mapping[str, Any] = field(repr=False)
    #: Extra request headers (the cookie dialect's ``Cookie``); may hold secrets.
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)


@dataclass(frozen=True, slots=True)
class WireResponse:
    """What came back: status, headers (lower-case names), the body bytes and the cookies set."""

    status_code: int
    headers: Mapping[str, str]
    body: bytes = field(repr=False)
    #: Cookies the answer set (``Set-Cookie`` name -> value); may hold tokens.
    cookies: Mapping[str, str] = field(default_factory=dict, repr=False)


@dataclass(frozen=True, slots=True)
class IssuedTokens:
    """Tokens from a login or refresh; ``refresh`` is None when the server did not rotate."""

    access: Token
    refresh: Token | None


class RefreshRejectedError(NeedsReauthenticationError):
    """The server refused a refresh for good.

    Attributes:
        reason: the server's ``code`` (or ``"http_<status>"`` when it sent none).
        blacklisted: whether the server said the token was blacklisted (best effort,
            used only to pick the security event; the decision itself is the code).
    """

    def __init__(self, message: str, *, reason: str, blacklisted: bool = False) -> None:
        super().__init__(message, reason=reason)
        self.blacklisted = blacklisted


class WireDialect(Protocol):
    """What every server dialect provides."""

    settings: ServerSettings
    #: The ``token_type`` of the token that renews the session ("refresh" or "sliding").
    refresh_token_type: str
    #: Whether that token may be persisted (the cookie dialect's never is).
    persist_refresh: bool

    def obtain_request(self, username: str, password: str) -> WireRequest: ...

    def refresh_request(self, refresh: Token) -> WireRequest: ...

    def logout_request(self, refresh: Token) -> WireRequest | None: ...

    def parse_obtain(self, response: WireResponse) -> IssuedTokens: ...

    def parse_refresh(self, response: WireResponse) -> IssuedTokens: ...


def parse_json_object(response: WireResponse, max_bytes: int) -> dict[str, Any]:
    """The body as a JSON object, or a typed error saying what was wrong with it."""
    status = response.status_code
    if len(response.body) > max_bytes:
        raise ServerResponseError(
            f"server answer is {len(response.body)} bytes, more than the {max_bytes} accepted",
            status_code=status,
        )
    content_type = response.headers.get("content-type", "")
    try:
        data = json.loads(response.body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        # RecursionError: a deeply nested body ("[[[[...") within max_bytes.
        kind = content_type.split(";")[0].strip() or "no content type"
        raise ServerResponseError(
            f"server answered {kind} with status {status}, not JSON", status_code=status
        ) from None
    if not isinstance(data, dict):
        raise ServerResponseError(
            f"server answered a JSON {type(data).__name__}, expected an object",
            status_code=status,
        )
    return data


def error_code(response: WireResponse, max_bytes: int) -> str | None:
    """The ``code`` of an error body, if it is JSON and has a string one."""
    try:
        data = parse_json_object(response, max_bytes)
    except ServerResponseError:
        return None
    code = data.get("code")
    return code if isinstance(code, str) else None


def _looks_blacklisted(response: WireResponse) -> bool:
    # Only for choosing the event's wording; never for deciding what to do.
    return b"blacklist" in response.body.lower()


class PairDialect:
    """simplejwt's ``TokenObtainPairView`` / ``TokenRefreshView`` / ``TokenBlacklistView``."""

    refresh_token_type = "refresh"
    persist_refresh = True

    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings

    def obtain_request(self, username: str, password: str) -> WireRequest:
        return WireRequest(
            "POST",
            self.settings.obtain_path,
            {self.settings.username_field: username, "password": password},
        )

    def refresh_request(self, refresh: Token) -> WireRequest:
        return WireRequest("POST", self.settings.refresh_path, {"refresh": refresh.reveal()})

    def logout_request(self, refresh: Token) -> WireRequest | None:
        if self.settings.blacklist_path is None:
            return None
        return WireRequest("POST", self.settings.blacklist_path, {"refresh": refresh.reveal()})

    def parse_obtain(self, response: WireResponse) -> IssuedTokens:
        status = response.status_code
        if status in {401, 403}:
            raise InvalidCredentialsError(
                "Wrong user name or password, or the account is disabled."
            )
        if status == 400:
            raise InvalidCredentialsError(self._missing_fields_message(response))
        self._raise_if_unavailable(response)
        if not 200 <= status < 300:
            raise ServerResponseError(f"login answered HTTP {status}", status_code=status)
        data = parse_json_object(response, self.settings.max_body_bytes)
        refresh = data.get("refresh")
        if refresh is None:
            raise ServerResponseError("login answer has no refresh token", status_code=status)
        return IssuedTokens(
            access=self._access(data, status),
            refresh=decode_token(refresh, self.settings, expected_type="refresh"),
        )

    def parse_refresh(self, response: WireResponse) -> IssuedTokens:
        self._reject_refresh_errors(response)
        status = response.status_code
        data = parse_json_object(response, self.settings.max_body_bytes)
        refresh = data.get("refresh")
        return IssuedTokens(
            access=self._access(data, status),
            refresh=None
            if refresh is None
            else decode_token(refresh, self.settings, expected_type="refresh"),
        )

    def _reject_refresh_errors(self, response: WireResponse) -> None:
        """Raise the typed failure of a refresh answer that is not a 2xx."""
        status = response.status_code
        self._raise_if_unavailable(response)
        if status in {401, 403}:
            code = error_code(response, self.settings.max_body_bytes)
            reason = code or f"http_{status}"
            raise RefreshRejectedError(
                f"the server refused to renew the session ({reason})",
                reason=reason,
                blacklisted=_looks_blacklisted(response),
            )
        if not 200 <= status < 300:
            # 400 (our request is wrong), 404/405 (wrong path): retrying cannot help.
            raise RefreshRejectedError(
                f"the refresh endpoint answered HTTP {status}", reason=f"http_{status}"
            )

    def _access(self, data: dict[str, Any], status: int) -> Token:
        if "access" not in data:
            raise ServerResponseError("server answer has no access token", status_code=status)
        return decode_token(data["access"], self.settings, expected_type="access")

    def _missing_fields_message(self, response: WireResponse) -> str:
        try:
            data = parse_json_object(response, self.settings.max_body_bytes)
        except ServerResponseError:
            return "The server refused the login request (HTTP 400)."
        fields = ", ".join(sorted(str(name) for name in data))
        return f"The server expects other login fields ({fields}); check username_field."

    @staticmethod
    def _raise_if_unavailable(response: WireResponse) -> None:
        status = response.status_code
        if status == 429 or status >= 500:
            raise ServerUnavailableError(
                f"server answered HTTP {status}", retry_after=response.headers.get("retry-after")
            )


class SlidingDialect(PairDialect):
    """simplejwt's ``TokenObtainSlidingView`` / ``TokenRefreshSlidingView``: ``{"token"}``.

    The one sliding token is both the access token (sent in ``Authorization``) and the
    refresh credential, so :class:`IssuedTokens` carries it twice. It is persisted where the
    policy allows a refresh token to be (it is what renews the session). simplejwt has no
    view that revokes a sliding token, so logout can only forget it unless the server
    offers a blacklist endpoint for sliding tokens (``blacklist_path``).
    """

    refresh_token_type = "sliding"

    def refresh_request(self, refresh: Token) -> WireRequest:
        return WireRequest("POST", self.settings.refresh_path, {"token": refresh.reveal()})

    def logout_request(self, refresh: Token) -> WireRequest | None:
        if self.settings.blacklist_path is None:
            return None
        return WireRequest("POST", self.settings.blacklist_path, {"token": refresh.reveal()})

    def parse_obtain(self, response: WireResponse) -> IssuedTokens:
        status = response.status_code
        if status in {401, 403}:
            raise InvalidCredentialsError(
                "Wrong user name or password, or the account is disabled."
            )
        if status == 400:
            raise InvalidCredentialsError(self._missing_fields_message(response))
        return self._sliding(response, "login")

    def parse_refresh(self, response: WireResponse) -> IssuedTokens:
        self._reject_refresh_errors(response)
        return self._sliding(response, "refresh")

    def _sliding(self, response: WireResponse, what: str) -> IssuedTokens:
        status = response.status_code
        self._raise_if_unavailable(response)
        if not 200 <= status < 300:
            raise ServerResponseError(f"{what} answered HTTP {status}", status_code=status)
        data = parse_json_object(response, self.settings.max_body_bytes)
        if "token" not in data:
            raise ServerResponseError(f"{what} answer has no sliding token", status_code=status)
        token = decode_token(data["token"], self.settings, expected_type="sliding")
        if token.claims.refresh_exp is None:
            raise TokenValidationError("sliding token has no 'refresh_exp' claim")
        return IssuedTokens(access=token, refresh=token)


class CookieDialect(PairDialect):
    """dj-rest-auth with JWT cookies: the refresh token travels only in an HttpOnly cookie.

    Login answers ``{"access", "refresh": ""}`` and sets the refresh cookie; a refresh is a
    POST with an empty body and the cookie, answering ``{"access"}`` (and a new cookie when
    the server rotates); logout is a POST to ``logout_path`` with the cookie, which
    dj-rest-auth blacklists when the blacklist app is installed. A refresh token in the
    body (``JWT_AUTH_HTTPONLY = False``) is taken too.
    """

    persist_refresh = False

    def refresh_request(self, refresh: Token) -> WireRequest:
        return WireRequest("POST", self.settings.refresh_path, {}, self._cookie(refresh))

    def logout_request(self, refresh: Token) -> WireRequest | None:
        path = self.settings.logout_path or self.settings.blacklist_path
        if path is None:
            return None
        return WireRequest("POST", path, {}, self._cookie(refresh))

    def parse_obtain(self, response: WireResponse) -> IssuedTokens:
        status = response.status_code
        if status in {401, 403}:
            raise InvalidCredentialsError(
                "Wrong user name or password, or the account is disabled."
            )
        if status == 400:
            # dj-rest-auth answers wrong credentials with 400 non_field_errors.
            raise InvalidCredentialsError(self._cookie_login_400(response))
        self._raise_if_unavailable(response)
        if not 200 <= status < 300:
            raise ServerResponseError(f"login answered HTTP {status}", status_code=status)
        data = parse_json_object(response, self.settings.max_body_bytes)
        refresh = self._refresh_from(response, data)
        if refresh is None:
            raise ServerResponseError(
                "login answer set no refresh cookie (is JWT_AUTH_REFRESH_COOKIE set?)",
                status_code=status,
            )
        return IssuedTokens(access=self._access(data, status), refresh=refresh)

    def parse_refresh(self, response: WireResponse) -> IssuedTokens:
        self._reject_refresh_errors(response)
        status = response.status_code
        data = parse_json_object(response, self.settings.max_body_bytes)
        return IssuedTokens(
            access=self._access(data, status), refresh=self._refresh_from(response, data)
        )

    def _cookie(self, refresh: Token) -> dict[str, str]:
        name = self.settings.refresh_cookie or self._cookie_name
        return {"Cookie": f"{name}={refresh.reveal()}"}

    _cookie_name = "refresh"

    def _refresh_from(self, response: WireResponse, data: dict[str, Any]) -> Token | None:
        wanted = self.settings.refresh_cookie
        for name, value in response.cookies.items():
            if (wanted is not None and name != wanted) or not value:
                continue  # another cookie, or one being deleted
            try:
                token = decode_token(value, self.settings, expected_type="refresh")
            except TokenValidationError:
                if wanted is not None:
                    raise
                continue  # not the refresh cookie (the access cookie, a csrftoken...)
            self._cookie_name = name
            return token
        body_refresh = data.get("refresh")
        if body_refresh in (None, ""):
            return None
        return decode_token(body_refresh, self.settings, expected_type="refresh")

    def _cookie_login_400(self, response: WireResponse) -> str:
        try:
            data = parse_json_object(response, self.settings.max_body_bytes)
        except ServerResponseError:
            return "The server refused the login request (HTTP 400)."
        if "non_field_errors" in data:
            return "Wrong user name or password, or the account is disabled."
        return self._missing_fields_message(response)


def make_dialect(settings: ServerSettings) -> WireDialect:
    """The dialect object for ``settings.dialect``."""
    if settings.dialect == "pair":
        return PairDialect(settings)
    if settings.dialect == "sliding":
        return SlidingDialect(settings)
    if settings.dialect == "cookie":
        return CookieDialect(settings)
    raise ConfigurationError(f"unknown server dialect {settings.dialect!r}")
