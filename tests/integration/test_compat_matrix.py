"""The compatibility matrix: every server variant, detected by ``kiosk check-server`` and used.

For each variant (stock simplejwt with and without rotation/blacklist, sliding tokens, djoser,
dj-rest-auth cookie mode, a custom user model with email login plus a JWT header type, renamed
claims and SessionAuthentication first, RS256 and ES256 with key pairs made here) the real reference
server runs under gunicorn (shared per variant by the plugin's factory), ``kiosk check-server
--json`` probes it in a subprocess exactly as IT would, and a short session through
``TokenManager`` - login, refresh, API call, logout - runs with the ``[server]`` TOML it printed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from kiosk.core import (
    InvalidCredentialsError,
    MemoryVault,
    NeedsReauthenticationError,
    SecurityEvent,
    State,
    TokenManager,
)
from kiosk.core.config import load_config
from kiosk.testing.server.runner import ReferenceServer

pytestmark = pytest.mark.server


def _pem_pair(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> tuple[str, str]:
    """The private key (PKCS#8) and its public key (SubjectPublicKeyInfo), as PEM text."""
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


PRIVATE_PEM, PUBLIC_PEM = _pem_pair(rsa.generate_private_key(public_exponent=65537, key_size=2048))
EC_PRIVATE_PEM, EC_PUBLIC_PEM = _pem_pair(ec.generate_private_key(ec.SECP256R1()))
ISSUER = "https://ehr.ward.example"
AUDIENCE = "ward-kiosk"


@dataclass(frozen=True)
class Variant:
    """A server configuration, how to log in to it, and what check-server must find."""

    server: dict[str, Any]
    expect: dict[str, Any]
    email_login: bool = False
    flags: tuple[str, ...] = ()
    warns: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)


SIMPLEJWT_PATHS = {
    "obtain_path": "/api/token/",
    "refresh_path": "/api/token/refresh/",
    "verify_path": "/api/token/verify/",
}
STOCK = {
    "dialect": "pair",
    **SIMPLEJWT_PATHS,
    "blacklist_path": "/api/token/blacklist/",
    "username_field": "username",
    "auth_header_type": "Bearer",
    "user_id_claim": "user_id",
    "token_type_claim": "token_type",
    "algorithm": "HS256",
    "access_lifetime_s": 900.0,
    "refresh_lifetime_s": 43200.0,
}

#: Stock simplejwt as the CareLink guide runs it: rotation, blacklist after rotation, logout.
ROTATING = {**STOCK, "rotation": True, "blacklist_after_rotation": True, "logout_revokes": True}

