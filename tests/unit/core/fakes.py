"""An in-memory simplejwt look-alike for unit tests of the manager's logic (not of the wire).

It mints real HS256 JWTs on the given clock (plus ``server_offset``), rotates and blacklists
refresh tokens like simplejwt, checks access tokens on ``/api/...`` and counts every call.
Integration tests use the real reference server instead.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from email.utils import formatdate

import httpx
import jwt

SECRET = "unit-test-secret-unit-test-secret-0123456789"
USERS = {"alice": "alice-secret", "bob": "bob-secret"}


class FakeSimpleJWT:
    """A handler for ``httpx.MockTransport`` that behaves like simplejwt with rotation."""

    def __init__(
        self,
        clock,
        *,
        access_s: float = 900,
        refresh_s: float = 43200,
        server_offset: float = 0.0,
        rotate: bool = True,
    ) -> None:
        self.clock = clock
        self.access_s = access_s
        self.refresh_s = refresh_s
        self.server_offset = server_offset
        self.rotate = rotate
        self.blacklisted: set[str] = set()
        self.calls: dict[str, int] = {"obtain": 0, "refresh": 0, "blacklist": 0, "api": 0}
        self.api_401 = 0
        #: If set, refreshes wait for it (to pile up waiters).
        self.refresh_gate: asyncio.Event | None = None
        #: If set, answers refreshes instead of the normal logic.
        self.refresh_override: Callable[[httpx.Request], httpx.Response] | None = None
        self.obtain_override: Callable[[httpx.Request], httpx.Response] | None = None
        self.issued: list[str] = []

    def now(self) -> float:
        return self.clock.time() + self.server_offset

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def mint(self, token_type: str, user_id: int = 1, lifetime: float | None = None) -> str:
        now = int(self.now())
        life = (
            lifetime
            if lifetime is not None
            else (self.access_s if token_type == "access" else self.refresh_s)
        )
        claims = {
            "token_type": token_type,
            "exp": now + int(life),
            "iat": now,
            "jti": uuid.uuid4().hex,
            "user_id": str(user_id),
        }
        token = jwt.encode(claims, SECRET, algorithm="HS256")
        self.issued.append(token)
        return token

    def _json(self, status: int, body: object) -> httpx.Response:
        headers = {"date": formatdate(self.now(), usegmt=True)}
        return httpx.Response(status, json=body, headers=headers)

    def _valid(self, token: str, token_type: str) -> dict | None:
        try:
            claims = jwt.decode(
                token,
                SECRET,
                algorithms=["HS256"],
                options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
            )
        except jwt.PyJWTError:
            return None
        if claims.get("token_type") != token_type or claims["exp"] <= self.now():
            return None
        if claims["jti"] in self.blacklisted:
            return None
        return claims

    async def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        body = json.loads(request.content or b"{}")
        if path == "/api/token/":
            self.calls["obtain"] += 1
            if self.obtain_override is not None:
                return self.obtain_override(request)
            if USERS.get(body.get("username")) != body.get("password"):
                return self._json(
                    401, {"detail": "No active account found with the given credentials"}
                )
            return self._json(200, {"refresh": self.mint("refresh"), "access": self.mint("access")})
        if path == "/api/token/refresh/":
            self.calls["refresh"] += 1
            if self.refresh_gate is not None:
                await self.refresh_gate.wait()
            if self.refresh_override is not None:
                return self.refresh_override(request)
            claims = self._valid(body.get("refresh", ""), "refresh")
            if claims is None:
                return self._json(
                    401, {"detail": "Token is blacklisted", "code": "token_not_valid"}
                )
            answer = {"access": self.mint("access")}
            if self.rotate:
                self.blacklisted.add(claims["jti"])
                answer["refresh"] = self.mint("refresh")
            return self._json(200, answer)
        if path == "/api/token/blacklist/":
            self.calls["blacklist"] += 1
            claims = self._valid(body.get("refresh", ""), "refresh")
            if claims is None:
                return self._json(401, {"detail": "Token is invalid", "code": "token_not_valid"})
            self.blacklisted.add(claims["jti"])
            return self._json(200, {})
        if path.startswith("/api/"):
            self.calls["api"] += 1
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            if scheme != "Bearer" or self._valid(token, "access") is None:
                self.api_401 += 1
                return self._json(
                    401,
                    {
                        "detail": "Given token not valid for any token type",
                        "code": "token_not_valid",
                    },
                )
            return self._json(200, {"username": "alice"})
        return self._json(404, {"detail": "Not found."})
