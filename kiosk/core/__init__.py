"""The kiosk core: pure Python + asyncio + httpx + PyJWT + keyring. Never imports PySide6.

The public API::

    from kiosk.core import ServerSettings, TokenManager

    server = ServerSettings(base_url="http://127.0.0.1:8000")
    async with TokenManager(server) as tm:
        await tm.login("alice", "secret")
        async with httpx.AsyncClient(base_url=server.base_url, auth=tm.auth) as api:
            r = await api.get("/api/me/")
        await tm.logout()
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kiosk.core.auth import GATE_TIMEOUT_EXTENSION, TokenAuth
    from kiosk.core.claims import Token, TokenClaims, decode_token
    from kiosk.core.clock import Clock, ServerTimeOffset, SystemClock
    from kiosk.core.errors import (
        ConfigurationError,
        GateTimeoutError,
        InsecureTransportError,
        InvalidCredentialsError,
        InvalidTransitionError,
        KioskError,
        NeedsReauthenticationError,
        NotLoggedInError,
        ServerResponseError,
        ServerUnavailableError,
        SessionEndedError,
        TlsVerificationError,
        TokenValidationError,
    )
    from kiosk.core.events import AuditLog, EventBus, EventKind, SecurityEvent, Severity
    from kiosk.core.manager import TokenManager
    from kiosk.core.session import State
    from kiosk.core.settings import PROFILES, BackoffPolicy, ServerSettings, SessionPolicy, profile
    from kiosk.core.vault import KeyringVault, MemoryVault, StoredSession, Vault

# Imported on first use (PEP 562): the Qt shell shows its sign-in window before httpx, PyJWT
# and keyring are loaded (~0.3 s), and `from kiosk.core import X` still works as usual.
_EXPORTS: dict[str, str] = {
    "AuditLog": "kiosk.core.events",
    "BackoffPolicy": "kiosk.core.settings",
    "Clock": "kiosk.core.clock",
    "ConfigurationError": "kiosk.core.errors",
    "EventBus": "kiosk.core.events",
    "EventKind": "kiosk.core.events",
    "GATE_TIMEOUT_EXTENSION": "kiosk.core.auth",
    "GateTimeoutError": "kiosk.core.errors",
    "InsecureTransportError": "kiosk.core.errors",
    "InvalidCredentialsError": "kiosk.core.errors",
    "InvalidTransitionError": "kiosk.core.errors",
    "KeyringVault": "kiosk.core.vault",
    "KioskError": "kiosk.core.errors",
    "MemoryVault": "kiosk.core.vault",
    "NeedsReauthenticationError": "kiosk.core.errors",
    "NotLoggedInError": "kiosk.core.errors",
    "PROFILES": "kiosk.core.settings",
    "SecurityEvent": "kiosk.core.events",
    "ServerResponseError": "kiosk.core.errors",
    "ServerSettings": "kiosk.core.settings",
    "ServerTimeOffset": "kiosk.core.clock",
    "ServerUnavailableError": "kiosk.core.errors",
    "TlsVerificationError": "kiosk.core.errors",
    "SessionEndedError": "kiosk.core.errors",
    "SessionPolicy": "kiosk.core.settings",
    "Severity": "kiosk.core.events",
    "State": "kiosk.core.session",
    "StoredSession": "kiosk.core.vault",
    "SystemClock": "kiosk.core.clock",
    "Token": "kiosk.core.claims",
    "TokenAuth": "kiosk.core.auth",
    "TokenClaims": "kiosk.core.claims",
    "TokenManager": "kiosk.core.manager",
    "TokenValidationError": "kiosk.core.errors",
    "Vault": "kiosk.core.vault",
    "decode_token": "kiosk.core.claims",
    "profile": "kiosk.core.settings",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'kiosk.core' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "GATE_TIMEOUT_EXTENSION",
    "PROFILES",
    "AuditLog",
    "BackoffPolicy",
    "Clock",
    "ConfigurationError",
    "EventBus",
    "EventKind",
    "GateTimeoutError",
    "InsecureTransportError",
    "InvalidCredentialsError",
    "InvalidTransitionError",
    "KeyringVault",
    "KioskError",
    "MemoryVault",
    "NeedsReauthenticationError",
    "NotLoggedInError",
    "SecurityEvent",
    "ServerResponseError",
    "ServerSettings",
    "ServerTimeOffset",
    "ServerUnavailableError",
    "SessionEndedError",
    "SessionPolicy",
    "Severity",
    "State",
    "StoredSession",
    "SystemClock",
    "TlsVerificationError",
    "Token",
    "TokenAuth",
    "TokenClaims",
    "TokenManager",
    "TokenValidationError",
    "Vault",
    "decode_token",
    "profile",
]
