"""``kiosk check-server`` as IT runs it: exit codes, the table, the config, no token left live."""

from __future__ import annotations

import io
import json
import tomllib
from pathlib import Path

import httpx
import pytest

from kiosk.cli import main
from kiosk.commands.check_server import Checker
from kiosk.core.config import load_config

pytestmark = pytest.mark.server


def cli(capsys, monkeypatch, *argv: str, stdin: str = "") -> tuple[int, str, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    try:
        code = main(["check-server", *argv])
    except SystemExit as exc:  # argparse's own usage errors
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_table_and_toml_snippet(simplejwt_server, capsys, monkeypatch, tmp_path: Path):
    code, out, _ = cli(
        capsys,
        monkeypatch,
        simplejwt_server.base_url,
        *("--username", "alice", "--password-stdin"),
        stdin="alice-secret\n",
    )
    assert code == 0
    assert "the kiosk CAN work with this server" in out
    assert "rotation                    yes" in out
    snippet = out.split("# paste into the kiosk config:\n", 1)[1]
    table = tomllib.loads(snippet)["server"]
    assert table["url"] == simplejwt_server.base_url
    assert table["blacklist_path"] == "/api/token/blacklist/"
    config = tmp_path / "kiosk.toml"
    config.write_text(snippet)
    assert load_config(config).obtain_path == "/api/token/"
    # No token value is ever printed (only the config and the findings).
    assert "eyJ" not in out


def test_leaves_no_live_refresh_token_behind(simplejwt_server):
    simplejwt_server.reset_stats()
    tokens: list[str] = []
    checker = Checker(
        load_config_for(simplejwt_server.base_url),
        set(),
        username="alice",
        password="alice-secret",
        api_path=None,
    )
    original = checker._post

    def recording(path, body, cookie=None):
        answer = original(path, body, cookie)
        if isinstance(answer.body, dict) and isinstance(answer.body.get("refresh"), str):
            tokens.append(answer.body["refresh"])
        return answer

    checker._post = recording
    report = checker.run()
    assert report.ok
    assert len(tokens) >= 2  # login + rotation
    for token in tokens:
        again = httpx.post(
            f"{simplejwt_server.base_url}/api/token/refresh/", json={"refresh": token}
        )
        assert again.status_code == 401, "check-server left a live refresh token"
    assert simplejwt_server.stats()["blacklist"] >= 1


def load_config_for(url: str):
    from kiosk.core.config import server_settings

    return server_settings({"url": url})


def test_without_credentials_only_the_endpoints_are_checked(simplejwt_server, capsys, monkeypatch):
    code, out, _ = cli(capsys, monkeypatch, simplejwt_server.base_url, "--json")
    report = json.loads(out)
    assert code == 0
    assert report["obtain_path"] == "/api/token/"
    assert report["auth_header_type"] == "Bearer"
    assert report["rotation"] is None
    assert any("no credentials" in w for w in report["warnings"])


def test_wrong_password_is_exit_1_with_a_reason(simplejwt_server, capsys, monkeypatch):
    code, out, _ = cli(
        capsys,
        monkeypatch,
        simplejwt_server.base_url,
        *("--username", "alice", "--password-stdin", "--json"),
        stdin="wrong\n",
    )
    report = json.loads(out)
    assert code == 1
    assert report["ok"] is False
    assert any("login as 'alice' answered HTTP 401" in r for r in report["reasons"])


def test_wrong_configured_username_field_is_a_reason(simplejwt_server, capsys, monkeypatch):
    code, out, _ = cli(
        capsys,
        monkeypatch,
        simplejwt_server.base_url,
        *("--username-field", "email", "--json"),
    )
    assert code == 1
    assert any("not the configured username_field" in r for r in json.loads(out)["reasons"])


def test_a_server_that_is_not_simplejwt_is_exit_1(simplejwt_server, capsys, monkeypatch):
    code, out, _ = cli(
        capsys, monkeypatch, simplejwt_server.base_url, "--obtain-path", "/api/me/", "--json"
    )
    assert code == 1
    assert "no simplejwt-compatible login endpoint" in json.loads(out)["reasons"][0]


def test_unreachable_server_is_exit_1(capsys, monkeypatch):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    code, out, _ = cli(capsys, monkeypatch, f"http://127.0.0.1:{port}", "--json")
    assert code == 1
    assert "cannot talk to" in json.loads(out)["reasons"][0]


def test_plain_http_to_a_remote_host_is_exit_1(capsys, monkeypatch):
    code, out, _ = cli(capsys, monkeypatch, "http://ehr.hospital.example", "--json")
    assert code == 1
    assert "plain HTTP" in json.loads(out)["reasons"][0]


def test_config_file_and_flags(simplejwt_server, capsys, monkeypatch, tmp_path: Path):
    config = tmp_path / "kiosk.toml"
    config.write_text(f'[server]\nurl = "{simplejwt_server.base_url}"\nauth_header_type = "JWT"\n')
    code, out, _ = cli(capsys, monkeypatch, "--config", str(config), "--json")
    report = json.loads(out)
    assert code == 0
    assert report["auth_header_type"] == "JWT"  # configured values are kept...
    assert any("first AUTH_HEADER_TYPES entry is 'Bearer'" in w for w in report["warnings"])
    code, out, _ = cli(
        capsys, monkeypatch, "--config", str(config), "--auth-header-type", "Bearer", "--json"
    )
    assert json.loads(out)["auth_header_type"] == "Bearer"  # ...and flags win


@pytest.mark.parametrize(
    ("argv", "stdin", "message"),
    [
        ((), "", "give the server URL"),
        (("https://h.example", "--password-stdin"), "pw\n", "needs --username"),
        (("https://h.example", "--username", "a"), "", "needs --password-stdin"),
        (("https://h.example", "--username", "a", "--password-stdin"), "", "no password"),
        (("https://h.example", "--dialect", "oauth"), "", "dialect must be one of"),
        (("https://h.example", "--api-path", "api/me/"), "", "--api-path must start"),
        (("--config", "/no/such/kiosk.toml"), "", "cannot read the config file"),
    ],
)
def test_usage_errors_are_exit_2(capsys, monkeypatch, argv, stdin, message):
    code, out, err = cli(capsys, monkeypatch, *argv, stdin=stdin)
    assert code == 2
    assert message in err
    assert out == ""


def test_bad_config_key_is_exit_2(capsys, monkeypatch, tmp_path: Path):
    config = tmp_path / "kiosk.toml"
    config.write_text('[server]\nurl = "https://h.example"\nobtian_path = "/x/"\n')
    code, _, err = cli(capsys, monkeypatch, "--config", str(config))
    assert code == 2
    assert "obtian_path" in err


def test_unknown_flag_is_exit_2(capsys, monkeypatch):
    code, _, _ = cli(capsys, monkeypatch, "https://h.example", "--no-such-flag")
    assert code == 2