VARIANTS: dict[str, Variant] = {
    "simplejwt-rotate-blacklist": Variant(
        server={},
        expect=ROTATING,
    ),
    "simplejwt-no-rotation": Variant(
        server={"rotate": False, "access_s": 120, "refresh_s": 3600},
        expect={
            **STOCK,
            "rotation": False,
            "blacklist_after_rotation": False,
            "logout_revokes": True,
            "access_lifetime_s": 120.0,
            "refresh_lifetime_s": 3600.0,
        },
    ),
    "simplejwt-rotation-without-blacklist-app": Variant(
        server={"blacklist": False},
        expect={
            **STOCK,
            "rotation": True,
            "blacklist_after_rotation": False,
            "logout_revokes": False,
        },
        warns=("rotation without the blacklist", "logout answers 200 but does nothing"),
    ),
    "simplejwt-sliding": Variant(
        server={"extra_env": {"KIOSK_SERVER_DIALECT": "sliding"}, "access_s": 300},
        expect={
            "dialect": "sliding",
            **SIMPLEJWT_PATHS,
            "blacklist_path": None,
            "rotation": False,
            "logout_revokes": False,
            "access_lifetime_s": 300.0,
            "refresh_lifetime_s": 43200.0,
        },
        warns=("no endpoint that revokes",),
    ),
    "djoser": Variant(
        # djoser's docs set AUTH_HEADER_TYPES = ("JWT",)
        server={
            "extra_env": {
                "KIOSK_SERVER_DIALECT": "djoser",
                "KIOSK_SERVER_AUTH_HEADER_TYPES": "JWT",
            }
        },
        expect={
            "dialect": "pair",
            "obtain_path": "/auth/jwt/create/",
            "refresh_path": "/auth/jwt/refresh/",
            "verify_path": "/auth/jwt/verify/",
            "blacklist_path": None,
            "auth_header_type": "JWT",
            "rotation": True,
            "blacklist_after_rotation": True,
            "logout_revokes": False,
        },
        warns=("no endpoint that revokes",),
    ),
    "dj-rest-auth-cookie": Variant(
        server={"extra_env": {"KIOSK_SERVER_DIALECT": "cookie"}},
        expect={
            "dialect": "cookie",
            "obtain_path": "/dj-rest-auth/login/",
            "refresh_path": "/dj-rest-auth/token/refresh/",
            "verify_path": "/dj-rest-auth/token/verify/",
            "blacklist_path": None,
            "logout_path": "/dj-rest-auth/logout/",
            "refresh_cookie": "kiosk-refresh",
            "rotation": True,
            "blacklist_after_rotation": True,
            "logout_revokes": True,
        },
    ),
    "email-user-jwt-header-custom-claims-session-auth-first": Variant(
        server={
            "extra_env": {
                "KIOSK_SERVER_USERNAME_FIELD": "email",
                "KIOSK_SERVER_AUTH_HEADER_TYPES": "JWT,Bearer",
                "KIOSK_SERVER_USER_ID_CLAIM": "uid",
                "KIOSK_SERVER_TOKEN_TYPE_CLAIM": "typ",
                "KIOSK_SERVER_JTI_CLAIM": "jid",
                "KIOSK_SERVER_SESSION_AUTH_FIRST": "1",
                "KIOSK_SERVER_LEEWAY_S": "5",
            }
        },
        email_login=True,
        expect={
            "username_field": "email",
            "auth_header_type": "JWT",
            "user_id_claim": "uid",
            "token_type_claim": "typ",
            "jti_claim": "jid",
            "session_auth_first": True,
            "logout_revokes": True,
        },
        warns=("403 (not 401)",),
    ),
    "simplejwt-translated-detail": Variant(
        # LocaleMiddleware + LANGUAGE_CODE "de": every ``detail`` arrives in German.
        server={"extra_env": {"KIOSK_SERVER_LANGUAGE": "de"}},
        expect=ROTATING,
    ),
    "simplejwt-5.3": Variant(
        # The release many hospitals still run: the same wire, but ``user_id`` an int.
        server={},
        expect={**ROTATING, "user_id_type": "int"},
        extra={"simplejwt": "5.3.1"},
    ),
    "rs256-issuer-audience": Variant(
        server={
            "extra_env": {
                "KIOSK_SERVER_ALGORITHM": "RS256",
                "KIOSK_SERVER_SIGNING_KEY": PRIVATE_PEM,
                "KIOSK_SERVER_VERIFYING_KEY": PUBLIC_PEM,
                "KIOSK_SERVER_ISSUER": ISSUER,
                "KIOSK_SERVER_AUDIENCE": AUDIENCE,
            }
        },
        flags=("--algorithm", "RS256", "--issuer", ISSUER, "--audience", AUDIENCE),
        expect={"algorithm": "RS256", "signature_verified": True, "logout_revokes": True},
        extra={"verify_key": PUBLIC_PEM},
    ),
    "es256": Variant(
        # ECDSA P-256: simplejwt signs through PyJWT's cryptography backend, as for RS256.
        server={
            "extra_env": {
                "KIOSK_SERVER_ALGORITHM": "ES256",
                "KIOSK_SERVER_SIGNING_KEY": EC_PRIVATE_PEM,
                "KIOSK_SERVER_VERIFYING_KEY": EC_PUBLIC_PEM,
            }
        },
        flags=("--algorithm", "ES256"),
        expect={"algorithm": "ES256", "signature_verified": True, "logout_revokes": True},
        extra={"verify_key": EC_PUBLIC_PEM},
    ),
}


def login_name(variant: Variant, user: str = "alice") -> str:
    return f"{user}@ward.example" if variant.email_login else user


