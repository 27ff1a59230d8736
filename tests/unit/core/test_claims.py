"""Token decoding and the leak-proof Token (kiosk.core.claims)."""

from __future__ import annotations

import copy
import json
import logging
import math
import pickle
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kiosk_test_helpers import NOW, SECRET, make_jwt, raw_jwt

from kiosk.core.claims import MAX_TOKEN_CHARS, Token, TokenClaims, decode_token
from kiosk.core.errors import ServerResponseError, TokenValidationError
from kiosk.core.settings import ServerSettings

PLAIN = ServerSettings("https://api.example.org")
VERIFYING = ServerSettings("https://api.example.org", verify_key=SECRET)
HS = {"alg": "HS256", "typ": "JWT"}
GOOD_CLAIMS: dict[str, Any] = {
    "token_type": "access",
    "exp": NOW + 300,
    "iat": NOW,
    "jti": "0f6a4b1c",
    "user_id": "7",
}
FUZZ = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


# ------------------------------------------------------------------ valid tokens


def test_decodes_a_simplejwt_access_token() -> None:
    value = make_jwt(GOOD_CLAIMS)
    token = decode_token(value, PLAIN, expected_type="access")
    assert token.claims == TokenClaims(
        token_type="access", exp=NOW + 300.0, iat=float(NOW), jti="0f6a4b1c", user_id="7"
    )
    assert token.reveal() == value
    assert token.jti == "0f6a4b1c"


def test_integer_user_id_of_simplejwt_5_3_becomes_a_string() -> None:
    token = decode_token(make_jwt(GOOD_CLAIMS, user_id=42), PLAIN)
    assert token.claims.user_id == "42"


def test_optional_claims_may_be_absent() -> None:
    token = decode_token(make_jwt(GOOD_CLAIMS, iat=None, user_id=None), PLAIN)
    assert token.claims.iat is None
    assert token.claims.user_id is None
    assert token.claims.refresh_exp is None


def test_sliding_token_refresh_exp() -> None:
    value = make_jwt(GOOD_CLAIMS, token_type="sliding", refresh_exp=NOW + 86400)
    token = decode_token(value, PLAIN, expected_type="sliding")
    assert token.claims.refresh_exp == NOW + 86400.0


def test_fractional_times_are_kept() -> None:
    assert decode_token(make_jwt(GOOD_CLAIMS, exp=NOW + 0.5), PLAIN).claims.exp == NOW + 0.5


def test_custom_claim_names() -> None:
    settings_ = ServerSettings(
        "https://api.example.org", token_type_claim="typ", jti_claim="id", user_id_claim="uid"
    )
    value = make_jwt({"typ": "refresh", "exp": NOW + 60, "id": "abc", "uid": 9})
    token = decode_token(value, settings_, expected_type="refresh")
    assert (token.claims.token_type, token.claims.jti, token.claims.user_id) == (
        "refresh",
        "abc",
        "9",
    )
    # ...and the default names are then not enough.
    with pytest.raises(TokenValidationError, match="'typ'"):
        decode_token(make_jwt(GOOD_CLAIMS), settings_)


def test_without_a_key_the_signature_is_not_checked() -> None:
    token = decode_token(make_jwt(GOOD_CLAIMS, key="some-other-servers-secret-key-0123"), PLAIN)
    assert token.jti == GOOD_CLAIMS["jti"]


def test_expiry_is_not_judged_here() -> None:
    # Expired on arrival is the session's call (on server-corrected time), not the decoder's.
    for settings_ in (PLAIN, VERIFYING):
        token = decode_token(make_jwt(GOOD_CLAIMS, exp=1000, iat=900), settings_)
        assert token.claims.exp == 1000.0


# ------------------------------------------------------------------ verification with a key


def test_with_a_key_a_good_signature_passes() -> None:
    assert decode_token(make_jwt(GOOD_CLAIMS), VERIFYING).jti == GOOD_CLAIMS["jti"]


def test_with_a_key_a_bad_signature_is_refused() -> None:
    forged = make_jwt(GOOD_CLAIMS, key="attacker-secret-attacker-secret-0123456789")
    with pytest.raises(TokenValidationError, match="failed verification"):
        decode_token(forged, VERIFYING)


