"""``--config FILE`` and the server flags, shared by every command that talks to a server.

``check-server``, ``selftest``, ``simulate`` and ``run`` take the same ``[server]`` table
(:mod:`kiosk.core.config`) from ``--config FILE`` and the same flags to override it, one per
key (``--dialect``, ``--obtain-path``, ``--auth-header-type``...), so a configuration that
``check-server`` printed works unchanged with the others.
"""

from __future__ import annotations

import argparse
import tomllib
from pathlib import Path

from kiosk.core.config import SERVER_KEYS, load_config, server_settings
from kiosk.core.settings import ServerSettings


class UsageError(Exception):
    """The command line cannot be used as given (exit code 2)."""


def flag_name(key: str) -> str:
    """The command-line flag of a ``[server]`` key (``obtain_path`` -> ``--obtain-path``)."""
    return "--" + key.replace("_", "-")


def add_server_flags(parser: argparse.ArgumentParser, *, config_help: str | None = None) -> None:
    """Add ``--config FILE`` and one flag per ``[server]`` key except ``url``."""
    parser.add_argument(
        "--config",
        metavar="FILE",
        help=config_help or "the kiosk config file (TOML, [server] table)",
    )
    flags = parser.add_argument_group("server flags (override the config)")
    for key in SERVER_KEYS:
        if key == "url":
            continue
        if key == "timeout_s":
            flags.add_argument(flag_name(key), dest=key, type=float, metavar="S")
        else:
            flags.add_argument(flag_name(key), dest=key, metavar="VALUE")


def settings_from_args(
    args: argparse.Namespace, url: str | None
) -> tuple[ServerSettings, set[str]]:
    """The server settings of ``--config``, the flags and ``url``, and the keys that were given.

    Raises:
        UsageError: neither a URL nor a config file.
        ConfigurationError: the config file or a flag is wrong (the message names it).
    """
    overrides = {key: getattr(args, key, None) for key in SERVER_KEYS if key != "url"}
    overrides["url"] = url
    given = {k for k, v in overrides.items() if v is not None}
    config = getattr(args, "config", None)
    if config is not None:
        config_path = Path(config)
        try:
            table = tomllib.loads(config_path.read_text(encoding="utf-8")).get("server")
            if isinstance(table, dict):
                given |= {k for k in table if k in SERVER_KEYS}
        except (OSError, UnicodeDecodeError, ValueError):
            pass  # load_config reports it properly
        return load_config(config_path, **overrides), given
    if url is None:
        raise UsageError("give the server URL (or --config FILE with a [server] url)")
    return server_settings({}, base_dir=Path.cwd(), **overrides), given


__all__ = ["UsageError", "add_server_flags", "flag_name", "settings_from_args"]
