"""QA tooling for kiosk (reference server, pytest plugin, shift simulator)."""
