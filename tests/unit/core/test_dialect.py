"""The simplejwt pair dialect (kiosk.core.dialect): requests, and what every answer means."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kiosk_test_helpers import NOW, make_jwt

from kiosk.core.claims import decode_token
from kiosk.core.dialect import (
    DEFINITIVE_CODES,
    CookieDialect,
    IssuedTokens,
    PairDialect,
    RefreshRejectedError,
    SlidingDialect,
    WireRequest,
    WireResponse,
    error_code,
    make_dialect,
    parse_json_object,
)
from kiosk.core.errors import (
    InvalidCredentialsError,
    KioskError,
    NeedsReauthenticationError,
    ServerResponseError,
    ServerUnavailableError,
    TokenValidationError,
)
from kiosk.core.settings import ServerSettings

SETTINGS = ServerSettings("https://api.example.org")
DIALECT = PairDialect(SETTINGS)
ACCESS = make_jwt(token_type="access", jti="acc-1")
REFRESH = make_jwt(token_type="refresh", jti="ref-1", exp=NOW + 43200)
JSON = {"content-type": "application/json"}
HTML = {"content-type": "text/html; charset=utf-8"}
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def answer(status: int, body: Any = None, headers: dict[str, str] | None = None) -> WireResponse:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return WireResponse(status, JSON if headers is None else headers, raw)


# ------------------------------------------------------------------ requests


def test_obtain_request() -> None:
    request = DIALECT.obtain_request("alice", "s3cret-pw")
    assert (request.method, request.path) == ("POST", "/api/token/")
    assert dict(request.json) == {"username": "alice", "password": "s3cret-pw"}


def test_obtain_request_uses_the_configured_username_field() -> None:
    dialect = PairDialect(ServerSettings("https://api.example.org", username_field="email"))
    assert dict(dialect.obtain_request("a@ward.example", "pw").json) == {
        "email": "a@ward.example",
        "password": "pw",
    }


def test_refresh_and_logout_requests_carry_the_refresh_token() -> None:
    refresh = decode_token(REFRESH, SETTINGS)
    request = DIALECT.refresh_request(refresh)
    assert (request.method, request.path) == ("POST", "/api/token/refresh/")
    assert dict(request.json) == {"refresh": REFRESH}
    logout = DIALECT.logout_request(refresh)
    assert logout is not None
    assert (logout.method, logout.path) == ("POST", "/api/token/blacklist/")
    assert dict(logout.json) == {"refresh": REFRESH}


def test_custom_paths() -> None:
    settings_ = ServerSettings(
        "https://api.example.org",
        obtain_path="/auth/jwt/create/",
        refresh_path="/auth/jwt/refresh/",
        blacklist_path=None,
    )
    dialect = PairDialect(settings_)
    refresh = decode_token(REFRESH, settings_)
    assert dialect.obtain_request("a", "b").path == "/auth/jwt/create/"
    assert dialect.refresh_request(refresh).path == "/auth/jwt/refresh/"
    assert dialect.logout_request(refresh) is None  # djoser: nothing to revoke with


def test_requests_and_responses_do_not_show_secrets_in_repr() -> None:
    refresh = decode_token(REFRESH, SETTINGS)
    for request in (DIALECT.obtain_request("alice", "s3cret-pw"), DIALECT.refresh_request(refresh)):
        assert "s3cret-pw" not in repr(request)
        assert REFRESH not in repr(request)
    response = answer(200, {"access": ACCESS, "refresh": REFRESH})
    assert ACCESS not in repr(response)
    assert REFRESH not in repr(response)


def test_make_dialect() -> None:
    assert type(make_dialect(SETTINGS)) is PairDialect
    assert make_dialect(SETTINGS).settings is SETTINGS
    sliding = ServerSettings("https://api.example.org", dialect="sliding")
    cookie = ServerSettings("https://api.example.org", dialect="cookie")
    assert type(make_dialect(sliding)) is SlidingDialect
    assert type(make_dialect(cookie)) is CookieDialect
    # What the manager asks a dialect instead of looking at its name.
    assert (DIALECT.refresh_token_type, DIALECT.persist_refresh) == ("refresh", True)
    assert make_dialect(sliding).refresh_token_type == "sliding"
    assert make_dialect(cookie).persist_refresh is False


# ------------------------------------------------------------------ parse_obtain


def test_obtain_200() -> None:
    issued = DIALECT.parse_obtain(answer(200, {"refresh": REFRESH, "access": ACCESS}))
    assert isinstance(issued, IssuedTokens)
    assert issued.access.reveal() == ACCESS
    assert issued.access.claims.token_type == "access"
    assert issued.refresh is not None
    assert issued.refresh.reveal() == REFRESH
    assert issued.refresh.jti == "ref-1"


def test_obtain_ignores_extra_fields() -> None:
    body = {"refresh": REFRESH, "access": ACCESS, "user": {"name": "Alice"}}
    assert DIALECT.parse_obtain(answer(201, body)).access.jti == "acc-1"


@pytest.mark.parametrize("status", [401, 403])
def test_obtain_wrong_credentials(status: int) -> None:
    body = {"detail": "No active account found with the given credentials"}
    with pytest.raises(InvalidCredentialsError, match="Wrong user name or password"):
        DIALECT.parse_obtain(answer(status, body))


def test_obtain_401_with_html_is_still_wrong_credentials() -> None:
    with pytest.raises(InvalidCredentialsError):
        DIALECT.parse_obtain(answer(401, b"<html>Unauthorized</html>", HTML))


def test_obtain_400_names_the_fields_the_server_wants() -> None:
    response = answer(400, {"email": ["This field is required."], "password": ["x"]})
    with pytest.raises(InvalidCredentialsError, match=r"email, password.*username_field"):
        DIALECT.parse_obtain(response)


@pytest.mark.parametrize("body", [b"<html>Bad Request</html>", b"[1, 2]", b"", b"\xff\xfe"])
def test_obtain_400_without_a_json_object(body: bytes) -> None:
    with pytest.raises(InvalidCredentialsError, match=r"HTTP 400"):
        DIALECT.parse_obtain(answer(400, body, HTML))


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504, 599])
def test_obtain_unavailable_carries_retry_after(status: int) -> None:
    response = answer(status, b"<html>down</html>", {**HTML, "retry-after": "120"})
    with pytest.raises(ServerUnavailableError, match=str(status)) as info:
        DIALECT.parse_obtain(response)
    assert info.value.retry_after == "120"


def test_obtain_unavailable_without_retry_after() -> None:
    with pytest.raises(ServerUnavailableError) as info:
        DIALECT.parse_obtain(answer(503, {"detail": "maintenance"}))
    assert info.value.retry_after is None


@pytest.mark.parametrize("status", [100, 304, 302, 404, 405, 418])
def test_obtain_other_statuses_are_bad_responses(status: int) -> None:
    with pytest.raises(ServerResponseError, match=f"HTTP {status}") as info:
        DIALECT.parse_obtain(answer(status, {"detail": "nope"}))
    assert info.value.status_code == status
    assert not isinstance(info.value, TokenValidationError)


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (b"<!DOCTYPE html><html><body>Welcome to nginx</body></html>", "text/html with status 200"),
        (b"", "not JSON"),
        (b"{not json", "not JSON"),
        (b"\xff\xfe\x00garbage", "not JSON"),
        (b"[1, 2, 3]", "JSON list, expected an object"),
        (b"42", "JSON int, expected an object"),
        (b"4.2", "JSON float"),
        (b'"a string"', "JSON str"),
        (b"null", "JSON NoneType"),
        (b"[" * 50_000, "not JSON"),  # nesting deeper than the recursion limit
    ],
)
def test_obtain_200_that_is_not_a_json_object(body: bytes, match: str) -> None:
    with pytest.raises(ServerResponseError, match=match) as info:
        DIALECT.parse_obtain(answer(200, body, HTML if body.startswith(b"<") else JSON))
    assert info.value.status_code == 200


def test_no_content_type_is_named_as_such() -> None:
    with pytest.raises(ServerResponseError, match="no content type"):
        DIALECT.parse_obtain(WireResponse(200, {}, b"<html></html>"))


@pytest.mark.parametrize(
    ("body", "error", "match"),
    [
        ({"access": ACCESS}, ServerResponseError, "no refresh token"),
        ({"refresh": REFRESH}, ServerResponseError, "no access token"),
        ({"refresh": REFRESH, "access_token": ACCESS}, ServerResponseError, "no access token"),
        ({"refresh_token": REFRESH, "access": ACCESS}, ServerResponseError, "no refresh token"),
        ({}, ServerResponseError, "no refresh token"),
        ({"refresh": REFRESH, "access": None}, TokenValidationError, "NoneType"),
        ({"refresh": REFRESH, "access": 12}, TokenValidationError, "int"),
        ({"refresh": REFRESH, "access": [ACCESS]}, TokenValidationError, "list"),
        ({"refresh": REFRESH, "access": "hello"}, TokenValidationError, "not a JWT"),
        ({"refresh": "", "access": ACCESS}, TokenValidationError, "not a JWT"),
        ({"refresh": ACCESS, "access": ACCESS}, TokenValidationError, "expected a refresh"),
        ({"refresh": REFRESH, "access": REFRESH}, TokenValidationError, "expected a access"),
        ({"refresh": REFRESH, "access": "x" * 20_000}, TokenValidationError, "characters long"),
    ],
)
def test_obtain_200_with_missing_renamed_or_bad_tokens(
    body: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        DIALECT.parse_obtain(answer(200, body))


def test_obtain_body_over_the_limit_is_refused_unread() -> None:
    small = PairDialect(ServerSettings("https://api.example.org", max_body_bytes=1024))
    body = json.dumps({"refresh": REFRESH, "access": ACCESS, "pad": "x" * 1024}).encode()
    with pytest.raises(ServerResponseError, match=f"{len(body)} bytes, more than the 1024"):
        small.parse_obtain(answer(200, body))


def test_default_body_limit() -> None:
    huge = b'{"a": "' + b"x" * SETTINGS.max_body_bytes + b'"}'
    with pytest.raises(ServerResponseError, match="more than the 65536"):
        DIALECT.parse_obtain(answer(200, huge))


def test_bad_response_errors_do_not_carry_tokens() -> None:
    body = {"refresh": ACCESS, "access": ACCESS}
    with pytest.raises(TokenValidationError) as info:
        DIALECT.parse_obtain(answer(200, body))
    assert ACCESS not in str(info.value)


# ------------------------------------------------------------------ parse_refresh


def test_refresh_200_with_rotation() -> None:
    issued = DIALECT.parse_refresh(answer(200, {"access": ACCESS, "refresh": REFRESH}))
    assert issued.access.jti == "acc-1"
    assert issued.refresh is not None
    assert issued.refresh.jti == "ref-1"


@pytest.mark.parametrize("body", [{"access": ACCESS}, {"access": ACCESS, "refresh": None}])
def test_refresh_200_without_rotation(body: dict[str, Any]) -> None:
    issued = DIALECT.parse_refresh(answer(200, body))
    assert issued.access.jti == "acc-1"
    assert issued.refresh is None


def test_refresh_blacklisted() -> None:
    body = {"detail": "Token is blacklisted", "code": "token_not_valid"}
    with pytest.raises(RefreshRejectedError) as info:
        DIALECT.parse_refresh(answer(401, body))
    assert info.value.reason == "token_not_valid"
    assert info.value.blacklisted is True
    assert isinstance(info.value, NeedsReauthenticationError)


def test_refresh_expired_is_not_called_blacklisted() -> None:
    body = {
        "detail": "Token is invalid or expired",
        "code": "token_not_valid",
        "messages": [{"message": "Token is expired"}],
    }
    with pytest.raises(RefreshRejectedError) as info:
        DIALECT.parse_refresh(answer(401, body))
    assert (info.value.reason, info.value.blacklisted) == ("token_not_valid", False)


def test_refresh_decision_keys_on_code_not_translated_detail() -> None:
    # LocaleMiddleware: Dutch detail, same code, same decision.
    body = {"detail": "Token staat op de zwarte lijst", "code": "token_not_valid"}
    with pytest.raises(RefreshRejectedError) as info:
        DIALECT.parse_refresh(answer(401, body))
    assert info.value.reason == "token_not_valid"


@pytest.mark.parametrize("code", sorted(DEFINITIVE_CODES))
@pytest.mark.parametrize("status", [401, 403])
def test_refresh_definitive_codes(code: str, status: int) -> None:
    with pytest.raises(RefreshRejectedError, match=code) as info:
        DIALECT.parse_refresh(answer(status, {"detail": "...", "code": code}))
    assert info.value.reason == code


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (401, {"detail": "No active account found"}),  # inactive user: no code
        (401, b"<html>401</html>"),
        (401, b""),
        (401, {"code": 7}),
        (403, {"detail": "CSRF Failed"}),  # SessionAuthentication first
    ],
)
def test_refresh_401_403_without_a_string_code(status: int, body: Any) -> None:
    with pytest.raises(RefreshRejectedError) as info:
        DIALECT.parse_refresh(answer(status, body))
    assert info.value.reason == f"http_{status}"


@pytest.mark.parametrize("status", [400, 404, 405, 410, 418])
def test_refresh_other_4xx_cannot_be_fixed_by_retrying(status: int) -> None:
    with pytest.raises(RefreshRejectedError, match=f"HTTP {status}") as info:
        DIALECT.parse_refresh(answer(status, {"refresh": ["This field is required."]}))
    assert info.value.reason == f"http_{status}"
    assert info.value.blacklisted is False


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_refresh_5xx_and_429_are_transient(status: int) -> None:
    response = answer(status, {"detail": "Token is blacklisted"}, {**JSON, "retry-after": "30"})
    with pytest.raises(ServerUnavailableError) as info:
        DIALECT.parse_refresh(response)
    assert info.value.retry_after == "30"
    assert not isinstance(info.value, NeedsReauthenticationError)


@pytest.mark.parametrize("status", [100, 302, 304])
def test_refresh_non_2xx_non_error_statuses_are_definitive(status: int) -> None:
    with pytest.raises(RefreshRejectedError):
        DIALECT.parse_refresh(answer(status, b""))


@pytest.mark.parametrize(
    "body",
    [
        b"<html>proxy login</html>",
        b"[]",
        b"7",
        b"[" * 50_000,
        json.dumps({"access_token": ACCESS}).encode(),
        json.dumps({"access": "not-a-jwt"}).encode(),
        json.dumps({"access": REFRESH}).encode(),
        json.dumps({"access": ACCESS, "refresh": ACCESS}).encode(),
        json.dumps({"access": ACCESS, "refresh": 5}).encode(),
    ],
)
def test_refresh_2xx_with_an_unusable_body_is_an_unknown_outcome(body: bytes) -> None:
    # The server processed the refresh, so it is not "rejected": the driver treats a
    # ServerResponseError on a 2xx as outcome unknown.
    with pytest.raises(ServerResponseError) as info:
        DIALECT.parse_refresh(answer(200, body))
    assert not isinstance(info.value, NeedsReauthenticationError)
    # (a TokenValidationError from decode_token does not know the HTTP status)
    assert info.value.status_code in {200, None}


def test_refresh_huge_401_body_still_rejects() -> None:
    body = b'{"code": "token_not_valid", "pad": "' + b"x" * 100_000 + b'"}'
    with pytest.raises(RefreshRejectedError) as info:
        DIALECT.parse_refresh(answer(401, body))
    assert info.value.reason == "http_401"  # too big to read the code from


# ------------------------------------------------------------------ helpers


def test_parse_json_object_and_error_code() -> None:
    assert parse_json_object(answer(200, {"a": 1}), 100) == {"a": 1}
    assert error_code(answer(401, {"code": "user_inactive"}), 100) == "user_inactive"
    assert error_code(answer(401, {"code": ["x"]}), 100) is None
    assert error_code(answer(401, {"detail": "x"}), 100) is None
    assert error_code(answer(401, b"<html>", HTML), 100) is None
    assert error_code(answer(401, b"[" * 10_000), 100_000) is None


def test_json_bodies_in_utf16_are_read() -> None:
    body = json.dumps({"access": ACCESS}).encode("utf-16")
    assert DIALECT.parse_refresh(answer(200, body)).access.jti == "acc-1"


# ------------------------------------------------------------------ fuzzing

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=20)
    | st.sampled_from([ACCESS, REFRESH, "", "a.b.c"]),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=10,
)
token_like = st.sampled_from([ACCESS, REFRESH, "", "a.b.c", "\ud800"]) | json_values
token_bodies = st.fixed_dictionaries(
    {},
    optional={
        "access": token_like,
        "refresh": token_like,
        "code": json_values,
        "detail": json_values,
    },
)
bodies = (
    st.binary(max_size=200)
    | json_values.map(lambda v: json.dumps(v).encode())
    | token_bodies.map(lambda v: json.dumps(v).encode())
    | st.sampled_from([b"[" * 5000, b"<html>", b"\xef\xbb\xbf{}", b"NaN", b"1" * 5000])
)
header_dicts = st.dictionaries(
    st.sampled_from(["content-type", "retry-after", "date", "www-authenticate"])
    | st.text(max_size=10),
    st.text(max_size=30),
    max_size=4,
)
responses = st.builds(
    WireResponse,
    status_code=st.sampled_from([200, 201, 400, 401, 403, 404, 429, 500, 503])
    | st.integers(-1, 1000),
    headers=header_dicts,
    body=bodies,
)
DIALECTS = [DIALECT, PairDialect(ServerSettings("https://api.example.org", max_body_bytes=64))]


def _typed_outcome(parse: Any, response: WireResponse) -> None:
    """``parse`` returns usable tokens or raises the KioskError the taxonomy says."""
    error: KioskError | None = None
    try:
        issued = parse(response)
    except KioskError as exc:
        error = exc
    status = response.status_code
    if error is None:
        assert 200 <= status < 300
        assert isinstance(issued, IssuedTokens)
        assert issued.access.claims.token_type in {"access", "sliding"}
        assert issued.refresh is None or issued.refresh.claims.token_type in {"refresh", "sliding"}
    elif 200 <= status < 300:
        assert isinstance(error, ServerResponseError)
    elif status == 429 or status >= 500:
        assert isinstance(error, ServerUnavailableError)
        assert error.retry_after == response.headers.get("retry-after")


@FUZZ
@given(response=responses)
def test_fuzz_parse_obtain_only_raises_kiosk_errors(response: WireResponse) -> None:
    for dialect in DIALECTS:
        _typed_outcome(dialect.parse_obtain, response)


@FUZZ
@given(response=responses)
def test_fuzz_parse_refresh_only_raises_kiosk_errors(response: WireResponse) -> None:
    for dialect in DIALECTS:
        _typed_outcome(dialect.parse_refresh, response)
        status = response.status_code
        if status in {401, 403}:
            with pytest.raises(RefreshRejectedError):
                dialect.parse_refresh(response)


def test_wire_request_is_immutable() -> None:
    request = WireRequest("POST", "/x", {"a": 1})
    with pytest.raises(AttributeError):
        request.path = "/y"  # type: ignore[misc]


# ------------------------------------------------------------------ sliding dialect

SLIDING_SETTINGS = ServerSettings("https://api.example.org", dialect="sliding")
SLIDING = SlidingDialect(SLIDING_SETTINGS)
SLIDING_TOKEN = make_jwt(token_type="sliding", jti="sl-1", refresh_exp=NOW + 86400)


def test_sliding_login_gives_one_token_as_access_and_refresh() -> None:
    issued = SLIDING.parse_obtain(answer(200, {"token": SLIDING_TOKEN}))
    assert issued.access is issued.refresh
    assert issued.access.claims.token_type == "sliding"
    assert issued.access.claims.refresh_exp == NOW + 86400


def test_sliding_refresh_and_logout_requests() -> None:
    token = decode_token(SLIDING_TOKEN, SLIDING_SETTINGS)
    request = SLIDING.refresh_request(token)
    assert (request.path, dict(request.json)) == ("/api/token/refresh/", {"token": SLIDING_TOKEN})
    assert SLIDING.logout_request(token) is not None  # simplejwt default blacklist_path is set
    no_blacklist = SlidingDialect(
        ServerSettings("https://api.example.org", dialect="sliding", blacklist_path=None)
    )
    assert no_blacklist.logout_request(token) is None


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"access": ACCESS, "refresh": REFRESH}, ServerResponseError),  # a pair server
        ({"token": ACCESS}, TokenValidationError),  # wrong token type
        (
            {"token": make_jwt(token_type="sliding", jti="s")},
            TokenValidationError,
        ),  # no refresh_exp
        ({"token": 42}, TokenValidationError),
    ],
)
def test_sliding_bad_answers_are_typed(body: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        SLIDING.parse_obtain(answer(200, body))
    with pytest.raises(error):
        SLIDING.parse_refresh(answer(200, body))


def test_sliding_refresh_after_refresh_exp_is_definitive() -> None:
    # simplejwt: 401 "Token 'refresh_exp' claim has expired", code token_not_valid (§4).
    body = {"detail": "Token 'refresh_exp' claim has expired", "code": "token_not_valid"}
    with pytest.raises(RefreshRejectedError) as caught:
        SLIDING.parse_refresh(answer(401, body))
    assert caught.value.reason == "token_not_valid"
    with pytest.raises(InvalidCredentialsError):
        SLIDING.parse_obtain(answer(401, {"detail": "No active account"}))


# ------------------------------------------------------------------ cookie dialect

COOKIE_SETTINGS = ServerSettings(
    "https://api.example.org",
    dialect="cookie",
    obtain_path="/dj-rest-auth/login/",
    refresh_path="/dj-rest-auth/token/refresh/",
    blacklist_path=None,
    logout_path="/dj-rest-auth/logout/",
)


def cookie_answer(status: int, body: Any, cookies: dict[str, str]) -> WireResponse:
    return WireResponse(status, JSON, json.dumps(body).encode(), cookies)


def test_cookie_login_takes_the_refresh_token_from_the_cookie_not_the_body() -> None:
    dialect = CookieDialect(COOKIE_SETTINGS)
    issued = dialect.parse_obtain(
        cookie_answer(
            200,
            {"access": ACCESS, "refresh": "", "user": {"pk": 1}},
            {"csrftoken": "abc", "my-access": ACCESS, "my-refresh": REFRESH},
        )
    )
    assert issued.access.reveal() == ACCESS
    assert issued.refresh is not None
    assert issued.refresh.reveal() == REFRESH
    # The refresh and logout requests carry it in a Cookie header under the name it came in,
    # with an empty body (dj-rest-auth prefers a non-empty body "refresh" over the cookie).
    refresh_request = dialect.refresh_request(issued.refresh)
    assert dict(refresh_request.json) == {}
    assert dict(refresh_request.headers) == {"Cookie": f"my-refresh={REFRESH}"}
    logout = dialect.logout_request(issued.refresh)
    assert logout is not None
    assert (logout.path, dict(logout.headers)) == (
        "/dj-rest-auth/logout/",
        {"Cookie": f"my-refresh={REFRESH}"},
    )
    assert REFRESH not in repr(refresh_request)


def test_cookie_login_without_a_refresh_cookie_is_a_bad_response() -> None:
    dialect = CookieDialect(COOKIE_SETTINGS)
    with pytest.raises(ServerResponseError, match="no refresh cookie"):
        dialect.parse_obtain(cookie_answer(200, {"access": ACCESS, "refresh": ""}, {}))


def test_cookie_named_in_the_settings_must_hold_a_refresh_token() -> None:
    named = CookieDialect(
        ServerSettings("https://api.example.org", dialect="cookie", refresh_cookie="r")
    )
    with pytest.raises(TokenValidationError):
        named.parse_obtain(cookie_answer(200, {"access": ACCESS}, {"r": ACCESS}))
    issued = named.parse_obtain(
        cookie_answer(200, {"access": ACCESS}, {"x": REFRESH, "r": REFRESH})
    )
    assert issued.refresh is not None


def test_cookie_refresh_with_and_without_rotation() -> None:
    dialect = CookieDialect(COOKIE_SETTINGS)
    rotated = dialect.parse_refresh(cookie_answer(200, {"access": ACCESS}, {"rt": REFRESH}))
    assert rotated.refresh is not None
    assert dialect.parse_refresh(cookie_answer(200, {"access": ACCESS}, {})).refresh is None
    # a body refresh (JWT_AUTH_HTTPONLY off) is taken as well
    body = dialect.parse_refresh(cookie_answer(200, {"access": ACCESS, "refresh": REFRESH}, {}))
    assert body.refresh is not None


def test_cookie_wrong_credentials_are_dj_rest_auths_400() -> None:
    dialect = CookieDialect(COOKIE_SETTINGS)
    body = {"non_field_errors": ["Unable to log in with provided credentials."]}
    with pytest.raises(InvalidCredentialsError, match="Wrong user name or password"):
        dialect.parse_obtain(answer(400, body))
    with pytest.raises(InvalidCredentialsError, match="password"):
        dialect.parse_obtain(answer(400, {"password": ["This field is required."]}))


@FUZZ
@given(response=responses)
def test_fuzz_sliding_and_cookie_only_raise_kiosk_errors(response: WireResponse) -> None:
    for dialect in (SLIDING, CookieDialect(COOKIE_SETTINGS)):
        _typed_outcome(dialect.parse_obtain, response)
        _typed_outcome(dialect.parse_refresh, response)
