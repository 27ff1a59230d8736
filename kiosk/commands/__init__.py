"""The subcommands of ``kiosk``: one module each, registered by :mod:`kiosk.cli`."""
