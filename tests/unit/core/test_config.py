"""The ``[server]`` and ``[session]`` tables of the kiosk config (kiosk.core.config)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk.core.config import (
    DIALECT_PATHS,
    SERVER_KEYS,
    load_config,
    load_policy,
    server_settings,
    server_toml,
    session_policy,
)
from kiosk.core.errors import ConfigurationError, InsecureTransportError, KioskError
from kiosk.core.settings import PROFILES, ServerSettings, SessionPolicy

PEM = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----\n"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "kiosk.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_are_simplejwts(tmp_path: Path) -> None:
    loaded = load_config(write(tmp_path, '[server]\nurl = "https://ehr.example"\n'))
    assert loaded == ServerSettings("https://ehr.example")


def test_every_issue_key_is_a_config_key() -> None:
    wanted = {
        *("url", "dialect", "obtain_path", "refresh_path", "verify_path", "blacklist_path"),
        *("logout_path", "username_field", "auth_header_type", "user_id_claim"),
        *("token_type_claim", "jti_claim", "algorithm", "verify_key", "issuer", "audience"),
        "ca_bundle",
    }
    assert set(wanted) <= set(SERVER_KEYS)


def test_all_keys(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("not checked here")
    (tmp_path / "jwt.pub").write_text(PEM)
    text = """
