"""Where the refresh token is kept: memory or the OS keyring (kiosk.core.vault)."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from typing import Any

import keyring
import keyring.backend
import pytest
from keyring.backends import fail

from kiosk.core.errors import KioskError
from kiosk.core.vault import (
    KeyringVault,
    MemoryVault,
    StoredSession,
    VaultError,
    open_vault,
    usable_keyring,
)
from kiosk.testing.keyring import MemoryKeyring

SESSION = StoredSession(user="alice", refresh="eyJ.refresh.value", generation=3, login_time=1e9)
SERVER = "https://api.ward.example/"


class PriorityKeyring:
    """A duck-typed backend with a given ``priority``."""

    def __init__(self, priority: object) -> None:
        self.priority = priority


class BrokenKeyring:
    """A backend whose every call fails, like a locked Secret Service collection."""

    def get_password(self, service: str, username: str) -> str | None:
        raise RuntimeError(f"locked collection (secret {SESSION.refresh})")

    def set_password(self, service: str, username: str, password: str) -> None:
        raise RuntimeError(f"cannot store {password}")

    def delete_password(self, service: str, username: str) -> None:
        raise RuntimeError("cannot delete")


@pytest.fixture
def current_keyring(monkeypatch: pytest.MonkeyPatch) -> Callable[[object], None]:
    """``current_keyring(backend)``: what ``keyring.get_keyring()`` returns in this test."""

    def install(backend: object) -> None:
        monkeypatch.setattr(keyring, "get_keyring", lambda: backend)

    return install


# ------------------------------------------------------------------ StoredSession


def test_stored_session_repr_hides_the_refresh_token() -> None:
    assert SESSION.refresh not in repr(SESSION)
    assert "alice" in repr(SESSION)


# ------------------------------------------------------------------ MemoryVault


def test_memory_vault_store_load_clear() -> None:
    vault = MemoryVault()
    assert vault.description == "memory"
    assert vault.load() is None
    vault.store(SESSION)
    assert vault.load() == SESSION
    newer = StoredSession("alice", "eyJ.newer", 4, SESSION.login_time)
    vault.store(newer)
    assert vault.load() == newer
    vault.clear()
    assert vault.load() is None
    vault.clear()  # clearing an empty vault is fine
    assert vault.load() is None


def test_memory_vaults_are_separate() -> None:
    first, second = MemoryVault(), MemoryVault()
    first.store(SESSION)
    assert second.load() is None


# ------------------------------------------------------------------ KeyringVault


def test_keyring_vault_round_trip_and_namespacing() -> None:
    backend = MemoryKeyring()
    vault = KeyringVault(SERVER, workstation="cow-3", backend=backend)
    assert vault.load() is None
    vault.store(SESSION)
    assert list(backend.entries) == [("kiosk:https://api.ward.example", "cow-3")]
    assert vault.load() == SESSION
    vault.clear()
    assert vault.load() is None
    assert backend.entries == {}


def test_keyring_entry_is_json() -> None:
    backend = MemoryKeyring()
    KeyringVault(SERVER, workstation="cow-3", backend=backend).store(SESSION)
    (raw,) = backend.entries.values()
    assert json.loads(raw) == {
        "user": "alice",
        "refresh": "eyJ.refresh.value",
        "generation": 3,
        "login_time": 1e9,
    }


def test_keyring_vault_is_namespaced_by_server_and_workstation() -> None:
    backend = MemoryKeyring()
    a = KeyringVault("https://a.example", workstation="cow-1", backend=backend)
    b = KeyringVault("https://b.example", workstation="cow-1", backend=backend)
    c = KeyringVault("https://a.example", workstation="cow-2", backend=backend)
    a.store(SESSION)
    assert b.load() is None
    assert c.load() is None
    # A sibling process of the same server and workstation sees the same entry.
    assert (
        KeyringVault("https://a.example/", workstation="cow-1", backend=backend).load() == SESSION
    )


def test_keyring_vault_defaults_to_the_host_name() -> None:
    backend = MemoryKeyring()
    KeyringVault(SERVER, backend=backend).store(SESSION)
    assert list(backend.entries) == [("kiosk:https://api.ward.example", socket.gethostname())]


def test_keyring_vault_description_names_the_backend() -> None:
    assert KeyringVault(SERVER, backend=MemoryKeyring()).description == "keyring: MemoryKeyring"


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "not json",
        "[]",
        "42",
        '"a string"',
        "null",
        '{"user": "alice"}',
        '{"user": "alice", "refresh": "r", "generation": "three", "login_time": 1}',
        '{"user": "alice", "refresh": "r", "generation": 1, "login_time": "noon"}',
        '{"user": "alice", "refresh": "r", "generation": Infinity, "login_time": 1}',
        '{"user": "alice", "refresh": "r", "generation": NaN, "login_time": 1}',
        '{"user": "a", "refresh": "r", "generation": 1, "login_time": 1' + "0" * 400 + "}",
        "[" * 10_000,
    ],
)
def test_a_damaged_entry_is_as_good_as_none(raw: str) -> None:
    backend = MemoryKeyring()
    vault = KeyringVault(SERVER, workstation="cow-3", backend=backend)
    backend.entries[("kiosk:https://api.ward.example", "cow-3")] = raw
    assert vault.load() is None


def test_keyring_failures_become_vault_errors_without_secrets() -> None:
    vault = KeyringVault(SERVER, workstation="cow-3", backend=BrokenKeyring())
    with pytest.raises(VaultError, match="keyring read failed \\(RuntimeError\\)") as read:
        vault.load()
    with pytest.raises(VaultError, match="keyring write failed \\(RuntimeError\\)") as write:
        vault.store(SESSION)
    for info in (read, write):
        assert SESSION.refresh not in str(info.value)
        assert info.value.__cause__ is None
        assert info.value.__suppress_context__
        assert isinstance(info.value, KioskError)


def test_clear_never_raises() -> None:
    KeyringVault(SERVER, workstation="cow-3", backend=BrokenKeyring()).clear()
    KeyringVault(SERVER, workstation="cow-3", backend=MemoryKeyring()).clear()  # nothing stored


# ------------------------------------------------------------------ usable_keyring / open_vault


def test_fail_backend_is_not_usable(current_keyring: Callable[[object], None]) -> None:
    current_keyring(fail.Keyring())
    assert usable_keyring() is None


@pytest.mark.parametrize("priority", [0, -1, 0.0, "high", None])
def test_backends_without_a_positive_priority_are_not_usable(
    current_keyring: Callable[[object], None], priority: object
) -> None:
    current_keyring(PriorityKeyring(priority))
    assert usable_keyring() is None


@pytest.mark.parametrize("priority", [0.5, 1, 5])
def test_backends_with_a_positive_priority_are_usable(
    current_keyring: Callable[[object], None], priority: object
) -> None:
    backend = PriorityKeyring(priority)
    current_keyring(backend)
    assert usable_keyring() is backend


def test_a_backend_without_a_priority_attribute_is_usable(
    current_keyring: Callable[[object], None],
) -> None:
    backend = BrokenKeyring()
    current_keyring(backend)
    assert usable_keyring() is backend


def test_open_vault_uses_a_backend_registered_with_set_keyring() -> None:
    original = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    try:
        vault, warning = open_vault(SERVER, persist=True)
    finally:
        keyring.set_keyring(original)
    assert warning is None
    assert isinstance(vault, KeyringVault)
    assert vault.description == "keyring: MemoryKeyring"
    vault.store(SESSION)
    assert ("kiosk:https://api.ward.example", socket.gethostname()) in backend.entries
    assert vault.load() == SESSION


def test_open_vault_without_persistence_is_memory_without_warning(
    current_keyring: Callable[[object], None],
) -> None:
    backend = MemoryKeyring()
    current_keyring(backend)
    vault, warning = open_vault(SERVER, persist=False)
    assert isinstance(vault, MemoryVault)
    assert warning is None
    vault.store(SESSION)
    assert backend.entries == {}  # the policy said no: nothing reaches the keyring


def test_open_vault_falls_back_to_memory_and_says_so(
    current_keyring: Callable[[object], None],
) -> None:
    current_keyring(fail.Keyring())
    vault, warning = open_vault(SERVER, persist=True)
    assert isinstance(vault, MemoryVault)
    assert warning is not None
    assert "no usable OS keyring" in warning
    assert "memory only" in warning


def test_open_vault_survives_a_keyring_that_fails_to_load(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def explode() -> Any:
        raise RuntimeError("dbus is not running")

    monkeypatch.setattr(keyring, "get_keyring", explode)
    vault, warning = open_vault(SERVER, persist=True)
    assert isinstance(vault, MemoryVault)
    assert warning is not None
    assert "keyring failed to load (RuntimeError)" in warning
    assert "memory only" in warning
