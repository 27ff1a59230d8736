"""Tokens as values that cannot leak, and their claims.

A :class:`Token` wraps the encoded JWT so that ``repr``, ``str`` and f-strings show
only its type and ``jti``: a token that ends up in a log line, an exception or a crash
dump by accident shows nothing usable. The raw value is read only where it must cross
the wire, through :meth:`Token.reveal`.

Claims are decoded with PyJWT. Without a configured key the signature is not checked
(the client is not the party that trusts the token; the server is), but the shape and
types of the claims are, and ``alg: none`` is always refused. With a key, the signature,
algorithm, issuer and audience are verified too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import jwt

from kiosk.core.errors import TokenValidationError
from kiosk.core.settings import ServerSettings

#: Encoded JWTs longer than this are refused before decoding (a hostile body could
#: otherwise make us base64-decode megabytes).
MAX_TOKEN_CHARS = 16 * 1024


@dataclass(frozen=True, slots=True)
class TokenClaims:
    """The claims the kiosk relies on, with their types checked.

    Attributes:
        token_type: "access", "refresh" or "sliding".
        exp: expiry, epoch seconds (server time).
        iat: issued-at, epoch seconds, when present.
        jti: the token's unique id.
        user_id: the user id claim, as a string (simplejwt 5.5 sends a string, 5.3 an int).
        refresh_exp: a sliding token's hard cap, when present.
    """

    token_type: str
    exp: float
    iat: float | None
    jti: str
    user_id: str | None
    refresh_exp: float | None = None


class Token:
    """An encoded JWT with its checked claims; never shows its value."""

    __slots__ = ("_value", "claims")

    def __init__(self, value: str, claims: TokenClaims) -> None:
        self._value = value
        self.claims = claims

    def reveal(self) -> str:
        """The encoded token, for the one place that must send it."""
        return self._value

    @property
    def jti(self) -> str:
        """The token's ``jti`` claim (safe to log)."""
        return self.claims.jti

    def __repr__(self) -> str:
        return f"<Token {self.claims.token_type} jti={self.claims.jti}>"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Token) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> Any:
        # Tokens must not be pickled into crash dumps or multiprocessing queues.
        raise TypeError("tokens cannot be pickled")


def _number(claims: dict[str, Any], name: str, *, required: bool) -> float | None:
    value = claims.get(name)
    if value is None:
        if required:
            raise TokenValidationError(f"token has no {name!r} claim")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TokenValidationError(f"token claim {name!r} is not a number")
    # JSON allows NaN/Infinity and integers of any size: float(10**400) raised a bare
    # OverflowError, and a NaN or infinite exp would poison refresh scheduling.
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise TokenValidationError(f"token claim {name!r} is not a finite number")
    return number


def decode_token(
    value: object,
    settings: ServerSettings,
    *,
    expected_type: str | None = None,
) -> Token:
    """Decode and check an encoded JWT received from the server.

    Args:
        value: what the server sent where a token should be (any JSON value).
        settings: the server's settings (claim names, optional verification key).
        expected_type: the ``token_type`` the token must have, if any.

    Raises:
        TokenValidationError: not a string, not a JWT, ``alg: none``, missing or
            mistyped claims, wrong type, or (with a key) a bad signature/issuer/audience.
    """
    if not isinstance(value, str):
        raise TokenValidationError(f"expected a token string, got {type(value).__name__}")
    if len(value) > MAX_TOKEN_CHARS:
        raise TokenValidationError(f"token is {len(value)} characters long; refusing it")
    if not value.isascii():
        # A JWT is base64url and dots. A JSON string can carry lone surrogates ("\ud800"),
        # on which PyJWT's utf-8 encode raised a bare UnicodeEncodeError.
        raise TokenValidationError("not a JWT (non-ASCII characters)")
    unverified: dict[str, Any] | None = None
    try:
        if settings.verify_key is None:
            # One parse for header and payload (a refresh decodes two tokens; parsing each
            # twice was a third of the client's refresh overhead).
            unverified = jwt.api_jwt.decode_complete(value, options={"verify_signature": False})
            header = unverified["header"]
        else:
            header = jwt.get_unverified_header(value)
    except jwt.PyJWTError as exc:
        raise TokenValidationError(f"not a JWT ({type(exc).__name__})") from None
    algorithm = header.get("alg")
    if not isinstance(algorithm, str) or algorithm.lower() == "none":
        raise TokenValidationError("token is unsigned (alg: none); refusing it")
    if unverified is not None:
        raw = unverified["payload"]
        if not isinstance(raw, dict):
            raise TokenValidationError("token payload is not an object")
        return Token(value, _claims(raw, settings, expected_type))
    try:
        if settings.verify_key is not None:
            if algorithm != settings.algorithm:
                raise TokenValidationError(
                    f"token signed with {algorithm}, expected {settings.algorithm}"
                )
            raw = jwt.decode(
                value,
                settings.verify_key,
                algorithms=[settings.algorithm],
                issuer=settings.issuer,
                audience=settings.audience,
                # Expiry is judged on server-corrected time by the session, not here.
                options={
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                    "verify_aud": settings.audience is not None,
                },
            )
        else:
            raw = jwt.decode(value, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise TokenValidationError(f"token failed verification ({type(exc).__name__})") from None
    if not isinstance(raw, dict):
        raise TokenValidationError("token payload is not an object")
    return Token(value, _claims(raw, settings, expected_type))


def _claims(
    raw: dict[str, Any], settings: ServerSettings, expected_type: str | None
) -> TokenClaims:
    token_type = raw.get(settings.token_type_claim)
    if not isinstance(token_type, str):
        raise TokenValidationError(f"token has no string {settings.token_type_claim!r} claim")
    if expected_type is not None and token_type != expected_type:
        raise TokenValidationError(f"expected a {expected_type} token, got a {token_type} token")
    jti = raw.get(settings.jti_claim)
    if not isinstance(jti, str) or not jti:
        raise TokenValidationError(f"token has no string {settings.jti_claim!r} claim")
    user_id = raw.get(settings.user_id_claim)
    if user_id is not None and (isinstance(user_id, bool) or not isinstance(user_id, str | int)):
        raise TokenValidationError(f"token claim {settings.user_id_claim!r} has a wrong type")
    exp = _number(raw, "exp", required=True)
    assert exp is not None
    return TokenClaims(
        token_type=token_type,
        exp=exp,
        iat=_number(raw, "iat", required=False),
        jti=jti,
        user_id=None if user_id is None else str(user_id),
        refresh_exp=_number(raw, "refresh_exp", required=False),
    )
