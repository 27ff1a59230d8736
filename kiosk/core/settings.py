"""What the kiosk knows about the server, and the session policy (profiles).

:class:`ServerSettings` describes a simplejwt-compatible server: where it is, which
wire dialect it speaks, and the simplejwt settings that change what crosses the wire.
Its defaults are simplejwt's own.

:class:`SessionPolicy` is the client's side of a session: the server decides token
lifetimes, the policy decides idle lock, the absolute shift cap, the warning before it,
the refresh lead, backoff and whether the refresh token may be persisted. The four
profiles come from the CareLink configuration guide.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

from kiosk.core.errors import ConfigurationError, InsecureTransportError

Dialect = Literal["pair", "sliding", "cookie"]


def _is_loopback(host: str) -> bool:
    if host in {"localhost", "localhost.localdomain"}:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """A simplejwt-compatible server.

    Attributes:
        base_url: scheme, host and port (and an optional path prefix) of the server.
        dialect: "pair" (access + refresh), "sliding" or "cookie" (dj-rest-auth).
        obtain_path: the login endpoint.
        refresh_path: the refresh endpoint.
        verify_path: the verify endpoint, or None.
        blacklist_path: the endpoint that revokes a refresh token at logout, or None.
        logout_path: a logout endpoint (dj-rest-auth), or None.
        username_field: the name of the user field the obtain endpoint wants.
        auth_header_type: the first of simplejwt's ``AUTH_HEADER_TYPES``.
        user_id_claim: simplejwt's ``USER_ID_CLAIM``.
        token_type_claim: simplejwt's ``TOKEN_TYPE_CLAIM``.
        jti_claim: simplejwt's ``JTI_CLAIM``.
        algorithm: the signing algorithm to require when ``verify_key`` is set.
        verify_key: a key (PEM public key, or the HMAC secret) to verify signatures with.
        issuer: the ``iss`` to require when verifying.
        audience: the ``aud`` to require when verifying.
        ca_bundle: a CA bundle file for the hospital's PKI.
        refresh_cookie: the cookie that carries the refresh token in the "cookie" dialect
            (dj-rest-auth's ``JWT_AUTH_REFRESH_COOKIE``); None takes the cookie whose value
            is a refresh token.
        timeout_s: connect/read timeout for token calls.
        max_body_bytes: the largest token response accepted.
    """

    base_url: str
    dialect: Dialect = "pair"
    obtain_path: str = "/api/token/"
    refresh_path: str = "/api/token/refresh/"
    verify_path: str | None = "/api/token/verify/"
    blacklist_path: str | None = "/api/token/blacklist/"
    logout_path: str | None = None
    username_field: str = "username"
    auth_header_type: str = "Bearer"
    user_id_claim: str = "user_id"
    token_type_claim: str = "token_type"
    jti_claim: str = "jti"
    algorithm: str = "HS256"
    verify_key: str | None = None
    issuer: str | None = None
    audience: str | None = None
    ca_bundle: str | None = None
    refresh_cookie: str | None = None
    timeout_s: float = 10.0
    max_body_bytes: int = 64 * 1024

    def __post_init__(self) -> None:
        try:
            parts = urlsplit(self.base_url)
            _ = parts.port  # a port that is not a number in 0-65535 raises ValueError
        except ValueError:
            # e.g. "https://[::1" (bad IPv6 literal) raised a bare ValueError.
            raise ConfigurationError(
                f"server URL {self.base_url!r} must look like https://host[:port]"
            ) from None
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ConfigurationError(
                f"server URL {self.base_url!r} must look like https://host[:port]"
            )
        if parts.scheme == "http" and not _is_loopback(parts.hostname):
            raise InsecureTransportError(
                f"refusing plain HTTP to {parts.hostname}: tokens would cross the network in "
                "clear text. Use https:// (only loopback may use http://)."
            )
        if self.dialect not in {"pair", "sliding", "cookie"}:
            raise ConfigurationError(f"unknown server dialect {self.dialect!r}")
        for name in ("obtain_path", "refresh_path"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.startswith("/"):
                raise ConfigurationError(f"{name} must be a path starting with '/'")
        for name in ("verify_path", "blacklist_path", "logout_path"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value.startswith("/")):
                raise ConfigurationError(f"{name} must be a path starting with '/' (or unset)")
        if not self.auth_header_type or any(c.isspace() for c in self.auth_header_type):
            raise ConfigurationError("auth_header_type must be one word, e.g. 'Bearer' or 'JWT'")

    def url(self, path: str) -> str:
        """The absolute URL of an endpoint path."""
        return self.base_url.rstrip("/") + "/" + path.lstrip("/")


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    """Exponential backoff with full jitter for transient refresh failures.

    Attributes:
        base_s: the first delay's upper bound.
        factor: growth per attempt.
        cap_s: the largest delay.
    """

    base_s: float = 1.0
    factor: float = 2.0
    cap_s: float = 60.0


@dataclass(frozen=True, slots=True)
class SessionPolicy:
    """The client's side of a session (a CareLink profile).

    Attributes:
        name: the profile's name.
        idle_lock_s: lock the workstation after this much inactivity.
        absolute_cap_s: end the session this long after login, however active it is.
        cap_warning_s: warn this long before the cap.
        persist_refresh_token: whether the refresh token may go to the OS keyring.
        refresh_lead_fraction: refresh this fraction of the access lifetime before ``exp``.
        refresh_lead_min_s: but at least this many seconds before (1 s ``exp`` resolution,
            one round trip, some skew).
        refresh_jitter_fraction: plus up to this fraction of the lifetime, at random, so
            sibling windows and processes do not all fire at the same instant.
        gate_timeout_s: how long a request may wait for a valid access token.
        backoff: how transient refresh failures are retried.
        clock_skew_warning_s: a server clock this far from ours raises a security event.
    """

    name: str = "general-ward"
    idle_lock_s: float = 5 * 60
    absolute_cap_s: float = 12 * 3600
    cap_warning_s: float = 15 * 60
    persist_refresh_token: bool = True
    refresh_lead_fraction: float = 0.1
    refresh_lead_min_s: float = 2.0
    refresh_jitter_fraction: float = 0.05
    gate_timeout_s: float = 30.0
    backoff: BackoffPolicy = field(default_factory=BackoffPolicy)
    clock_skew_warning_s: float = 60.0

    def __post_init__(self) -> None:
        if self.absolute_cap_s <= 0 or self.idle_lock_s <= 0 or self.gate_timeout_s <= 0:
            raise ConfigurationError("policy durations must be positive")
        if not 0 <= self.refresh_lead_fraction < 1 or not 0 <= self.refresh_jitter_fraction < 1:
            raise ConfigurationError("refresh lead and jitter are fractions of the lifetime")


#: The CareLink configuration guide's profiles. Access lifetimes are the server's
#: business; these carry what the client decides.
PROFILES: dict[str, SessionPolicy] = {
    "icu": SessionPolicy(
        name="icu",
        idle_lock_s=2 * 60,
        absolute_cap_s=8 * 3600,
        cap_warning_s=10 * 60,
        persist_refresh_token=False,
    ),
    "general-ward": SessionPolicy(),
    "outpatient": SessionPolicy(name="outpatient", idle_lock_s=10 * 60, absolute_cap_s=16 * 3600),
    "research": SessionPolicy(
        name="research", idle_lock_s=15 * 60, absolute_cap_s=24 * 3600, cap_warning_s=30 * 60
    ),
}


def profile(name: str) -> SessionPolicy:
    """The policy of a named profile.

    Raises:
        ConfigurationError: no such profile.
    """
    try:
        return PROFILES[name]
    except KeyError:
        known = ", ".join(sorted(PROFILES))
        raise ConfigurationError(f"unknown profile {name!r} (known: {known})") from None
