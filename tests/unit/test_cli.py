"""The ``kiosk`` command's dispatcher: every subcommand is there, and only the one run loads."""

from __future__ import annotations

import subprocess
import sys

import pytest

from kiosk import cli


def test_help_lists_every_subcommand(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for name in cli.COMMANDS:
        assert name in out


def test_an_unknown_subcommand_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["teleport"])
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["run", "simulate", "selftest"])
def test_running_one_subcommand_does_not_import_httpx_or_pyjwt(name):
    # kiosk run shows the sign-in window before httpx and PyJWT load (~0.25 s of a start);
    # check-server and demo import them at the top, so they must not be loaded for `run`.
    code = (
        "import sys, kiosk.cli as c; c.build_parser(sys.argv[1]); "
        "print(sorted(m for m in ('httpx', 'jwt', 'PySide6') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, name], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"


def test_every_subcommand_module_registers_the_name_it_is_listed_under():
    import argparse

    for name in cli.COMMANDS:
        parser = cli.build_parser(name)
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        assert list(sub.choices) == [name]
