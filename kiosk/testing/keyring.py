"""An in-memory keyring backend, for tests of what the kiosk keeps in the OS keyring.

DESIGN §7: tests register an in-memory ``KeyringBackend`` rather than touch the machine's
keyring (on a headless machine there is none: keyring's fail backend). Use it with the real
vault, ``KeyringVault(server_url, backend=MemoryKeyring())``, or register it for
everything with ``keyring.set_keyring(MemoryKeyring())``.
"""

from __future__ import annotations

import keyring.backend
import keyring.errors


class MemoryKeyring(keyring.backend.KeyringBackend):
    """A keyring that keeps its entries in a dict (``entries``) for the life of the object."""

    priority = 1

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.entries: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        try:
            del self.entries[(service, username)]
        except KeyError:
            raise keyring.errors.PasswordDeleteError(username) from None


# Subclasses of KeyringBackend register themselves for keyring's backend discovery; keep
# this test double out of it so that no discovery can ever pick it.
keyring.backend.KeyringBackend._classes.discard(MemoryKeyring)
