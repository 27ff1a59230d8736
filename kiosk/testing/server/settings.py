"""Django settings of the reference server, read from ``KIOSK_SERVER_*`` environment variables.

Defaults follow the CareLink guide's general-ward profile (access 15 min, refresh 12 h, rotation and
blacklisting on, HS256). Variables (all optional, but set ``KIOSK_SERVER_DB`` in practice):

- ``KIOSK_SERVER_ACCESS_S`` / ``KIOSK_SERVER_REFRESH_S``: token lifetimes in (float) seconds.
- ``KIOSK_SERVER_ROTATE``: ``"1"``/``"0"``, ``ROTATE_REFRESH_TOKENS``.
- ``KIOSK_SERVER_BLACKLIST``: ``"1"``/``"0"``; ``0`` leaves the token_blacklist app out (and
  ``BLACKLIST_AFTER_ROTATION`` off), like a simplejwt deployment without it.
- ``KIOSK_SERVER_DB``: path of the SQLite file.
- ``KIOSK_SERVER_FAST_HASHER``: ``"1"`` (default) puts MD5 first so logins cost ~1 ms, not ~400 ms.
- ``KIOSK_SERVER_SECRET``: ``SECRET_KEY`` (and so the HS256 signing key).
- ``KIOSK_SERVER_TEST_ENDPOINTS``: ``"1"`` enables the request counters, ``/_test/stats/`` and
  ``/_test/set-password/``.
- ``KIOSK_SERVER_CHECK_REVOKE``: ``"1"`` sets ``CHECK_REVOKE_TOKEN`` (a password change revokes
  every token: API calls answer 401 ``password_changed``).

Variants of the wire (the compatibility matrix, docs/compatibility.md); unset = stock simplejwt:

- ``KIOSK_SERVER_DIALECT``: ``pair`` (default: ``/api/token/...``), ``sliding`` (simplejwt's
  sliding views at the same paths, sliding tokens authenticate the API), ``djoser``
  (``/auth/jwt/create|refresh|verify/`` from ``djoser.urls.jwt``, no blacklist endpoint) or
  ``cookie`` (dj-rest-auth under ``/dj-rest-auth/`` with ``USE_JWT`` and an HttpOnly refresh
  cookie ``kiosk-refresh``; the access cookie is ``kiosk-access``).
- ``KIOSK_SERVER_USERNAME_FIELD``: ``email`` swaps in a custom user model that logs in by email
  (``kiosk.testing.server.accounts``; demo users are ``<name>@ward.example``).
- ``KIOSK_SERVER_AUTH_HEADER_TYPES``: comma-separated ``AUTH_HEADER_TYPES`` (default ``Bearer``).
- ``KIOSK_SERVER_USER_ID_CLAIM`` / ``KIOSK_SERVER_TOKEN_TYPE_CLAIM`` / ``KIOSK_SERVER_JTI_CLAIM``.
- ``KIOSK_SERVER_ALGORITHM`` (e.g. ``RS256``) with ``KIOSK_SERVER_SIGNING_KEY`` and
  ``KIOSK_SERVER_VERIFYING_KEY`` (PEM text); ``KIOSK_SERVER_ISSUER``, ``KIOSK_SERVER_AUDIENCE``.
- ``KIOSK_SERVER_SESSION_AUTH_FIRST``: ``"1"`` puts DRF's SessionAuthentication before JWT, so a
  missing or bad token answers 403 (no ``WWW-Authenticate``) instead of 401.
- ``KIOSK_SERVER_LEEWAY_S``: simplejwt's ``LEEWAY``.
- ``KIOSK_SERVER_LANGUAGE``: ``LANGUAGE_CODE`` with LocaleMiddleware (translated ``detail``).
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path


def _flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _seconds(name: str, default: float) -> timedelta:
    return timedelta(seconds=float(os.environ.get(name) or default))


ACCESS_LIFETIME = _seconds("KIOSK_SERVER_ACCESS_S", 900.0)
REFRESH_LIFETIME = _seconds("KIOSK_SERVER_REFRESH_S", 43200.0)
ROTATE = _flag("KIOSK_SERVER_ROTATE", True)
BLACKLIST = _flag("KIOSK_SERVER_BLACKLIST", True)
FAST_HASHER = _flag("KIOSK_SERVER_FAST_HASHER", True)
TEST_ENDPOINTS = _flag("KIOSK_SERVER_TEST_ENDPOINTS", False)
CHECK_REVOKE = _flag("KIOSK_SERVER_CHECK_REVOKE", False)
WIRE_DIALECT = (os.environ.get("KIOSK_SERVER_DIALECT") or "pair").strip().lower()
if WIRE_DIALECT not in {"pair", "sliding", "djoser", "cookie"}:
    raise ValueError(f"KIOSK_SERVER_DIALECT={WIRE_DIALECT!r}: pair, sliding, djoser or cookie")
EMAIL_LOGIN = (os.environ.get("KIOSK_SERVER_USERNAME_FIELD") or "username").strip() == "email"
AUTH_HEADER_TYPES = tuple(
    t.strip() for t in (os.environ.get("KIOSK_SERVER_AUTH_HEADER_TYPES") or "Bearer").split(",")
)
SESSION_AUTH_FIRST = _flag("KIOSK_SERVER_SESSION_AUTH_FIRST", False)
JWT_ALGORITHM = os.environ.get("KIOSK_SERVER_ALGORITHM") or "HS256"

SECRET_KEY = os.environ.get(
    "KIOSK_SERVER_SECRET", "kiosk-reference-server-not-a-secret-0123456789abcdef0123456789"
)
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "rest_framework",
    "rest_framework_simplejwt",
    *(["rest_framework_simplejwt.token_blacklist"] if BLACKLIST else []),
    *(["kiosk.testing.server.accounts"] if EMAIL_LOGIN else []),
    *(["djoser"] if WIRE_DIALECT == "djoser" else []),
    *(["rest_framework.authtoken", "dj_rest_auth"] if WIRE_DIALECT == "cookie" else []),
    "kiosk.testing.server.ward",
]
if EMAIL_LOGIN:
    AUTH_USER_MODEL = "accounts.User"

# Pure DRF + JWT: no sessions, CSRF or messages to get in the way (or to answer 403 instead of 401).
MIDDLEWARE = ["kiosk.testing.server.ward.stats.StatsMiddleware"] if TEST_ENDPOINTS else []
if os.environ.get("KIOSK_SERVER_LANGUAGE"):
    MIDDLEWARE.insert(0, "django.middleware.locale.LocaleMiddleware")

ROOT_URLCONF = "kiosk.testing.server.urls"
WSGI_APPLICATION = "kiosk.testing.server.wsgi.application"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("KIOSK_SERVER_DB")
        or str(Path.cwd() / "kiosk-reference-server.sqlite3"),
        "OPTIONS": {
            # Two gunicorn workers write concurrently (blacklist rows, counters): WAL lets readers
            # run beside the writer, the 30 s busy timeout queues writers instead of failing, and
            # IMMEDIATE takes the write lock up front so an atomic block that read first is never
            # refused outright (SQLite does not wait when upgrading a read lock in WAL mode).
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
        },
    }
}

_MD5 = "django.contrib.auth.hashers.MD5PasswordHasher"
_PBKDF2 = "django.contrib.auth.hashers.PBKDF2PasswordHasher"
# The first hasher hashes new passwords; the other one still verifies a database seeded earlier.
PASSWORD_HASHERS = [_MD5, _PBKDF2] if FAST_HASHER else [_PBKDF2, _MD5]
AUTH_PASSWORD_VALIDATORS: list[dict[str, str]] = []

LANGUAGE_CODE = os.environ.get("KIOSK_SERVER_LANGUAGE") or "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        *(["rest_framework.authentication.SessionAuthentication"] if SESSION_AUTH_FIRST else []),
        "rest_framework_simplejwt.authentication.JWTAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # JSON only: the browsable API would need templates and sessions.
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
}

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": ACCESS_LIFETIME,
    "REFRESH_TOKEN_LIFETIME": REFRESH_LIFETIME,
    "ROTATE_REFRESH_TOKENS": ROTATE,
    "BLACKLIST_AFTER_ROTATION": BLACKLIST,
    "UPDATE_LAST_LOGIN": False,
    "ALGORITHM": JWT_ALGORITHM,
    "SIGNING_KEY": os.environ.get("KIOSK_SERVER_SIGNING_KEY") or SECRET_KEY,
    "CHECK_REVOKE_TOKEN": CHECK_REVOKE,
}
for _name, _env in [
    ("VERIFYING_KEY", "KIOSK_SERVER_VERIFYING_KEY"),
    ("ISSUER", "KIOSK_SERVER_ISSUER"),
    ("AUDIENCE", "KIOSK_SERVER_AUDIENCE"),
    ("USER_ID_CLAIM", "KIOSK_SERVER_USER_ID_CLAIM"),
    ("TOKEN_TYPE_CLAIM", "KIOSK_SERVER_TOKEN_TYPE_CLAIM"),
    ("JTI_CLAIM", "KIOSK_SERVER_JTI_CLAIM"),
]:
    if os.environ.get(_env):
        SIMPLE_JWT[_name] = os.environ[_env]
if AUTH_HEADER_TYPES != ("Bearer",):
    SIMPLE_JWT["AUTH_HEADER_TYPES"] = AUTH_HEADER_TYPES
if os.environ.get("KIOSK_SERVER_LEEWAY_S"):
    SIMPLE_JWT["LEEWAY"] = float(os.environ["KIOSK_SERVER_LEEWAY_S"])
if WIRE_DIALECT == "sliding":
    SIMPLE_JWT.update(
        {
            "SLIDING_TOKEN_LIFETIME": ACCESS_LIFETIME,
            "SLIDING_TOKEN_REFRESH_LIFETIME": REFRESH_LIFETIME,
            "AUTH_TOKEN_CLASSES": ("rest_framework_simplejwt.tokens.SlidingToken",),
        }
    )
if WIRE_DIALECT == "cookie":
    REST_AUTH = {
        "USE_JWT": True,
        "SESSION_LOGIN": False,
        "JWT_AUTH_COOKIE": "kiosk-access",
        "JWT_AUTH_REFRESH_COOKIE": "kiosk-refresh",
        "JWT_AUTH_HTTPONLY": True,
    }

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    # 4xx are the point of most tests: only server errors are worth a line in gunicorn's log.
    "loggers": {"django": {"handlers": ["stderr"], "level": "ERROR"}},
}