[server]
url = "https://ehr.example/prefix"
dialect = "pair"
obtain_path = "/auth/jwt/create/"
refresh_path = "/auth/jwt/refresh/"
verify_path = "/auth/jwt/verify/"
blacklist_path = ""
logout_path = ""
username_field = "email"
auth_header_type = "JWT"
user_id_claim = "uid"
token_type_claim = "typ"
jti_claim = "jid"
algorithm = "ES256"
verify_key = "jwt.pub"
issuer = "https://idp.example"
audience = "kiosk"
ca_bundle = "ca.pem"
timeout_s = 5
"""
    loaded = load_config(write(tmp_path, text))
    assert loaded.obtain_path == "/auth/jwt/create/"
    assert loaded.blacklist_path is None  # "" means none
    assert loaded.username_field == "email"
    assert (loaded.user_id_claim, loaded.token_type_claim, loaded.jti_claim) == (
        "uid",
        "typ",
        "jid",
    )
    assert loaded.verify_key == PEM  # read from the file next to the config
    assert loaded.ca_bundle == str(tmp_path / "ca.pem")
    assert loaded.timeout_s == 5.0


def test_dialect_brings_its_usual_paths_unless_given() -> None:
    cookie = server_settings({"url": "https://h.example", "dialect": "cookie"})
    assert cookie.obtain_path == "/dj-rest-auth/login/"
    assert cookie.logout_path == "/dj-rest-auth/logout/"
    assert cookie.blacklist_path is None
    sliding = server_settings({"url": "https://h.example", "dialect": "sliding"})
    assert sliding.blacklist_path is None
    own = server_settings(
        {"url": "https://h.example", "dialect": "cookie", "obtain_path": "/auth/login/"}
    )
    assert own.obtain_path == "/auth/login/"
    assert set(DIALECT_PATHS) == {"pair", "sliding", "cookie"}


def test_inline_pem_and_hmac_secret_are_kept_as_given() -> None:
    rs = server_settings({"url": "https://h.example", "algorithm": "RS256", "verify_key": PEM})
    assert rs.verify_key == PEM
    hs = server_settings({"url": "https://h.example", "verify_key": "shared-secret"})
    assert hs.verify_key == "shared-secret"


def test_overrides_win_and_none_is_ignored() -> None:
    loaded = server_settings(
        {"url": "https://h.example", "auth_header_type": "JWT"},
        auth_header_type="Bearer",
        dialect=None,
    )
    assert loaded.auth_header_type == "Bearer"
    assert loaded.dialect == "pair"


@pytest.mark.parametrize(
    ("table", "match"),
    [
        ({"url": "https://h.example", "obtian_path": "/x/"}, "unknown key.*obtian_path"),
        ({}, "url is required"),
        ({"url": "https://h.example", "dialect": "oauth"}, "dialect must be one of"),
        ({"url": "https://h.example", "algorithm": "none"}, "algorithm 'none'"),
        ({"url": "https://h.example", "obtain_path": 42}, "obtain_path must be a string"),
        ({"url": "https://h.example", "obtain_path": "api/token/"}, "starting with '/'"),
        ({"url": "https://h.example", "obtain_path": ""}, "must not be empty"),
        ({"url": "https://h.example", "auth_header_type": "JWT x"}, "one word"),
        ({"url": "https://h.example", "username_field": "a\nb"}, "control characters"),
        ({"url": "https://h.example", "timeout_s": True}, "number of seconds"),
        ({"url": "https://h.example", "timeout_s": -1}, "between"),
        ({"url": "https://h.example", "ca_bundle": "/no/such/ca.pem"}, "no such file"),
        (
            {"url": "https://h.example", "algorithm": "RS256", "verify_key": "missing.pem"},
            "no such file",
        ),
        ({"url": "ftp://h.example"}, "must look like"),
    ],
)
def test_bad_tables_raise_a_configuration_error_naming_the_key(
    table: dict[str, object], match: str
) -> None:
    with pytest.raises(ConfigurationError, match=match):
        server_settings(table)


def test_plain_http_to_a_remote_host_is_refused() -> None:
    with pytest.raises(InsecureTransportError):
        server_settings({"url": "http://ehr.example"})


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("[server\nurl=", "not valid TOML"),
        ('[client]\nurl = "https://h.example"\n', "no \\[server\\] table"),
        ('server = "https://h.example"\n', "no \\[server\\] table"),
    ],
)
def test_bad_files(tmp_path: Path, text: str, match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        load_config(write(tmp_path, text))


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot read"):
        load_config(tmp_path / "missing.toml")
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ConfigurationError, match="cannot read"):
        load_config(binary)


def test_url_flag_without_a_server_table(tmp_path: Path) -> None:
    loaded = load_config(write(tmp_path, "# empty\n"), url="https://h.example")
    assert loaded.base_url == "https://h.example"


@pytest.mark.parametrize(
    "original",
    [
        ServerSettings("https://h.example"),
        ServerSettings(
            "https://h.example",
            dialect="cookie",
            obtain_path="/dj-rest-auth/login/",
            blacklist_path=None,
            logout_path="/dj-rest-auth/logout/",
            username_field="email",
            issuer='odd "issuer" \\ name',
            algorithm="RS256",
            verify_key=PEM,
            refresh_cookie="kiosk-refresh",
        ),
        ServerSettings("http://127.0.0.1:8000", dialect="sliding", verify_path=None),
    ],
)
def test_server_toml_round_trips(tmp_path: Path, original: ServerSettings) -> None:
    assert load_config(write(tmp_path, server_toml(original))) == original


@settings(max_examples=150, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from([*SERVER_KEYS, "bogus"]),
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats()
        | st.text(max_size=20)
        | st.lists(st.integers(), max_size=2),
        max_size=6,
    )
)
def test_fuzz_tables_give_settings_or_a_typed_error(table: dict[str, object]) -> None:
    table = {k: v for k, v in table.items() if v is not None}
    error: KioskError | None = None
    try:
        loaded = server_settings({"url": "https://h.example", **table})
    except KioskError as exc:
        error = exc
    if error is None:
        assert isinstance(loaded, ServerSettings)
    else:
        assert isinstance(error, ConfigurationError)


@pytest.mark.parametrize("field", ["obtain_path", "refresh_path", "verify_path", "logout_path"])
@pytest.mark.parametrize("value", [None, 42, "no-slash/"])
def test_server_settings_refuse_bad_paths_with_a_typed_error(field: str, value: object) -> None:
    if value is None and field in {"verify_path", "logout_path"}:
        assert getattr(ServerSettings("https://h.example", **{field: value}), field) is None
        return
    with pytest.raises(ConfigurationError, match=field):
        ServerSettings("https://h.example", **{field: value})  # type: ignore[arg-type]


# ------------------------------------------------------------------ [session]


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_session_profile_gives_that_profiles_policy(name: str) -> None:
    assert session_policy({"profile": name}) == PROFILES[name]


def test_icu_profile_is_memory_only_with_an_8_hour_cap(tmp_path: Path) -> None:
    policy = load_policy(write(tmp_path, '[session]\nprofile = "icu"\n'))
    assert policy.name == "icu"
    assert policy.absolute_cap_s == 8 * 3600
    assert policy.persist_refresh_token is False


def test_no_session_table_is_the_general_ward_default(tmp_path: Path) -> None:
    path = write(tmp_path, '[server]\nurl = "https://h.example"\n')
    assert load_policy(path) == SessionPolicy()
    assert load_policy(path).name == "general-ward"
    assert session_policy({}) == PROFILES["general-ward"]


def test_profile_argument_overrides_the_files(tmp_path: Path) -> None:
    path = write(tmp_path, '[session]\nprofile = "icu"\nidle_lock_s = 90\n')
    policy = load_policy(path, profile="research")
    assert policy.name == "research"
    assert policy.absolute_cap_s == PROFILES["research"].absolute_cap_s
    assert policy.idle_lock_s == 90.0  # the file's overrides still apply
    assert load_policy(write(tmp_path, "# nothing\n"), profile="outpatient").name == "outpatient"


def test_overrides_replace_only_their_fields(tmp_path: Path) -> None:
    text = """
