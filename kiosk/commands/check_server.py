"""``kiosk check-server``: can the kiosk work with this server, and how to configure it.

Hospital IT points it at the server (with a test account) and gets a table, the ``[server]``
TOML snippet to paste into the kiosk config, and an exit code: 0 the kiosk can work with the
server, 1 it cannot (the reasons are printed), 2 usage errors. ``--json`` prints one object.

What it discovers, in order, each from what the server really answers (DESIGN §4):

1. the endpoints: a POST of ``{}`` to each known obtain path (simplejwt, djoser, dj-rest-auth,
   simplejwt's sliding view) until one answers 400 naming ``password``; the username field is
   the other field that 400 names (``email`` for a custom user model);
2. the header type, from the ``WWW-Authenticate`` of a refresh with a bad token (simplejwt
   answers it with ``AUTH_HEADER_TYPES[0]``), or of an API call without a token
   (``--api-path``; 403 without the header means SessionAuthentication answers first);
3. with credentials: the login (dialect from the answer: ``{"token"}`` sliding, an HttpOnly
   refresh cookie and ``"refresh": ""`` cookie, else pair), algorithm and claim names from
   the tokens, lifetimes (``exp - iat``), clock skew from ``Date``, an optional signature
   check with the configured key, issuer and audience (a failure is a reason, never a
   silent accept); the refresh (rotation = a new refresh token); blacklisting (the rotated
   token is tried once more); the verify endpoint; logout and whether it revokes (the
   logged-out token is tried once more).

It leaves no live token behind where the server can revoke one: every refresh token it made
is logged out. Where the server cannot revoke (no blacklist app, djoser, sliding tokens) it
says so, because the kiosk's sign-out will not revoke either.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import ssl
import sys
import time
from dataclasses import dataclass, field, replace
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import jwt

from kiosk.commands.server_args import UsageError, add_server_flags, settings_from_args
from kiosk.core.claims import decode_token
from kiosk.core.config import server_toml
from kiosk.core.errors import (
    ConfigurationError,
    InsecureTransportError,
    KioskError,
    TokenValidationError,
)
from kiosk.core.settings import ServerSettings

#: An endpoint family: (name, dialect, obtain, refresh, verify, blacklist, logout).
_Family = tuple[str, str, str, str, str | None, str | None, str | None]
#: Known endpoint families, tried in this order.
FAMILIES: list[_Family] = [
    (
        "simplejwt",
        "pair",
        "/api/token/",
        "/api/token/refresh/",
        "/api/token/verify/",
        "/api/token/blacklist/",
        None,
    ),
    ("djoser", "pair", "/auth/jwt/create/", "/auth/jwt/refresh/", "/auth/jwt/verify/", None, None),
    (
        "dj-rest-auth",
        "cookie",
        "/dj-rest-auth/login/",
        "/dj-rest-auth/token/refresh/",
        "/dj-rest-auth/token/verify/",
        None,
        "/dj-rest-auth/logout/",
    ),
    (
        "simplejwt-sliding",
        "sliding",
        "/api/token/sliding/",
        "/api/token/sliding/refresh/",
        "/api/token/verify/",
        None,
        None,
    ),
]
_PATH_KEYS = ("obtain_path", "refresh_path", "verify_path", "blacklist_path", "logout_path")
_STANDARD_CLAIMS = {"exp", "iat", "nbf", "iss", "aud", "refresh_exp", "sub"}
_UUID_HEX = re.compile(r"^[0-9a-f]{32}$")
_TOKEN_TYPES = {"access", "refresh", "sliding"}


@dataclass
class Report:
    """What check-server found (the ``--json`` object)."""

    ok: bool = False
    url: str = ""
    family: str | None = None
    dialect: str | None = None
    obtain_path: str | None = None
    refresh_path: str | None = None
    verify_path: str | None = None
    blacklist_path: str | None = None
    logout_path: str | None = None
    username_field: str | None = None
    auth_header_type: str | None = None
    session_auth_first: bool | None = None
    rotation: bool | None = None
    blacklist_after_rotation: bool | None = None
    logout_revokes: bool | None = None
    access_lifetime_s: float | None = None
    refresh_lifetime_s: float | None = None
    algorithm: str | None = None
    signature_verified: bool | None = None
    user_id_claim: str | None = None
    user_id_type: str | None = None
    token_type_claim: str | None = None
    jti_claim: str | None = None
    refresh_cookie: str | None = None
    clock_skew_s: float | None = None
    latency_ms: dict[str, float | None] = field(
        default_factory=lambda: {"login": None, "refresh": None}
    )
    warnings: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    config: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass
class _Answer:
    status: int
    headers: httpx.Headers
    body: Any
    cookies: dict[str, str]
    sent_at: float
    received_at: float

    @property
    def latency_ms(self) -> float:
        return (self.received_at - self.sent_at) * 1000


class Checker:
    """Runs the probes against one server; fills a :class:`Report`."""

    def __init__(
        self,
        settings: ServerSettings,
        given: set[str],
        *,
        username: str | None,
        password: str | None,
        api_path: str | None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self.given = given
        self.username = username
        self.password = password
        self.api_path = api_path
        verify: ssl.SSLContext | bool = True
        if settings.ca_bundle:
            verify = ssl.create_default_context(cafile=settings.ca_bundle)
        # No cookie jar between probes: cookies are sent explicitly where the dialect wants them.
        self.http = httpx.Client(
            timeout=settings.timeout_s, verify=verify, follow_redirects=False, transport=transport
        )
        self.report = Report(url=settings.base_url)
        self._live_refresh: list[str] = []  # refresh credentials made here, to log out

    # -------------------------------------------------------------- plumbing

    def _post(self, path: str, body: dict[str, Any], cookie: str | None = None) -> _Answer:
        headers = {} if cookie is None else {"Cookie": cookie}
        return self._send("POST", path, json_body=body, headers=headers)

    def _send(
        self,
        method: str,
        path: str,
        *,
        json_body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> _Answer:
        self.http.cookies.clear()
        sent = time.time()
        response = self.http.request(
            method, self.settings.url(path), json=json_body, headers=headers or {}
        )
        received = time.time()
        try:
            body: Any = response.json()
        except ValueError:
            body = None
        cookies = {c.name: c.value or "" for c in response.cookies.jar}
        return _Answer(response.status_code, response.headers, body, cookies, sent, received)

    def warn(self, message: str) -> None:
        self.report.warnings.append(message)

    def fail(self, message: str) -> None:
        self.report.reasons.append(message)

    # -------------------------------------------------------------- the probes

    def run(self) -> Report:
        report = self.report
        try:
            if self._discover_endpoints():
                self._discover_header_type()
                if self.username is None or self.password is None:
                    self.warn(
                        "no credentials given (--username/--password-stdin): login, refresh, "
                        "rotation, blacklisting, logout, lifetimes and claims were not checked"
                    )
                else:
                    self._session()
        except httpx.TransportError as exc:
            self.fail(f"cannot talk to {self.settings.base_url}: {type(exc).__name__}: {exc}")
        finally:
            try:
                self._logout_leftovers()
            finally:
                self.http.close()
        report.ok = not report.reasons
        report.config = self._config_snippet()
        return report

    def _discover_endpoints(self) -> bool:
        report, s = self.report, self.settings
        if "obtain_path" in self.given:
            family = next((f for f in FAMILIES if f[2] == s.obtain_path), None)
            candidates = [self._family_with_given(family)]
        else:
            candidates = [self._family_with_given(f) for f in FAMILIES]
            if "dialect" in self.given:
                # the configured dialect's usual paths first
                candidates.sort(key=lambda c: c[1] != s.dialect)
        for name, dialect, obtain, refresh, verify, blacklist, logout in candidates:
            answer = self._post(obtain, {})
            if answer.status == 400 and isinstance(answer.body, dict) and "password" in answer.body:
                report.family = name
                report.dialect = dialect
                report.obtain_path, report.refresh_path = obtain, refresh
                report.verify_path, report.blacklist_path, report.logout_path = (
                    verify,
                    blacklist,
                    logout,
                )
                others = [str(k) for k in answer.body if k not in {"password", "non_field_errors"}]
                if "username_field" in self.given:
                    report.username_field = s.username_field
                    if others and s.username_field not in others:
                        self.fail(
                            f"the login endpoint wants {', '.join(others)}, "
                            f"not the configured username_field {s.username_field!r}"
                        )
                else:
                    report.username_field = others[0] if len(others) == 1 else "username"
                return True
        tried = ", ".join(c[2] for c in candidates)
        self.fail(
            f"no simplejwt-compatible login endpoint found (tried {tried}); "
            "set obtain_path (and the other paths) with --config or --obtain-path"
        )
        return False

    def _family_with_given(self, family: _Family | None) -> _Family:
        s = self.settings
        name, dialect = ("configured", s.dialect) if family is None else family[:2]
        paths: list[str | None] = (
            [getattr(s, k) for k in _PATH_KEYS] if family is None else list(family[2:])
        )
        values = [
            getattr(s, k) if k in self.given else p for k, p in zip(_PATH_KEYS, paths, strict=True)
        ]
        if "dialect" in self.given:
            dialect = s.dialect
        obtain = values[0] or s.obtain_path
        refresh = values[1] or s.refresh_path
        return (name, dialect, obtain, refresh, values[2], values[3], values[4])

    def _discover_header_type(self) -> None:
        report = self.report
        assert report.refresh_path is not None
        answer = self._post(report.refresh_path, {"refresh": "not-a-token", "token": "not-a-token"})
        found = _header_type(answer.headers.get("www-authenticate"))
        if self.api_path:
            api = self._send("GET", self.api_path)
            if api.status == 403:
                report.session_auth_first = True
                self.warn(
                    "the API answers 403 (not 401) without a token: SessionAuthentication comes "
                    "before JWTAuthentication; the kiosk treats 403 token_not_valid like 401"
                )
            elif api.status == 401:
                report.session_auth_first = False
                found = found or _header_type(api.headers.get("www-authenticate"))
        if "auth_header_type" in self.given:
            report.auth_header_type = self.settings.auth_header_type
            if found and found != self.settings.auth_header_type:
                self.warn(
                    f"the server's first AUTH_HEADER_TYPES entry is {found!r}, the config says "
                    f"{self.settings.auth_header_type!r}"
                )
        elif found:
            report.auth_header_type = found
        else:
            report.auth_header_type = "Bearer"
            self.warn("the server sent no WWW-Authenticate header; assuming 'Bearer'")

    def _session(self) -> None:
        report = self.report
        assert report.obtain_path is not None
        assert report.username_field is not None
        login = self._post(
            report.obtain_path, {report.username_field: self.username, "password": self.password}
        )
        report.latency_ms["login"] = round(login.latency_ms, 1)
        self._skew(login)
        if login.status != 200 or not isinstance(login.body, dict):
            self.fail(
                f"login as {self.username!r} answered HTTP {login.status}: "
                f"{_detail(login.body)} (check the credentials and username_field)"
            )
            return
        body = login.body
        refresh_cookie = self._refresh_cookie(login.cookies)
        if isinstance(body.get("token"), str):
            report.dialect = "sliding"
            access = refresh = body["token"]
            if "blacklist_path" not in self.given:
                report.blacklist_path = None  # simplejwt has no view that revokes sliding tokens
        elif isinstance(body.get("access"), str):
            access = body["access"]
            if refresh_cookie is not None:
                report.dialect = "cookie"
                report.refresh_cookie, refresh = refresh_cookie
            elif isinstance(body.get("refresh"), str) and body["refresh"]:
                report.dialect = "pair"
                refresh = body["refresh"]
            else:
                self.fail("the login answer has an access token but no refresh token or cookie")
                return
        else:
            self.fail(f"the login answer has no tokens (keys: {', '.join(sorted(body))})")
            return
        self._live_refresh.append(refresh)
        if not self._claims(access, refresh):
            return
        if self.api_path:
            self._api_call(access)
        self._verify(access)
        new_refresh = self._refresh(refresh)
        if new_refresh is None:
            return
        self._logout(new_refresh)

    def _refresh_cookie(self, cookies: dict[str, str]) -> tuple[str, str] | None:
        for name, value in cookies.items():
            if "refresh_cookie" in self.given and name != self.settings.refresh_cookie:
                continue
            try:
                claims = jwt.decode(value, options={"verify_signature": False})
            except jwt.PyJWTError:
                continue
            if "refresh" in claims.values():
                return name, value
        return None

    def _claims(self, access: str, refresh: str) -> bool:
        report, s = self.report, self.settings
        try:
            header = jwt.get_unverified_header(access)
            claims = jwt.decode(access, options={"verify_signature": False})
            refresh_claims = jwt.decode(refresh, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            self.fail(f"the server's tokens are not JWTs ({type(exc).__name__})")
            return False
        report.algorithm = str(header.get("alg"))
        if "algorithm" in self.given and report.algorithm != s.algorithm:
            self.fail(f"tokens are signed with {report.algorithm}, the config says {s.algorithm}")
        type_claim = _pick(s, self.given, "token_type_claim", claims, lambda v: v in _TOKEN_TYPES)
        jti_claim = _pick(
            s,
            self.given,
            "jti_claim",
            {k: v for k, v in claims.items() if k != type_claim},
            lambda v: isinstance(v, str) and bool(_UUID_HEX.match(v)),
        )
        rest = {
            k: v
            for k, v in claims.items()
            if k not in _STANDARD_CLAIMS and k not in {type_claim, jti_claim}
        }
        user_claim = _pick(
            s, self.given, "user_id_claim", rest, lambda v: isinstance(v, str | int), "user_id"
        )
        if type_claim is None or jti_claim is None:
            self.fail("cannot tell the token type and jti claims apart; set them in the config")
            return False
        report.token_type_claim, report.jti_claim = type_claim, jti_claim
        report.user_id_claim = user_claim or s.user_id_claim
        if user_claim is not None:
            report.user_id_type = type(claims[user_claim]).__name__
        exp, iat = claims.get("exp"), claims.get("iat")
        if isinstance(exp, int | float) and isinstance(iat, int | float):
            report.access_lifetime_s = float(exp - iat)
        end = refresh_claims.get("refresh_exp" if report.dialect == "sliding" else "exp")
        if isinstance(end, int | float) and isinstance(refresh_claims.get("iat"), int | float):
            report.refresh_lifetime_s = float(end - refresh_claims["iat"])
        # Now decode the way the kiosk will, with the configured key if there is one.
        self.settings = settings = self._discovered_settings()
        access_type = "sliding" if report.dialect == "sliding" else "access"
        refresh_type = "sliding" if report.dialect == "sliding" else "refresh"
        try:
            decode_token(access, settings, expected_type=access_type)
            decode_token(refresh, settings, expected_type=refresh_type)
        except TokenValidationError as exc:
            report.signature_verified = False if settings.verify_key else None
            self.fail(f"SECURITY: the server's token was refused: {exc}")
            return False
        if settings.verify_key:
            report.signature_verified = True
        elif report.algorithm.startswith(("RS", "ES", "PS")):
            self.warn(
                f"tokens are signed with {report.algorithm}: set verify_key to the server's "
                "public key (and issuer/audience) so the kiosk verifies them"
            )
        return True

    def _discovered_settings(self) -> ServerSettings:
        r = self.report
        values: dict[str, Any] = {
            "dialect": r.dialect,
            "username_field": r.username_field,
            "auth_header_type": r.auth_header_type,
            "user_id_claim": r.user_id_claim,
            "token_type_claim": r.token_type_claim,
            "jti_claim": r.jti_claim,
            "refresh_cookie": r.refresh_cookie,
            **{k: getattr(r, k) for k in _PATH_KEYS},
        }
        if r.algorithm and r.algorithm != "none":
            values["algorithm"] = r.algorithm
        found_paths = r.obtain_path is not None and r.refresh_path is not None
        clean = {
            k: v for k, v in values.items() if v is not None or (found_paths and k in _PATH_KEYS)
        }
        return replace(self.settings, **clean)

    def _skew(self, answer: _Answer) -> None:
        date = answer.headers.get("date")
        if not date:
            self.warn("the server sends no Date header: the kiosk cannot correct clock skew")
            return
        try:
            server_time = parsedate_to_datetime(date).timestamp()
        except (TypeError, ValueError):
            self.warn(f"the server's Date header is not a date ({date[:40]!r})")
            return
        # Date has 1 s resolution and is stamped somewhere in the round trip.
        skew = server_time + 0.5 - (answer.sent_at + answer.received_at) / 2
        self.report.clock_skew_s = round(skew, 1)
        if abs(skew) > 60:
            self.warn(f"the server's clock is {skew:+.0f} s from this machine's")

    def _api_call(self, access: str) -> None:
        assert self.api_path is not None
        header = f"{self.report.auth_header_type} {access}"
        answer = self._send("GET", self.api_path, headers={"Authorization": header})
        if answer.status != 200:
            self.fail(
                f"GET {self.api_path} with the new access token answered HTTP {answer.status}: "
                f"{_detail(answer.body)} (check auth_header_type)"
            )

    def _verify(self, access: str) -> None:
        report = self.report
        if report.verify_path is None:
            return
        answer = self._post(report.verify_path, {"token": access})
        if answer.status in {404, 405}:
            if "verify_path" in self.given:
                self.warn(f"verify_path {report.verify_path} does not exist on the server")
            report.verify_path = None
        elif answer.status != 200:
            self.warn(f"the verify endpoint refused a fresh access token (HTTP {answer.status})")

    def _refresh_body(self, token: str) -> tuple[dict[str, Any], str | None]:
        dialect = self.report.dialect
        if dialect == "sliding":
            return {"token": token}, None
        if dialect == "cookie":
            return {}, f"{self.report.refresh_cookie}={token}"
        return {"refresh": token}, None

    def _refresh_with(self, token: str) -> _Answer:
        assert self.report.refresh_path is not None
        body, cookie = self._refresh_body(token)
        return self._post(self.report.refresh_path, body, cookie)

    def _new_refresh(self, answer: _Answer) -> str | None:
        body = answer.body if isinstance(answer.body, dict) else {}
        if self.report.dialect == "sliding":
            return body.get("token") if isinstance(body.get("token"), str) else None
        if self.report.dialect == "cookie":
            found = self._refresh_cookie(answer.cookies)
            if found is not None:
                return found[1]
        value = body.get("refresh")
        return value if isinstance(value, str) and value else None

    def _refresh(self, refresh: str) -> str | None:
        report = self.report
        answer = self._refresh_with(refresh)
        report.latency_ms["refresh"] = round(answer.latency_ms, 1)
        if answer.status != 200 or not isinstance(answer.body, dict):
            self.fail(f"refresh answered HTTP {answer.status}: {_detail(answer.body)}")
            return None
        new = self._new_refresh(answer)
        if report.dialect == "sliding":
            # The same token renewed (same jti); the old one stays valid until its exp.
            report.rotation = False
            report.blacklist_after_rotation = False
            self._live_refresh.append(new or refresh)
            return new or refresh
        report.rotation = new is not None and new != refresh
        if not report.rotation:
            report.blacklist_after_rotation = False
            return refresh
        assert new is not None
        self._live_refresh.append(new)
        # Try the rotated token once: blacklisted (401) is what keeps a stolen one useless.
        again = self._refresh_with(refresh)
        if again.status == 200:
            report.blacklist_after_rotation = False
            extra = self._new_refresh(again)
            if extra:
                self._live_refresh.append(extra)
            self.warn(
                "rotation without the blacklist: a rotated refresh token stays valid, so the "
                "session can split into two live chains; install "
                "rest_framework_simplejwt.token_blacklist (BLACKLIST_AFTER_ROTATION)"
            )
        else:
            report.blacklist_after_rotation = again.status in {401, 403}
        return new

    def _logout_request(self, token: str) -> tuple[str, dict[str, Any], str | None] | None:
        r = self.report
        if r.dialect == "cookie":
            path = r.logout_path or r.blacklist_path
            return None if path is None else (path, {}, f"{r.refresh_cookie}={token}")
        if r.blacklist_path is None:
            return None
        key = "token" if r.dialect == "sliding" else "refresh"
        return r.blacklist_path, {key: token}, None

    def _logout(self, refresh: str) -> None:
        report = self.report
        request = self._logout_request(refresh)
        if request is None:
            report.logout_revokes = False
            self.warn(
                "the server has no endpoint that revokes the session's token: signing out only "
                "forgets it, and it stays valid until it expires"
                + (
                    f" ({report.refresh_lifetime_s / 3600:g} h)"
                    if report.refresh_lifetime_s
                    else ""
                )
            )
            return
        path, body, cookie = request
        answer = self._post(path, body, cookie)
        if answer.status in {404, 405}:
            report.logout_revokes = False
            if report.dialect != "cookie":
                report.blacklist_path = None
            else:
                report.logout_path = None
            self.warn(f"the logout endpoint {path} does not exist: sign-out cannot revoke tokens")
            return
        if not 200 <= answer.status < 300:
            report.logout_revokes = False
            self.warn(f"logout answered HTTP {answer.status}: {_detail(answer.body)}")
            return
        # Did it revoke? Try the logged-out token once.
        probe = self._refresh_with(refresh)
        report.logout_revokes = probe.status in {401, 403}
        if probe.status == 200:
            self.warn(
                "logout answers 200 but does nothing (the token_blacklist app is not installed): "
                "signed-out refresh tokens stay valid until they expire"
            )
        if report.logout_revokes:
            self._live_refresh = [t for t in self._live_refresh if t != refresh]

    def _logout_leftovers(self) -> None:
        """Revoke every other refresh token this check made (best effort)."""
        for token in self._live_refresh:
            request = self._logout_request(token) if self.report.dialect else None
            if request is None or self.report.logout_revokes is False:
                continue
            path, body, cookie = request
            with contextlib.suppress(httpx.HTTPError):
                self._post(path, body, cookie)

    def _config_snippet(self) -> str:
        try:
            settings = self._discovered_settings()
        except KioskError:
            settings = self.settings
        if settings.verify_key and settings.algorithm.startswith("HS"):
            # an HMAC secret: never print it
            settings = replace(settings, verify_key=None)
        note = ""
        if self.report.logout_revokes is False and (
            settings.blacklist_path is not None or settings.logout_path is not None
        ):
            # A logout endpoint that revokes nothing: leave it out, so every sign-out raises
            # the kiosk's logout_not_revoked event instead of pretending to revoke.
            settings = replace(settings, blacklist_path=None, logout_path=None)
            note = "# the server's logout endpoint does not revoke tokens: left out on purpose\n"
        return note + server_toml(settings)


def _pick(
    settings: ServerSettings,
    given: set[str],
    key: str,
    claims: dict[str, Any],
    looks_right: Any,
    preferred: str | None = None,
) -> str | None:
    configured = getattr(settings, key)
    if key in given:
        return configured if configured in claims else None
    for name in (configured, preferred):
        if name is not None and name in claims and looks_right(claims[name]):
            return str(name)
    matches = [k for k, v in claims.items() if looks_right(v)]
    return matches[0] if len(matches) == 1 else None


def _header_type(value: str | None) -> str | None:
    if not value:
        return None
    word = value.strip().split(" ", 1)[0]
    return word or None


def _detail(body: Any) -> str:
    if isinstance(body, dict):
        for key in ("code", "detail", "non_field_errors"):
            if key in body:
                return f"{key}: {str(body[key])[:120]}"
        return f"keys {', '.join(sorted(map(str, body)))[:120]}"
    return "no JSON body"


# ------------------------------------------------------------------ output


def _show(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def render(report: Report) -> str:
    rows = [
        ("server", report.url),
        ("verdict", "the kiosk CAN work with this server" if report.ok else "the kiosk CANNOT"),
        ("looks like", report.family),
        ("dialect", report.dialect),
        ("login", report.obtain_path),
        ("refresh", report.refresh_path),
        ("verify", report.verify_path),
        ("blacklist", report.blacklist_path),
        ("logout", report.logout_path),
        ("username field", report.username_field),
        ("header type", report.auth_header_type),
        ("rotation", report.rotation),
        ("blacklist after rotation", report.blacklist_after_rotation),
        ("logout revokes", report.logout_revokes),
        ("access lifetime (s)", report.access_lifetime_s),
        ("refresh lifetime (s)", report.refresh_lifetime_s),
        ("algorithm", report.algorithm),
        ("signature verified", report.signature_verified),
        (
            "claims (user, type, jti)",
            f"{report.user_id_claim}, {report.token_type_claim}, {report.jti_claim}"
            if report.token_type_claim
            else None,
        ),
        ("user id type", report.user_id_type),
        ("clock skew (s)", report.clock_skew_s),
        (
            "latency login/refresh (ms)",
            f"{_show(report.latency_ms['login'])} / {_show(report.latency_ms['refresh'])}",
        ),
    ]
    width = max(len(name) for name, _ in rows)
    lines = [f"{name:<{width}}  {_show(value)}" for name, value in rows]
    for reason in report.reasons:
        lines.append(f"PROBLEM: {reason}")
    for warning in report.warnings:
        lines.append(f"warning: {warning}")
    lines += ["", "# paste into the kiosk config:", report.config.rstrip()]
    return "\n".join(lines)


# ------------------------------------------------------------------ command


def run(args: argparse.Namespace) -> int:
    """Run the check; 0 the kiosk can work with the server, 1 it cannot, 2 usage error."""
    try:
        if args.password_stdin and not args.username:
            raise UsageError("--password-stdin needs --username")
        if args.username and not args.password_stdin:
            raise UsageError("--username needs --password-stdin (passwords never go in argv)")
        password = None
        if args.password_stdin:
            password = sys.stdin.readline().rstrip("\r\n")
            if not password:
                raise UsageError("--password-stdin: no password on standard input")
        if args.api_path is not None and not args.api_path.startswith("/"):
            raise UsageError("--api-path must start with '/'")
        settings, given = settings_from_args(args, args.url)
    except InsecureTransportError as exc:
        report = Report(url=str(args.url), reasons=[str(exc)])
        print(json.dumps(report.as_dict()) if args.json else f"PROBLEM: {exc}")
        return 1
    except (UsageError, ConfigurationError) as exc:
        print(f"kiosk check-server: {exc}", file=sys.stderr)
        return 2
    report = Checker(
        settings, given, username=args.username, password=password, api_path=args.api_path
    ).run()
    print(json.dumps(report.as_dict(), indent=2) if args.json else render(report))
    return 0 if report.ok else 1


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``check-server`` to the ``kiosk`` command."""
    parser = sub.add_parser(
        "check-server",
        help="probe a simplejwt-compatible server and print the kiosk's [server] config",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    parser.add_argument("url", nargs="?", help="the server's base URL (https://...)")
    parser.add_argument("--username", help="a test account to log in with")
    parser.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    parser.add_argument("--api-path", help="an API endpoint to call with the token (GET)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    add_server_flags(parser)
    parser.set_defaults(func=run)


__all__ = ["Checker", "Report", "register", "render", "run"]