def test_with_a_key_a_tampered_payload_is_refused() -> None:
    header, _, signature = make_jwt(GOOD_CLAIMS).split(".")
    tampered_payload = raw_jwt({}, {**GOOD_CLAIMS, "user_id": "1"}).split(".")[1]
    with pytest.raises(TokenValidationError):
        decode_token(f"{header}.{tampered_payload}.{signature}", VERIFYING)


def test_with_a_key_another_algorithm_is_refused() -> None:
    value = make_jwt(GOOD_CLAIMS, key=SECRET * 2, algorithm="HS512")
    with pytest.raises(TokenValidationError, match="HS512, expected HS256"):
        decode_token(value, VERIFYING)


def test_issuer_and_audience_are_checked_when_configured() -> None:
    strict = ServerSettings(
        "https://api.example.org", verify_key=SECRET, issuer="carelink", audience="kiosk"
    )
    good = make_jwt(GOOD_CLAIMS, iss="carelink", aud="kiosk")
    assert decode_token(good, strict).jti == GOOD_CLAIMS["jti"]
    for bad in (
        make_jwt(GOOD_CLAIMS, iss="elsewhere", aud="kiosk"),
        make_jwt(GOOD_CLAIMS, iss="carelink", aud="someone-else"),
        make_jwt(GOOD_CLAIMS, aud="kiosk"),
        make_jwt(GOOD_CLAIMS, iss="carelink"),
    ):
        with pytest.raises(TokenValidationError):
            decode_token(bad, strict)


# ------------------------------------------------------------------ refusals


@pytest.mark.parametrize("value", [None, 42, 4.2, True, b"a.b.c", ["a.b.c"], {"token": "x"}])
def test_non_strings_are_refused(value: object) -> None:
    with pytest.raises(TokenValidationError, match="expected a token string"):
        decode_token(value, PLAIN)


def test_token_validation_error_is_a_server_response_error() -> None:
    with pytest.raises(ServerResponseError):
        decode_token(None, PLAIN)


def test_oversized_tokens_are_refused_before_decoding() -> None:
    padding = "x" * MAX_TOKEN_CHARS
    huge = make_jwt(GOOD_CLAIMS, padding=padding)
    assert len(huge) > MAX_TOKEN_CHARS
    with pytest.raises(TokenValidationError, match="characters long"):
        decode_token(huge, PLAIN)


def test_a_token_of_exactly_the_limit_is_still_read() -> None:
    base = make_jwt(GOOD_CLAIMS, padding="")
    # Each 3 padding characters add 4 base64 characters to the payload segment.
    padding = "x" * ((MAX_TOKEN_CHARS - len(base)) * 3 // 4)
    value = make_jwt(GOOD_CLAIMS, padding=padding)
    assert len(value) <= MAX_TOKEN_CHARS
    assert decode_token(value, PLAIN).jti == GOOD_CLAIMS["jti"]


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
def test_unsigned_tokens_are_refused(alg: str) -> None:
    value = raw_jwt({"alg": alg, "typ": "JWT"}, GOOD_CLAIMS, b"")
    for settings_ in (PLAIN, VERIFYING):
        with pytest.raises(TokenValidationError, match="alg: none"):
            decode_token(value, settings_)


def test_unsigned_tokens_made_by_pyjwt_are_refused() -> None:
    value = make_jwt(GOOD_CLAIMS, key=None, algorithm="none")
    with pytest.raises(TokenValidationError, match="alg: none"):
        decode_token(value, PLAIN)


@pytest.mark.parametrize("header", [{}, {"typ": "JWT"}, {"alg": None}, {"alg": 256}, {"alg": []}])
def test_headers_without_a_string_alg_are_refused(header: dict[str, Any]) -> None:
    with pytest.raises(TokenValidationError):
        decode_token(raw_jwt(header, GOOD_CLAIMS), PLAIN)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "abc",
        "a.b",
        "a.b.c",
        "a.b.c.d",
        "....",
        "eyJhbGciOiJIUzI1NiJ9",
        "not a jwt at all",
        "<html><body>502 Bad Gateway</body></html>",
        "Bearer eyJhbGciOiJIUzI1NiJ9.e30.c2ln",
        "\ud800.e30.c2ln",  # a lone surrogate, as json.loads('"\\ud800"') produces
        "ünïcødé.ünïcødé.ünïcødé",
    ],
)
def test_non_jwt_strings_are_refused(value: str) -> None:
    with pytest.raises(TokenValidationError, match="not a JWT"):
        decode_token(value, PLAIN)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ([1, 2, 3], "not a JWT|payload|failed"),
        ("a string", "not a JWT|payload|failed"),
        (12, "not a JWT|payload|failed"),
        (b"\xff\xfe not json", "not a JWT|failed verification"),
        (b"[" * 10_000, "not a JWT|failed verification"),
    ],
)
def test_payloads_that_are_not_objects_are_refused(payload: Any, message: str) -> None:
    with pytest.raises(TokenValidationError, match=message):
        decode_token(raw_jwt(HS, payload), PLAIN)