[session]
profile = "outpatient"
idle_lock_s = 45
absolute_cap_s = 36000.5
cap_warning_s = 300
persist_refresh_token = false
"""
    policy = load_policy(write(tmp_path, text))
    assert (policy.idle_lock_s, policy.absolute_cap_s, policy.cap_warning_s) == (
        45.0,
        36000.5,
        300.0,
    )
    assert isinstance(policy.idle_lock_s, float)
    assert policy.persist_refresh_token is False
    outpatient = PROFILES["outpatient"]
    assert policy.name == "outpatient"
    assert policy.refresh_lead_fraction == outpatient.refresh_lead_fraction
    assert policy.backoff == outpatient.backoff


@pytest.mark.parametrize(
    ("table", "match"),
    [
        ({"idle_lok_s": 60}, "unknown key.*idle_lok_s"),
        ({"refresh_lead_fraction": 0.2}, "unknown key.*refresh_lead_fraction"),
        ({"name": "mine"}, "unknown key.*name"),
        ({"profile": "ICU"}, "profile must be one of.*'ICU'"),
        ({"profile": 3}, "profile must be a string"),
        ({"idle_lock_s": "5 min"}, "idle_lock_s must be a number of seconds"),
        ({"idle_lock_s": True}, "idle_lock_s must be a number of seconds"),
        ({"absolute_cap_s": 0}, "absolute_cap_s must be more than 0"),
        ({"absolute_cap_s": -1.5}, "absolute_cap_s must be more than 0"),
        ({"absolute_cap_s": float("inf")}, "absolute_cap_s must be more than 0"),
        ({"cap_warning_s": float("nan")}, "cap_warning_s must be more than 0"),
        ({"idle_lock_s": 300_000_000}, "idle_lock_s must be .*at most"),
        ({"persist_refresh_token": "no"}, "persist_refresh_token must be true or false"),
        ({"persist_refresh_token": 0}, "persist_refresh_token must be true or false"),
        ({"absolute_cap_s": 600}, "cap_warning_s .* must be shorter than absolute_cap_s"),
    ],
)
def test_bad_session_tables_raise_a_configuration_error_naming_the_key(
    table: dict[str, object], match: str
) -> None:
    with pytest.raises(ConfigurationError, match=match):
        session_policy(table)


def test_unknown_profile_argument_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="unknown profile 'nope'"):
        session_policy({}, profile="nope")


def test_a_bad_profile_in_the_file_is_reported_even_when_overridden(tmp_path: Path) -> None:
    path = write(tmp_path, '[session]\nprofile = "genral-ward"\n')
    with pytest.raises(ConfigurationError, match="'genral-ward'"):
        load_policy(path, profile="icu")


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ('session = "icu"\n', "session must be a \\[session\\] table"),
        ("[session\nprofile=", "not valid TOML"),
        ("[session]\nidle_lock_s = inf\n", "idle_lock_s must be more than 0"),
    ],
)
def test_bad_session_files(tmp_path: Path, text: str, match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        load_policy(write(tmp_path, text))


def test_load_policy_of_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot read"):
        load_policy(tmp_path / "missing.toml")


@settings(max_examples=150, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["profile", "idle_lock_s", "absolute_cap_s", "cap_warning_s", "bogus"]),
        st.booleans()
        | st.integers()
        | st.floats()
        | st.text(max_size=12)
        | st.sampled_from(sorted(PROFILES)),
        max_size=4,
    )
)
def test_fuzz_session_tables_give_a_policy_or_a_typed_error(table: dict[str, object]) -> None:
    try:
        policy = session_policy(table)
    except ConfigurationError:
        return
    assert isinstance(policy, SessionPolicy)
    assert 0 < policy.cap_warning_s < policy.absolute_cap_s
