"""Server settings, the session policy and the CareLink profiles (kiosk.core.settings)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from kiosk.core.errors import ConfigurationError, InsecureTransportError, KioskError
from kiosk.core.settings import PROFILES, BackoffPolicy, ServerSettings, SessionPolicy, profile

# ------------------------------------------------------------------ ServerSettings


@pytest.mark.parametrize(
    "url",
    [
        "https://api.ward.example",
        "https://api.ward.example:8443",
        "https://10.0.0.5/prefix/",
        "http://127.0.0.1:8000",
        "http://127.8.9.10",  # all of 127/8 is loopback
        "http://localhost:8000",
        "http://LOCALHOST:8000",
        "http://localhost.localdomain",
        "http://[::1]:8000",
    ],
)
def test_https_anywhere_and_http_on_loopback_are_accepted(url: str) -> None:
    assert ServerSettings(url).base_url == url


@pytest.mark.parametrize(
    "url",
    [
        "http://api.ward.example",
        "http://10.0.0.5:8000",
        "http://192.168.1.20",
        "http://0.0.0.0:8000",
        "http://[::]:8000",
        "http://[2001:db8::1]",
        "http://localhost.evil.example",
        "http://127.0.0.1.nip.io",
        "http://localhost@evil.example",
        "http://localhost:8000@evil.example/",
    ],
)
def test_plain_http_to_anything_else_is_refused(url: str) -> None:
    with pytest.raises(InsecureTransportError, match="refusing plain HTTP"):
        ServerSettings(url)


def test_insecure_transport_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        ServerSettings("http://api.ward.example")
    assert issubclass(InsecureTransportError, KioskError)


@pytest.mark.parametrize(
    "url",
    [
        "",
        "api.ward.example",
        "ftp://api.ward.example",
        "file:///etc/passwd",
        "https://",
        "https:///path-only",
        "//api.ward.example",
        "https://[::1",  # broken IPv6 literal: urlsplit raises ValueError
        "https://api.ward.example:99999",  # port out of range
        "https://api.ward.example:http",
    ],
)
def test_malformed_urls_are_configuration_errors(url: str) -> None:
    with pytest.raises(ConfigurationError, match="must look like https://host"):
        ServerSettings(url)


def test_unknown_dialect_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="dialect"):
        ServerSettings("https://api.ward.example", dialect="oauth2")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("base", "path", "expected"),
    [
        ("https://h", "/api/token/", "https://h/api/token/"),
        ("https://h/", "/api/token/", "https://h/api/token/"),
        ("https://h", "api/token/", "https://h/api/token/"),
        (
            "https://h:8443/carelink/",
            "/api/token/refresh/",
            "https://h:8443/carelink/api/token/refresh/",
        ),
        ("https://h/carelink", "auth/jwt/create/", "https://h/carelink/auth/jwt/create/"),
    ],
)
def test_url_joins_base_and_path(base: str, path: str, expected: str) -> None:
    assert ServerSettings(base).url(path) == expected


def test_defaults_are_simplejwts() -> None:
    server = ServerSettings("https://h")
    assert server.dialect == "pair"
    assert (server.obtain_path, server.refresh_path) == ("/api/token/", "/api/token/refresh/")
    assert server.verify_path == "/api/token/verify/"
    assert server.blacklist_path == "/api/token/blacklist/"
    assert server.username_field == "username"
    assert server.auth_header_type == "Bearer"
    assert (server.user_id_claim, server.token_type_claim, server.jti_claim) == (
        "user_id",
        "token_type",
        "jti",
    )
    assert server.algorithm == "HS256"
    assert server.verify_key is None


def test_server_settings_are_immutable() -> None:
    server = ServerSettings("https://h")
    with pytest.raises(dataclasses.FrozenInstanceError):
        server.base_url = "http://evil.example"  # type: ignore[misc]


def test_replace_revalidates() -> None:
    server = ServerSettings("https://api.ward.example")
    with pytest.raises(InsecureTransportError):
        dataclasses.replace(server, base_url="http://api.ward.example")


# ------------------------------------------------------------------ profiles


def test_the_four_carelink_profiles() -> None:
    assert set(PROFILES) == {"icu", "general-ward", "outpatient", "research"}
    for name, policy in PROFILES.items():
        assert policy.name == name
        assert profile(name) is policy


@pytest.mark.parametrize(
    ("name", "cap_hours"),
    [("icu", 8), ("general-ward", 12), ("outpatient", 16), ("research", 24)],
)
def test_profile_shift_caps(name: str, cap_hours: int) -> None:
    assert profile(name).absolute_cap_s == cap_hours * 3600


def test_general_ward_is_the_default_policy() -> None:
    assert SessionPolicy() == profile("general-ward")


def test_icu_keeps_nothing_on_disk_and_locks_soonest() -> None:
    icu = profile("icu")
    assert icu.persist_refresh_token is False
    assert all(icu.idle_lock_s <= p.idle_lock_s for p in PROFILES.values())
    assert all(p.persist_refresh_token for n, p in PROFILES.items() if n != "icu")


def test_warnings_come_before_the_cap() -> None:
    for policy in PROFILES.values():
        assert 0 < policy.cap_warning_s < policy.absolute_cap_s


@pytest.mark.parametrize("name", ["unknown", "", "ICU", "general_ward"])
def test_unknown_profile(name: str) -> None:
    with pytest.raises(ConfigurationError, match="unknown profile") as info:
        profile(name)
    assert "general-ward, icu, outpatient, research" in str(info.value)
    assert info.value.__cause__ is None


# ------------------------------------------------------------------ SessionPolicy


@pytest.mark.parametrize(
    "kwargs",
    [
        {"absolute_cap_s": 0},
        {"absolute_cap_s": -1},
        {"idle_lock_s": 0},
        {"idle_lock_s": -5},
        {"gate_timeout_s": 0},
        {"refresh_lead_fraction": 1.0},
        {"refresh_lead_fraction": -0.1},
        {"refresh_jitter_fraction": 1.5},
        {"refresh_jitter_fraction": -0.01},
    ],
)
def test_invalid_policies_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        SessionPolicy(**kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"refresh_lead_fraction": 0.0, "refresh_jitter_fraction": 0.0},
        {"refresh_lead_fraction": 0.99},
        {"absolute_cap_s": 1, "idle_lock_s": 1, "gate_timeout_s": 0.1},
    ],
)
def test_edge_policies_are_accepted(kwargs: dict[str, Any]) -> None:
    policy = SessionPolicy(**kwargs)
    for name, value in kwargs.items():
        assert getattr(policy, name) == value


def test_policies_do_not_share_their_backoff() -> None:
    assert SessionPolicy().backoff == BackoffPolicy(base_s=1.0, factor=2.0, cap_s=60.0)
    assert SessionPolicy(backoff=BackoffPolicy(cap_s=5)).backoff.cap_s == 5
    assert PROFILES["icu"].backoff.cap_s == 60.0


def test_policies_are_immutable() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        profile("icu").persist_refresh_token = True  # type: ignore[misc]