def test_deeply_nested_header_is_refused() -> None:
    with pytest.raises(TokenValidationError):
        decode_token(raw_jwt(b"[" * 10_000, GOOD_CLAIMS), PLAIN)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"exp": None}, "no 'exp' claim"),
        ({"exp": str(NOW + 300)}, "claim 'exp' is not a number"),
        ({"exp": True}, "claim 'exp' is not a number"),
        ({"exp": [NOW]}, "claim 'exp' is not a number"),
        ({"exp": {"t": NOW}}, "claim 'exp' is not a number"),
        ({"iat": "yesterday"}, "claim 'iat' is not a number"),
        ({"iat": False}, "claim 'iat' is not a number"),
        ({"refresh_exp": "later"}, "claim 'refresh_exp' is not a number"),
        ({"jti": None}, "'jti'"),
        ({"jti": ""}, "'jti'"),
        ({"jti": 12345}, "'jti'|InvalidJTIError"),  # PyJWT checks it when verifying
        ({"token_type": None}, "'token_type'"),
        ({"token_type": 1}, "'token_type'"),
        ({"user_id": True}, "'user_id' has a wrong type"),
        ({"user_id": 1.5}, "'user_id' has a wrong type"),
        ({"user_id": ["7"]}, "'user_id' has a wrong type"),
        ({"user_id": {"id": 7}}, "'user_id' has a wrong type"),
    ],
)
def test_missing_or_mistyped_claims_are_refused(overrides: dict[str, Any], message: str) -> None:
    value = make_jwt(GOOD_CLAIMS, **overrides)
    for settings_ in (PLAIN, VERIFYING):
        with pytest.raises(TokenValidationError, match=message):
            decode_token(value, settings_)


@pytest.mark.parametrize("raw", ["NaN", "Infinity", "-Infinity", "1" + "0" * 400, "1e400"])
@pytest.mark.parametrize("claim", ["exp", "iat", "refresh_exp"])
def test_non_finite_or_overflowing_times_are_refused(raw: str, claim: str) -> None:
    # JSON (as Python reads it) allows NaN, Infinity and integers of any size. A NaN exp
    # would make every comparison with it false; 10**400 made float() overflow.
    payload = json.dumps({k: v for k, v in GOOD_CLAIMS.items() if k != claim})
    payload = payload[:-1] + f', "{claim}": {raw}}}'
    with pytest.raises(TokenValidationError, match=f"claim '{claim}' is not a finite number"):
        decode_token(raw_jwt(HS, payload.encode()), PLAIN)


@pytest.mark.parametrize(("actual", "expected"), [("refresh", "access"), ("access", "refresh")])
def test_wrong_token_type_is_refused(actual: str, expected: str) -> None:
    value = make_jwt(GOOD_CLAIMS, token_type=actual)
    with pytest.raises(TokenValidationError, match=f"expected a {expected} token"):
        decode_token(value, PLAIN, expected_type=expected)
    assert decode_token(value, PLAIN).claims.token_type == actual


def test_errors_never_carry_the_token() -> None:
    value = make_jwt(GOOD_CLAIMS, token_type="refresh", exp="soon")
    with pytest.raises(TokenValidationError) as info:
        decode_token(value, PLAIN)
    assert value not in str(info.value)
    assert value.split(".")[2] not in repr(info.value)
    assert info.value.__cause__ is None  # no chained PyJWT error with internals


