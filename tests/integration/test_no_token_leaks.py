"""A whole session's logs, audit log, events and errors never contain a token value."""

from __future__ import annotations

import json
import logging

import httpx
import pytest

from kiosk.core import (
    MemoryVault,
    NeedsReauthenticationError,
    ServerSettings,
    TokenManager,
)
from kiosk.testing.faults import FaultInjector

pytestmark = pytest.mark.server


class RecordingTransport(httpx.AsyncBaseTransport):
    """Forwards to a real transport and keeps every token the server hands out."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.tokens: set[str] = set()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        body = await response.aread()
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        if isinstance(data, dict):
            self.tokens.update(v for k, v in data.items() if k in {"access", "refresh"} and v)
        return httpx.Response(
            response.status_code, headers=response.headers, content=body, request=request
        )

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_no_token_value_in_any_log_output(simplejwt_server, caplog, capfd, tmp_path):
    caplog.set_level(logging.DEBUG)  # every logger, httpx and httpcore included
    faults = FaultInjector()
    recorder = RecordingTransport(faults)
    audit = tmp_path / "audit.jsonl"
    events = []
    errors: list[str] = []
    server = ServerSettings(base_url=simplejwt_server.base_url)
    async with TokenManager(
        server, vault=MemoryVault(), transport=recorder, audit_path=audit
    ) as tm:
        tm.subscribe(events.append)
        await tm.login("alice", "alice-secret")
        api_faults = FaultInjector()
        api_faults.corrupt_token(path="/api/me/")
        async with httpx.AsyncClient(
            base_url=server.base_url, auth=tm.auth, transport=api_faults
        ) as api:
            assert (await api.get("/api/me/")).status_code == 200  # reactive refresh
            await tm.refresh()  # rotation
            faults.status(503, path="/refresh/", times=1)
            await tm.refresh()  # a retry
            errors.append(repr(tm.__dict__))
            # Revoke the refresh token behind the manager's back, then make it refresh.
            async with httpx.AsyncClient() as raw:
                await raw.post(
                    f"{server.base_url}/api/token/blacklist/",
                    json={"refresh": tm.vault.load().refresh},
                )
            with pytest.raises(NeedsReauthenticationError) as caught:
                await tm.refresh()
            errors.append(repr(caught.value))
            errors.append(str(caught.value))
        await tm.login("alice", "alice-secret")
        await tm.logout()
    out, err = capfd.readouterr()
    texts = {
        "log records": "\n".join(
            f"{r.name} {r.getMessage()} {r.args!r} {r.exc_text or ''}" for r in caplog.records
        ),
        "captured output": out + err,
        "audit log": audit.read_text(),
        "events": "\n".join(e.to_json() + repr(e) for e in events),
        "errors and reprs": "\n".join(errors),
    }
    assert len(recorder.tokens) >= 8  # login x2, refreshes: access and refresh tokens
    assert len(caplog.records) > 0
    assert audit.read_text().count("\n") == len(events)
    for token in recorder.tokens:
        signature = token.rsplit(".", 1)[-1]
        for where, text in texts.items():
            assert signature not in text, f"a token signature appears in the {where}"
