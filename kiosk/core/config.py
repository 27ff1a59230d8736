"""The ``[server]`` table of the kiosk config file (TOML) -> :class:`ServerSettings`.

One table, shared by ``kiosk check-server``, ``simulate``, ``run`` and ``selftest``::

    [server]
    url = "https://ehr.hospital.example"
    dialect = "pair"            # "pair" | "sliding" | "cookie"
    obtain_path = "/api/token/"
    refresh_path = "/api/token/refresh/"
    verify_path = "/api/token/verify/"       # "" = the server has none
    blacklist_path = "/api/token/blacklist/" # "" = the server has none
    logout_path = ""
    username_field = "username"
    auth_header_type = "Bearer"
    user_id_claim = "user_id"
    token_type_claim = "token_type"
    jti_claim = "jti"
    algorithm = "HS256"
    verify_key = ""             # PEM text, or a path to a PEM file (relative to the config)
    issuer = ""
    audience = ""
    ca_bundle = ""              # a CA bundle file (relative to the config)

Defaults are simplejwt's; a ``dialect`` without explicit paths gets that dialect's usual
paths (dj-rest-auth's for ``cookie``). TOML has no null, so an empty string means "none".

The same file's ``[session]`` table is the client's session policy (``kiosk run``)::

    [session]
    profile = "icu"             # "icu" | "general-ward" (default) | "outpatient" | "research"
    idle_lock_s = 120           # optional overrides of the profile, in seconds
    absolute_cap_s = 28800
    cap_warning_s = 600
    persist_refresh_token = false

Only what IT decides per ward is settable; refresh lead, jitter, backoff and the gate stay
the profile's. Unknown keys, wrong types and bad values in either table raise
:class:`ConfigurationError` naming the key: a typo in a hospital's config must not silently
fall back to a default.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from kiosk.core.errors import ConfigurationError, KioskError
from kiosk.core.settings import PROFILES, ServerSettings, SessionPolicy
from kiosk.core.settings import profile as named_profile

__all__ = [
    "DEFAULT_PROFILE",
    "DIALECT_PATHS",
    "MAX_SESSION_S",
    "SERVER_KEYS",
    "SESSION_KEYS",
    "load_config",
    "load_policy",
    "server_settings",
    "server_toml",
    "session_policy",
]

#: Keys of the ``[server]`` table and the ServerSettings field each one sets.
SERVER_KEYS: dict[str, str] = {
    "url": "base_url",
    "dialect": "dialect",
    "obtain_path": "obtain_path",
    "refresh_path": "refresh_path",
    "verify_path": "verify_path",
    "blacklist_path": "blacklist_path",
    "logout_path": "logout_path",
    "username_field": "username_field",
    "auth_header_type": "auth_header_type",
    "user_id_claim": "user_id_claim",
    "token_type_claim": "token_type_claim",
    "jti_claim": "jti_claim",
    "algorithm": "algorithm",
    "verify_key": "verify_key",
    "issuer": "issuer",
    "audience": "audience",
    "ca_bundle": "ca_bundle",
    "refresh_cookie": "refresh_cookie",
    "timeout_s": "timeout_s",
}

#: Keys whose empty string means "none" (TOML has no null).
_OPTIONAL = frozenset(
    {
        "verify_path",
        "blacklist_path",
        "logout_path",
        "verify_key",
        "issuer",
        "audience",
        "ca_bundle",
        "refresh_cookie",
    }
)

#: The endpoints each dialect usually has, used for the paths a config does not give.
DIALECT_PATHS: dict[str, dict[str, str | None]] = {
    "pair": {
        "obtain_path": "/api/token/",
        "refresh_path": "/api/token/refresh/",
        "verify_path": "/api/token/verify/",
        "blacklist_path": "/api/token/blacklist/",
        "logout_path": None,
    },
    "sliding": {
        "obtain_path": "/api/token/",
        "refresh_path": "/api/token/refresh/",
        "verify_path": "/api/token/verify/",
        "blacklist_path": None,  # simplejwt has no view that revokes a sliding token
        "logout_path": None,
    },
    "cookie": {
        "obtain_path": "/dj-rest-auth/login/",
        "refresh_path": "/dj-rest-auth/token/refresh/",
        "verify_path": "/dj-rest-auth/token/verify/",
        "blacklist_path": None,
        "logout_path": "/dj-rest-auth/logout/",
    },
}

#: Algorithms simplejwt can sign with (and PyJWT verify).
ALGORITHMS = frozenset(
    {"HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384", "ES512"}
)


def _check_value(key: str, value: Any) -> Any:
    if key == "timeout_s":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigurationError(f"[server] {key} must be a number of seconds")
        if not 0 < value <= 600:
            raise ConfigurationError(f"[server] {key} must be between 0 and 600 seconds")
        return float(value)
    if not isinstance(value, str):
        raise ConfigurationError(
            f"[server] {key} must be a string, not a TOML {type(value).__name__}"
        )
    if "\x00" in value or (key != "verify_key" and ("\n" in value or "\r" in value)):
        raise ConfigurationError(f"[server] {key} contains control characters")
    if value == "" and key in _OPTIONAL:
        return None
    if value == "":
        raise ConfigurationError(f"[server] {key} must not be empty")
    if key == "dialect" and value not in DIALECT_PATHS:
        raise ConfigurationError(
            f"[server] dialect must be one of {', '.join(sorted(DIALECT_PATHS))}, not {value!r}"
        )
    if key == "algorithm" and value not in ALGORITHMS:
        raise ConfigurationError(
            f"[server] algorithm {value!r} is not one simplejwt signs with "
            f"({', '.join(sorted(ALGORITHMS))})"
        )
    return value


def _resolve_file(value: str, base_dir: Path | None, key: str) -> str:
    path = Path(value).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    if not path.is_file():
        raise ConfigurationError(f"[server] {key}: no such file {str(path)!r}")
    return str(path)


def server_settings(
    table: Mapping[str, Any], *, base_dir: Path | None = None, **overrides: Any
) -> ServerSettings:
    """Build :class:`ServerSettings` from a ``[server]`` table (plus overrides).

    Args:
        table: the ``[server]`` table's keys and values.
        base_dir: relative file paths (``ca_bundle``, a ``verify_key`` file) are taken from
            here; the config file's directory.
        overrides: more keys of the table (command-line flags); a None value is ignored.

    Raises:
        ConfigurationError: an unknown key, a wrong type or a bad value (the message names it).
    """
    merged = dict(table)
    merged.update({k: v for k, v in overrides.items() if v is not None})
    unknown = sorted(set(merged) - set(SERVER_KEYS))
    if unknown:
        raise ConfigurationError(
            f"unknown key(s) in [server]: {', '.join(unknown)} "
            f"(known: {', '.join(sorted(SERVER_KEYS))})"
        )
    values = {key: _check_value(key, value) for key, value in merged.items()}
    if values.get("url") is None:
        raise ConfigurationError("[server] url is required")
    dialect = values.get("dialect") or "pair"
    for key, default in DIALECT_PATHS[dialect].items():
        values.setdefault(key, default)
    key_text = values.get("verify_key")
    if key_text is not None and "-----BEGIN" not in key_text:
        if values.get("algorithm", "HS256").startswith("HS"):
            pass  # an HMAC secret is given as is
        else:
            try:
                key_text = Path(_resolve_file(key_text, base_dir, "verify_key")).read_text()
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigurationError(
                    f"[server] verify_key: cannot read the key file ({type(exc).__name__})"
                ) from None
        values["verify_key"] = key_text
    if values.get("ca_bundle") is not None:
        values["ca_bundle"] = _resolve_file(values["ca_bundle"], base_dir, "ca_bundle")
    try:
        return ServerSettings(**{SERVER_KEYS[key]: value for key, value in values.items()})
    except KioskError:
        raise
    except (TypeError, ValueError) as exc:  # pragma: no cover - every key is checked above
        raise ConfigurationError(f"[server] {exc}") from None


def _read_document(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"cannot read the config file {str(path)!r} ({exc})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"{str(path)!r} is not valid TOML: {exc}") from None


def load_config(path: Path | str, **overrides: Any) -> ServerSettings:
    """Read the kiosk config file and return its ``[server]`` settings.

    Raises:
        ConfigurationError: the file cannot be read, is not TOML, has no ``[server]`` table,
            or the table is wrong (see :func:`server_settings`).
    """
    path = Path(path)
    document = _read_document(path)
    table = document.get("server")
    if table is None and overrides.get("url") is not None:
        table = {}
    if not isinstance(table, dict):
        raise ConfigurationError(f"{str(path)!r} has no [server] table")
    return server_settings(table, base_dir=path.parent, **overrides)


def _toml_string(value: str) -> str:
    if "\n" in value:
        return '"""\n' + value.replace("\\", "\\\\").replace('"""', '\\"""') + '"""'
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def server_toml(settings: ServerSettings) -> str:
    """The ``[server]`` table that :func:`server_settings` turns back into ``settings``."""
    lines = ["[server]"]
    for key, attr in SERVER_KEYS.items():
        value = getattr(settings, attr)
        if key == "timeout_s":
            lines.append(f"{key} = {value:g}")
        else:
            lines.append(f"{key} = {_toml_string('' if value is None else str(value))}")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ [session]

#: The profile of a config without a ``[session]`` table (or without ``profile`` in it).
DEFAULT_PROFILE = "general-ward"

#: Keys of the ``[session]`` table: the profile, and the policy fields IT may override.
SESSION_KEYS: tuple[str, ...] = (
    "profile",
    "idle_lock_s",
    "absolute_cap_s",
    "cap_warning_s",
    "persist_refresh_token",
)

#: The longest duration a ``[session]`` key accepts (a week): anything longer is a unit
#: mistake (milliseconds typed as seconds), not a ward's policy.
MAX_SESSION_S = 7 * 24 * 3600


def _check_profile(value: Any) -> str:
    known = ", ".join(sorted(PROFILES))
    if not isinstance(value, str):
        raise ConfigurationError(
            f"[session] profile must be a string (one of {known}), "
            f"not a TOML {type(value).__name__}"
        )
    if value not in PROFILES:
        raise ConfigurationError(f"[session] profile must be one of {known}, not {value!r}")
    return value


def _check_session_value(key: str, value: Any) -> float | bool:
    if key == "persist_refresh_token":
        if not isinstance(value, bool):
            raise ConfigurationError(
                f"[session] {key} must be true or false, not a TOML {type(value).__name__}"
            )
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigurationError(
            f"[session] {key} must be a number of seconds, not a TOML {type(value).__name__}"
        )
    # TOML has inf and nan; neither is a duration.
    if not math.isfinite(value) or not 0 < value <= MAX_SESSION_S:
        raise ConfigurationError(
            f"[session] {key} must be more than 0 and at most {MAX_SESSION_S} seconds, "
            f"not {value!r}"
        )
    return float(value)


def session_policy(table: Mapping[str, Any], *, profile: str | None = None) -> SessionPolicy:
    """Build the :class:`SessionPolicy` of a ``[session]`` table.

    The table's ``profile`` (the general-ward profile if absent) gives every field; the other
    keys override the fields of the same name.

    Args:
        table: the ``[session]`` table's keys and values (``{}`` for none).
        profile: a profile name that replaces the table's ``profile`` (``--profile``); the
            table's own value is still checked, so a typo in the file is never hidden.

    Raises:
        ConfigurationError: an unknown key, a wrong type or a bad value (the message names
            it), an unknown ``profile``, or a warning not shorter than the cap.
    """
    unknown = sorted(set(table) - set(SESSION_KEYS))
    if unknown:
        raise ConfigurationError(
            f"unknown key(s) in [session]: {', '.join(map(str, unknown))} "
            f"(known: {', '.join(SESSION_KEYS)})"
        )
    name = _check_profile(table["profile"]) if "profile" in table else DEFAULT_PROFILE
    if profile is not None:
        name = profile
    base = named_profile(name)
    overrides: dict[str, Any] = {
        key: _check_session_value(key, value) for key, value in table.items() if key != "profile"
    }
    policy = replace(base, **overrides)
    if policy.cap_warning_s >= policy.absolute_cap_s:
        raise ConfigurationError(
            f"[session] cap_warning_s ({policy.cap_warning_s:g} s) must be shorter than "
            f"absolute_cap_s ({policy.absolute_cap_s:g} s)"
        )
    return policy


def load_policy(path: Path | str, profile: str | None = None) -> SessionPolicy:
    """Read the kiosk config file and return the session policy of its ``[session]`` table.

    Args:
        path: the config file (its ``[server]`` table is not looked at).
        profile: a profile name that overrides the file's ``profile`` (``--profile``).

    Returns:
        The policy; the general-ward profile (or ``profile``) when the file has no
        ``[session]`` table.

    Raises:
        ConfigurationError: the file cannot be read or is not TOML, ``[session]`` is not a
            table, or the table is wrong (see :func:`session_policy`).
    """
    path = Path(path)
    table = _read_document(path).get("session", {})
    if not isinstance(table, dict):
        raise ConfigurationError(f"{str(path)!r}: session must be a [session] table")
    return session_policy(table, profile=profile)