# ------------------------------------------------------------------ Token never leaks


def test_repr_str_and_format_show_only_type_and_jti() -> None:
    value = make_jwt(GOOD_CLAIMS)
    token = decode_token(value, PLAIN)
    shown = [repr(token), str(token), f"{token}", f"{token!r}", format(token), repr([token])]
    for text in shown:
        assert value not in text
        for segment in value.split("."):
            assert segment not in text
        assert "access" in text
        assert "0f6a4b1c" in text


def test_logging_a_token_does_not_leak_it(caplog: pytest.LogCaptureFixture) -> None:
    value = make_jwt(GOOD_CLAIMS)
    token = decode_token(value, PLAIN)
    with caplog.at_level(logging.INFO):
        logging.getLogger("kiosk.test").info("got %s and %r", token, token)
    assert "jti=0f6a4b1c" in caplog.text
    assert value.split(".")[1] not in caplog.text


def test_an_exception_mentioning_a_token_does_not_leak_it() -> None:
    value = make_jwt(GOOD_CLAIMS)
    token = decode_token(value, PLAIN)
    error = RuntimeError(f"could not use {token}")
    assert value not in str(error)


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_tokens_cannot_be_pickled(protocol: int) -> None:
    token = decode_token(make_jwt(GOOD_CLAIMS), PLAIN)
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(token, protocol=protocol)
    with pytest.raises(TypeError):
        pickle.dumps({"session": [token]}, protocol=protocol)


def test_tokens_cannot_be_copied_through_reduce() -> None:
    # copy falls back on __reduce_ex__, which must not hand the value out either.
    token = decode_token(make_jwt(GOOD_CLAIMS), PLAIN)
    with pytest.raises(TypeError):
        copy.copy(token)


def test_tokens_have_no_instance_dict() -> None:
    token = decode_token(make_jwt(GOOD_CLAIMS), PLAIN)
    assert not hasattr(token, "__dict__")  # vars(token) cannot dump the value
    with pytest.raises(AttributeError):
        token.extra = 1  # type: ignore[attr-defined]


def test_equality_and_hash_follow_the_value() -> None:
    value = make_jwt(GOOD_CLAIMS)
    a, b = decode_token(value, PLAIN), decode_token(value, PLAIN)
    other = decode_token(make_jwt(GOOD_CLAIMS, exp=NOW + 301), PLAIN)
    assert a == b
    assert hash(a) == hash(b)
    assert a != other
    assert a != value  # a token is not equal to its bare string
    assert len({a, b, other}) == 2


# ------------------------------------------------------------------ fuzzing

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.sampled_from([10**400, -(10**400)])
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)
claim_values: dict[str, st.SearchStrategy[Any]] = {
    "token_type": st.sampled_from(["access", "refresh", "sliding"]) | json_values,
    "exp": st.integers(0, 2**40) | st.floats() | json_values,
    "iat": st.integers(0, 2**40) | json_values,
    "jti": st.text(max_size=40) | json_values,
    "user_id": st.integers() | st.text(max_size=10) | json_values,
    "refresh_exp": st.integers(0, 2**40) | json_values,
    "iss": json_values,
    "aud": json_values,
    "sub": json_values,
    "nbf": json_values,
}
#: Mostly-valid required claims, so that the checks behind the first ones are reached too.
required_claims = st.fixed_dictionaries(
    {
        "token_type": st.sampled_from(["access", "refresh"]) | claim_values["token_type"],
        "jti": st.text(min_size=1, max_size=10) | claim_values["jti"],
        "exp": st.integers(0, 2**40) | claim_values["exp"],
    },
    optional={k: v for k, v in claim_values.items() if k not in {"token_type", "jti", "exp"}},
)
claim_dicts = st.fixed_dictionaries({}, optional=claim_values) | required_claims
headers = st.fixed_dictionaries(
    {"alg": st.sampled_from(["HS256", "HS512", "RS256", "none", "None"]) | json_values},
    optional={"typ": json_values, "kid": json_values, "b64": json_values, "crit": json_values},
)
garbage_strings = (
    st.text()
    | st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.=+/")
    # Lone surrogates: what json.loads makes of "\ud800" in a hostile body.
    | st.tuples(st.text(max_size=30), st.characters(categories=["Cs"]), st.text(max_size=30)).map(
        "".join
    )
    | st.binary().map(lambda raw: raw.decode("latin-1"))
    | st.lists(st.text(max_size=30), min_size=2, max_size=5).map(".".join)
)
STRICT = ServerSettings(
    "https://api.example.org", verify_key=SECRET, issuer="carelink", audience="kiosk"
)