def run_check_server(
    server: ReferenceServer, *args: str, password: str | None = None
) -> tuple[int, str, str]:
    stdin = None if password is None else password + "\n"
    result = subprocess.run(
        [sys.executable, "-m", "kiosk.cli", "check-server", server.base_url, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return result.returncode, result.stdout, result.stderr


@pytest.fixture(scope="module")
def key_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("keys")


@pytest.fixture(scope="module")
def key_file(key_dir: Path) -> Path:
    path = key_dir / "jwt-public.pem"
    path.write_text(PUBLIC_PEM)
    return path


CheckResult = tuple[ReferenceServer, dict[str, Any]]


def other_simplejwt(version: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Another release of djangorestframework-simplejwt, for the server's ``PYTHONPATH`` only.

    Installed from PyPI without dependencies (it is pure Python and runs on the Django, DRF and
    PyJWT the project has); the server imports it before the site-packages one. A failed
    install fails the test: the row must not be skipped silently.
    """
    target = tmp_path_factory.mktemp(f"simplejwt-{version}")
    subprocess.run(
        [
            sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
            "--no-deps", "--target", str(target), f"djangorestframework-simplejwt=={version}",
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )  # fmt: skip
    return target


@pytest.fixture(scope="module")
def checked(
    simplejwt_server_factory: Any, key_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str], CheckResult]:
    """``checked(name)``: the variant's server and check-server's JSON (once per variant)."""
    cache: dict[str, CheckResult] = {}

    def get(name: str) -> CheckResult:
        if name not in cache:
            variant = VARIANTS[name]
            server_kwargs = dict(variant.server)
            if "simplejwt" in variant.extra:
                release = other_simplejwt(variant.extra["simplejwt"], tmp_path_factory)
                server_kwargs["extra_env"] = {
                    **server_kwargs.get("extra_env", {}),
                    "PYTHONPATH": str(release),
                }
            server = simplejwt_server_factory(**server_kwargs)
            flags = list(variant.flags)
            if variant.extra.get("verify_key"):
                key = key_dir / f"{name}-public.pem"
                key.write_text(variant.extra["verify_key"])
                flags += ["--verify-key", str(key)]
            code, out, err = run_check_server(
                server,
                "--username",
                login_name(variant),
                "--password-stdin",
                "--api-path",
                "/api/me/",
                "--json",
                *flags,
                password=server.users["alice"],
            )
            assert code == 0, (out, err)
            cache[name] = (server, json.loads(out))
        return cache[name]

    return get


@pytest.mark.parametrize("name", list(VARIANTS))
def test_check_server_detects_the_variant(name: str, checked: Callable[[str], CheckResult]):
    _, report = checked(name)
    variant = VARIANTS[name]
    assert report["ok"] is True
    assert report["reasons"] == []
    found = {key: report[key] for key in variant.expect}
    assert found == variant.expect
    for needle in variant.warns:
        assert any(needle in warning for warning in report["warnings"]), report["warnings"]
    # Every key the issue asks for is in the object.
    for key in [
        "ok",
        "dialect",
        "obtain_path",
        "refresh_path",
        "verify_path",
        "blacklist_path",
        "username_field",
        "auth_header_type",
        "rotation",
        "blacklist_after_rotation",
        "logout_revokes",
        "access_lifetime_s",
        "refresh_lifetime_s",
        "algorithm",
        "user_id_claim",
        "token_type_claim",
        "clock_skew_s",
        "latency_ms",
        "warnings",
    ]:
        assert key in report
    assert abs(report["clock_skew_s"]) < 2.0  # same machine
    assert report["latency_ms"]["login"] > 0
    assert report["latency_ms"]["refresh"] > 0
    # simplejwt 5.5 sends user_id as a string, 5.3 as an int (its row expects that).
    assert report["user_id_type"] == variant.expect.get("user_id_type", "str")


@pytest.mark.parametrize("name", list(VARIANTS))
async def test_a_session_works_with_the_printed_config(
    name: str, checked: Callable[[str], CheckResult], tmp_path: Path
):
    server, report = checked(name)
    variant = VARIANTS[name]
    config = tmp_path / "kiosk.toml"
    config.write_text(report["config"])
    settings = load_config(config)
    assert settings.dialect == report["dialect"]
    events: list[SecurityEvent] = []
    vault = MemoryVault()
    async with TokenManager(settings, vault=vault) as tm:
        tm.subscribe(events.append)
        await tm.login(login_name(variant), server.users["alice"])
        first_refresh = tm._refresh
        assert first_refresh is not None
        await tm.refresh()
        assert tm.generation == 2
        async with httpx.AsyncClient(base_url=server.base_url, auth=tm.auth) as api:
            me = await api.get("/api/me/")
        assert me.status_code == 200
        assert me.json()["username"] == "alice"
        last_refresh = tm._refresh
        stored = vault.load()
        assert stored is not None
        if settings.dialect == "cookie":
            # held in memory only: the vault keeps a marker, never the token
            assert stored.refresh == ""
        else:
            assert stored.refresh == last_refresh.reveal()
        await tm.logout()
        assert tm.state is State.LOGGED_OUT
        assert vault.load() is None
        assert len(tm._http.cookies) == 0  # the cookie jar is wiped too
    kinds = [e.kind.value for e in events]
    assert "login_failed" not in kinds
    assert "token_validation_failed" not in kinds
    # Logout revoked the refresh token exactly where check-server said it would.
    assert ("logout_not_revoked" not in kinds) is report["logout_revokes"]
    assert (
        await _still_refreshes(server, settings, last_refresh.reveal())
        is not report["logout_revokes"]
    )


async def _still_refreshes(server: ReferenceServer, settings: Any, token: str) -> bool:
    if settings.dialect == "sliding":
        body, headers = {"token": token}, {}
    elif settings.dialect == "cookie":
        body, headers = {}, {"Cookie": f"{settings.refresh_cookie}={token}"}
    else:
        body, headers = {"refresh": token}, {}
    async with httpx.AsyncClient() as client:
        response = await client.post(
            settings.url(settings.refresh_path), json=body, headers=headers
        )
    return response.status_code == 200


def _other_key(algorithm: str) -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey:
    if algorithm == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.mark.parametrize(
    ("name", "algorithm"), [("rs256-issuer-audience", "RS256"), ("es256", "ES256")]
)
async def test_a_token_that_fails_verification_is_a_security_event(
    name: str, algorithm: str, checked: Callable[[str], CheckResult], tmp_path: Path
):
    server, report = checked(name)
    _, wrong_pem = _pem_pair(_other_key(algorithm))  # the right algorithm, another key
    config = tmp_path / "kiosk.toml"
    config.write_text(report["config"])
    settings = load_config(config, verify_key=wrong_pem)
    events: list[SecurityEvent] = []
    async with TokenManager(settings, vault=MemoryVault()) as tm:
        tm.subscribe(events.append)
        from kiosk.core import TokenValidationError

        with pytest.raises(TokenValidationError, match="verification"):
            await tm.login("alice", server.users["alice"])
        assert tm.state is State.LOGGED_OUT
    bad = [e for e in events if e.kind.value == "token_validation_failed"]
    assert len(bad) == 1
    assert bad[0].severity.name == "HIGH"


def test_check_server_refuses_tokens_that_fail_verification(
    checked: Callable[[str], CheckResult], tmp_path: Path
):
    server, _ = checked("rs256-issuer-audience")
    key = tmp_path / "wrong.pem"
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key.write_bytes(
        other.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    code, out, _ = run_check_server(
        server,
        *("--username", "alice", "--password-stdin", "--json"),
        *("--algorithm", "RS256", "--verify-key", str(key), "--audience", AUDIENCE),
        password=server.users["alice"],
    )
    report = json.loads(out)
    assert code == 1
    assert report["ok"] is False
    assert report["signature_verified"] is False
    assert any("SECURITY" in reason for reason in report["reasons"])


def test_check_server_warns_about_an_unverified_rs256_server(
    checked: Callable[[str], CheckResult],
):
    server, _ = checked("rs256-issuer-audience")
    code, out, _ = run_check_server(
        server, "--username", "alice", "--password-stdin", "--json", password="alice-secret"
    )
    report = json.loads(out)
    assert code == 0
    assert report["algorithm"] == "RS256"
    assert report["signature_verified"] is None
    assert any("set verify_key" in w for w in report["warnings"])


# 3 s, not 2 s, access tokens: ``exp`` is truncated to the second, so a 2 s token can arrive
# with barely more than the client's 1 s expiry margin on a loaded CI machine (failed once with
# 0.5 s left at login).
@pytest.mark.simplejwt_server(
    access_s=3, refresh_s=8, extra_env={"KIOSK_SERVER_DIALECT": "sliding"}
)
async def test_sliding_session_ends_at_the_refresh_exp_hard_cap(simplejwt_server):
    """Sliding tokens slide only until refresh_exp: the refresh after it is definitive."""
    settings = load_config_text(simplejwt_server.base_url, 'dialect = "sliding"\n')
    events: list[SecurityEvent] = []
    async with TokenManager(settings, vault=MemoryVault()) as tm:
        tm.subscribe(events.append)
        await tm.login("alice", "alice-secret")
        cap = tm._refresh.claims.refresh_exp
        assert cap is not None
        import asyncio

        while tm.state is not State.NEEDS_REAUTH:
            await asyncio.sleep(0.2)
            # Generous for a loaded CI machine; the property is checked on the events below.
            assert tm.clock.time() < cap + 30, "the session outlived refresh_exp"
        refreshes = [e for e in events if e.kind.value == "refresh_succeeded"]
    assert len(refreshes) >= 2  # it did slide (3 s tokens) before the cap
    # ... and never past it: no refresh succeeded after refresh_exp (1 s: exp's resolution).
    assert all(e.time <= cap + 1 for e in refreshes), [e.time - cap for e in refreshes]
    rejected = [e for e in events if e.kind.value == "refresh_rejected"]
    assert rejected
    assert rejected[-1].data["reason"] in {"token_not_valid", "refresh_expired"}
    assert tm.clock.time() >= cap - 2.5


def load_config_text(url: str, body: str):
    import tomllib

    from kiosk.core.config import server_settings

    return server_settings({"url": url, **tomllib.loads(body)})


async def test_a_translated_detail_changes_nothing_the_client_decides(
    checked: Callable[[str], CheckResult], tmp_path: Path
):
    # The German server's answers carry the same codes with other words: the client decides
    # on ``code`` (DESIGN §4), so a wrong password, a blacklisted refresh token and a rejected
    # access token are still recognised.
    server, report = checked("simplejwt-translated-detail")
    config = tmp_path / "kiosk.toml"
    config.write_text(report["config"])
    settings = load_config(config)
    async with httpx.AsyncClient(base_url=server.base_url) as raw:
        wrong = await raw.post("/api/token/", json={"username": "alice", "password": "nope"})
        login = await raw.post(
            "/api/token/", json={"username": "alice", "password": server.users["alice"]}
        )
        old_refresh = login.json()["refresh"]
        rotated = await raw.post("/api/token/refresh/", json={"refresh": old_refresh})
        assert rotated.status_code == 200
        reused = await raw.post("/api/token/refresh/", json={"refresh": old_refresh})
    assert wrong.status_code == 401
    assert "No active account" not in wrong.json()["detail"]  # really translated
    assert reused.json()["code"] == "token_not_valid"
    assert reused.json()["detail"] != "Token is blacklisted"

    events: list[SecurityEvent] = []
    async with TokenManager(settings, vault=MemoryVault()) as tm:
        tm.subscribe(events.append)
        with pytest.raises(InvalidCredentialsError):
            await tm.login("alice", "nope")
        await tm.login("alice", server.users["alice"])
        # Someone else redeems the session's refresh token first: the rotation blacklists it.
        async with httpx.AsyncClient(base_url=server.base_url) as raw:
            stolen = await raw.post("/api/token/refresh/", json={"refresh": tm._refresh.reveal()})
            assert stolen.status_code == 200
            await raw.post("/api/token/blacklist/", json={"refresh": stolen.json()["refresh"]})
        with pytest.raises(NeedsReauthenticationError) as caught:
            await tm.refresh()
        assert tm.state is State.NEEDS_REAUTH
    assert caught.value.reason == "token_not_valid"
    assert "login_failed" in [e.kind.value for e in events]
