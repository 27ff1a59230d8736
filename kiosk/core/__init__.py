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
    TokenValidationError,
)
from kiosk.core.events import AuditLog, EventBus, EventKind, SecurityEvent, Severity
from kiosk.core.manager import TokenManager
from kiosk.core.session import State
from kiosk.core.settings import PROFILES, BackoffPolicy, ServerSettings, SessionPolicy, profile
from kiosk.core.vault import KeyringVault, MemoryVault, StoredSession, Vault

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
    "Token",
    "TokenAuth",
    "TokenClaims",
    "TokenManager",
    "TokenValidationError",
    "Vault",
    "decode_token",
    "profile",
]