def _check_token(token: Token) -> None:
    claims = token.claims
    assert isinstance(claims.token_type, str)
    assert isinstance(claims.jti, str)
    assert claims.jti
    assert isinstance(claims.exp, float)
    assert math.isfinite(claims.exp)
    for optional in (claims.iat, claims.refresh_exp):
        assert optional is None or (isinstance(optional, float) and math.isfinite(optional))
    assert claims.user_id is None or isinstance(claims.user_id, str)


def _decode_or_typed_error(value: object, settings_: ServerSettings, **kwargs: Any) -> None:
    """decode_token returns a well-typed Token or raises TokenValidationError, nothing else."""
    try:
        token = decode_token(value, settings_, **kwargs)
    except TokenValidationError as exc:
        message = str(exc)
    else:
        assert isinstance(value, str)
        assert token.reveal() == value
        _check_token(token)
        return
    if isinstance(value, str) and len(value) >= 16:
        assert value not in message


@FUZZ
@given(value=garbage_strings)
def test_fuzz_garbage_strings_only_raise_token_validation_error(value: str) -> None:
    for settings_ in (PLAIN, VERIFYING):
        _decode_or_typed_error(value, settings_, expected_type="access")


@FUZZ
@given(value=json_values.filter(lambda v: not isinstance(v, str)))
def test_fuzz_non_string_json_values_are_refused(value: Any) -> None:
    with pytest.raises(TokenValidationError):
        decode_token(value, PLAIN)


@FUZZ
@given(header=headers, payload=claim_dicts, expected=st.sampled_from([None, "access", "refresh"]))
def test_fuzz_random_claims_and_headers_only_raise_token_validation_error(
    header: dict[str, Any], payload: dict[str, Any], expected: str | None
) -> None:
    unsigned = raw_jwt(header, payload)
    signed = raw_jwt(header, payload, key=SECRET)
    for value in (unsigned, signed):
        for settings_ in (PLAIN, VERIFYING, STRICT):
            _decode_or_typed_error(value, settings_, expected_type=expected)


@FUZZ
@given(header=json_values | st.binary(max_size=40), payload=json_values | st.binary(max_size=40))
def test_fuzz_any_json_segments_only_raise_token_validation_error(
    header: Any, payload: Any
) -> None:
    for settings_ in (PLAIN, VERIFYING):
        _decode_or_typed_error(raw_jwt(header, payload, key=SECRET), settings_)


@FUZZ
@given(
    token_type=st.text(min_size=1, max_size=10),
    exp=st.integers(0, 2**40) | st.floats(0, 2**40),
    iat=st.none() | st.integers(0, 2**40) | st.floats(0, 2**40),
    jti=st.text(min_size=1, max_size=40),
    user_id=st.none() | st.integers(-(2**63), 2**63) | st.text(max_size=20),
    refresh_exp=st.none() | st.integers(0, 2**40),
)
def test_fuzz_well_formed_claims_decode_to_their_values(
    token_type: str,
    exp: float,
    iat: float | None,
    jti: str,
    user_id: int | str | None,
    refresh_exp: int | None,
) -> None:
    claims = {
        "token_type": token_type,
        "exp": exp,
        "iat": iat,
        "jti": jti,
        "user_id": user_id,
        "refresh_exp": refresh_exp,
    }
    value = make_jwt({k: v for k, v in claims.items() if v is not None})
    for settings_ in (PLAIN, VERIFYING):
        token = decode_token(value, settings_, expected_type=token_type)
        assert token.claims == TokenClaims(
            token_type=token_type,
            exp=float(exp),
            iat=None if iat is None else float(iat),
            jti=jti,
            user_id=None if user_id is None else str(user_id),
            refresh_exp=None if refresh_exp is None else float(refresh_exp),
        )
