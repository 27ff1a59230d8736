"""The typed errors the core raises.

Every failure a caller can see is one of these, with a message written for the person
who will read it (a nurse, through the Qt shell, or IT in a log). None of them ever
carries a token value: they are built from codes, states and jtis only.
"""

from __future__ import annotations


class KioskError(Exception):
    """Base class of every error the kiosk core raises."""


class ConfigurationError(KioskError):
    """The kiosk's own settings are unusable (bad URL, plain HTTP to a remote host...)."""


class InsecureTransportError(ConfigurationError):
    """HTTPS is required for every server that is not on this machine's loopback."""


class NotLoggedInError(KioskError):
    """An API call or refresh was asked for while no session exists."""


class InvalidCredentialsError(KioskError):
    """The server rejected the user name or password (or the account is inactive)."""


class ServerResponseError(KioskError):
    """The server answered something the kiosk cannot use (malformed, wrong types, HTML...).

    Attributes:
        status_code: the HTTP status of the answer, when there was one.
    """

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class TokenValidationError(ServerResponseError):
    """A token from the server is not a usable JWT (bad shape, claims, signature, expiry)."""


class ServerUnavailableError(KioskError):
    """The server could not be reached or answered 5xx/429; the kiosk keeps retrying.

    Attributes:
        retry_after: the server's ``Retry-After`` header, if it sent one.
    """

    def __init__(self, message: str, *, retry_after: str | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TlsVerificationError(ServerUnavailableError):
    """The server's TLS certificate could not be verified (wrong or missing ``ca_bundle``,
    an expired or mis-issued certificate, or someone in the middle). Retried like an outage,
    but reported as a HIGH security event: it needs IT, not patience."""


class NeedsReauthenticationError(KioskError):
    """The session cannot continue without the nurse typing her password again.

    Raised to every request waiting for a refresh when the refresh fails for good
    (refresh token blacklisted or expired, account disabled, password changed).

    Attributes:
        reason: a machine-readable reason (the server's ``code`` or a kiosk reason).
    """

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class SessionEndedError(KioskError):
    """The session ended (sign-out or the absolute shift cap) while a request waited."""


class GateTimeoutError(KioskError):
    """A request waited longer than its deadline for a valid access token."""


class InvalidTransitionError(KioskError):
    """The session state machine was asked for a transition its table does not allow."""
