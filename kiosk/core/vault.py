"""Where the refresh token is kept: process memory, or the OS keyring.

Access tokens never leave memory. The refresh token may be persisted - only where the
policy allows, only in the OS keyring, namespaced by server and workstation - so a
kiosk process that restarts mid-shift can resume without asking for the password, and
so sibling processes on the workstation can see a newer token (with its generation
counter) after a rotation.

On headless Linux the default keyring backend is ``keyring.backends.fail.Keyring``.
:func:`open_vault` detects that (or any backend with no positive priority) and falls
back to memory-only, *saying so* with a security event - never silently to a plaintext
file (the msal-extensions mistake, DESIGN §9). ``keyring`` is imported lazily: its
backend discovery costs ~155 ms of start-up (DESIGN §8).
"""

from __future__ import annotations

import contextlib
import json
import socket
from dataclasses import dataclass, field
from typing import Any, Protocol

from kiosk.core.errors import KioskError


@dataclass(frozen=True, slots=True)
class StoredSession:
    """What is persisted: who, the refresh token, and its rotation generation."""

    user: str
    refresh: str = field(repr=False)
    generation: int
    login_time: float


class Vault(Protocol):
    """A place for the one persisted secret of a session."""

    #: A short name for logs and the policy page ("memory", "keyring: SecretService").
    description: str

    def load(self) -> StoredSession | None: ...

    def store(self, session: StoredSession) -> None: ...

    def clear(self) -> None: ...


class VaultError(KioskError):
    """The keyring failed while storing or reading the session."""


class MemoryVault:
    """Keeps the session in this process only (lost when the process ends)."""

    description = "memory"

    def __init__(self) -> None:
        self._session: StoredSession | None = None

    def load(self) -> StoredSession | None:
        return self._session

    def store(self, session: StoredSession) -> None:
        self._session = session

    def clear(self) -> None:
        self._session = None


def _encode(session: StoredSession) -> str:
    return json.dumps(
        {
            "user": session.user,
            "refresh": session.refresh,
            "generation": session.generation,
            "login_time": session.login_time,
        }
    )


def _decode(raw: str) -> StoredSession | None:
    try:
        data: Any = json.loads(raw)
        return StoredSession(
            user=str(data["user"]),
            refresh=str(data["refresh"]),
            generation=int(data["generation"]),
            login_time=float(data["login_time"]),
        )
    except (ValueError, KeyError, TypeError, OverflowError, RecursionError):
        # OverflowError/RecursionError: int(Infinity), float(10**400), deep nesting.
        return None  # a damaged entry is as good as none: the nurse logs in again


class KeyringVault:
    """Keeps the session in the OS keyring, under ``kiosk:<server>`` / ``<workstation>``."""

    def __init__(
        self, server_url: str, workstation: str | None = None, backend: Any = None
    ) -> None:
        import keyring

        self._keyring = backend or keyring.get_keyring()
        self._service = f"kiosk:{server_url.rstrip('/')}"
        self._account = workstation or socket.gethostname()
        self.description = f"keyring: {type(self._keyring).__name__}"

    def load(self) -> StoredSession | None:
        try:
            raw = self._keyring.get_password(self._service, self._account)
        except Exception as exc:
            raise VaultError(f"keyring read failed ({type(exc).__name__})") from None
        return None if raw is None else _decode(raw)

    def store(self, session: StoredSession) -> None:
        try:
            self._keyring.set_password(self._service, self._account, _encode(session))
        except Exception as exc:
            raise VaultError(f"keyring write failed ({type(exc).__name__})") from None

    def clear(self) -> None:
        # Nothing stored is what we want, whatever the backend says about it.
        with contextlib.suppress(Exception):
            self._keyring.delete_password(self._service, self._account)


def usable_keyring() -> Any | None:
    """The configured keyring backend, or None when it cannot store anything."""
    import keyring
    from keyring.backends import fail

    backend = keyring.get_keyring()
    if isinstance(backend, fail.Keyring):
        return None
    priority = getattr(backend, "priority", 1)
    try:
        if float(priority) <= 0:
            return None
    except (TypeError, ValueError):
        return None
    return backend


def open_vault(server_url: str, *, persist: bool) -> tuple[Vault, str | None]:
    """The vault for a session, and a warning when persistence was wanted but impossible.

    Args:
        server_url: namespaces the keyring entry.
        persist: whether the policy allows persisting the refresh token.

    Returns:
        (vault, warning): warning is None when the vault is what was asked for.
    """
    if not persist:
        return MemoryVault(), None
    try:
        backend = usable_keyring()
    except Exception as exc:
        backend = None
        reason = f"keyring failed to load ({type(exc).__name__})"
    else:
        reason = "no usable OS keyring backend (the default on headless Linux is 'fail')"
    if backend is None:
        return MemoryVault(), f"{reason}: the session is kept in memory only"
    return KeyringVault(server_url, backend=backend), None
