"""The reference server itself: CareLink simplejwt settings, the ward API, restarts."""

from __future__ import annotations

import subprocess
import sys

import httpx
import jwt
import pytest

pytestmark = pytest.mark.server


def _login(base: str, user: str = "alice", password: str = "alice-secret") -> dict:
    response = httpx.post(f"{base}/api/token/", json={"username": user, "password": password})
    assert response.status_code == 200, response.text
    return response.json()


def test_tokens_follow_the_carelink_settings(simplejwt_server):
    tokens = _login(simplejwt_server.base_url)
    access = jwt.decode(tokens["access"], options={"verify_signature": False})
    refresh = jwt.decode(tokens["refresh"], options={"verify_signature": False})
    assert jwt.get_unverified_header(tokens["access"])["alg"] == "HS256"
    assert access["exp"] - access["iat"] == 15 * 60
    assert refresh["exp"] - refresh["iat"] == 12 * 3600
    assert access["token_type"] == "access"
    assert refresh["token_type"] == "refresh"


def test_ward_api_needs_a_valid_access_token(simplejwt_server):
    base = simplejwt_server.base_url
    assert httpx.get(f"{base}/api/patients/").status_code == 401
    bad = httpx.get(f"{base}/api/me/", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401
    assert bad.json()["code"] == "token_not_valid"
    headers = {"Authorization": f"Bearer {_login(base)['access']}"}
    patients = httpx.get(f"{base}/api/patients/", headers=headers).json()
    assert len(patients) >= 3
    one = httpx.get(f"{base}/api/patients/{patients[0]['id']}/", headers=headers)
    assert one.json()["id"] == patients[0]["id"]
    assert httpx.get(f"{base}/api/nothing/", headers=headers).json() == {"detail": "Not found."}


def test_observation_post_is_idempotent_with_a_key(simplejwt_server):
    base = simplejwt_server.base_url
    headers = {"Authorization": f"Bearer {_login(base)['access']}", "Idempotency-Key": "k-123"}
    patient = httpx.get(f"{base}/api/patients/", headers=headers).json()[0]["id"]
    url = f"{base}/api/patients/{patient}/observations/"
    body = {"kind": "pulse", "value": "72"}
    first = httpx.post(url, json=body, headers=headers)
    again = httpx.post(url, json=body, headers=headers)
    assert first.status_code == 201, first.text
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    listed = httpx.get(url, headers=headers).json()
    assert [o["id"] for o in listed].count(first.json()["id"]) == 1


def test_stats_count_token_calls(simplejwt_server):
    simplejwt_server.reset_stats()
    tokens = _login(simplejwt_server.base_url, "carol", "carol-secret")
    httpx.post(
        f"{simplejwt_server.base_url}/api/token/refresh/", json={"refresh": tokens["refresh"]}
    )
    stats = simplejwt_server.stats()
    assert stats["obtain"] == 1
    assert stats["refresh"] == stats["refresh_ok"] == 1


@pytest.mark.simplejwt_server(rotate=False)
def test_rotation_can_be_switched_off(simplejwt_server):
    tokens = _login(simplejwt_server.base_url)
    answer = httpx.post(
        f"{simplejwt_server.base_url}/api/token/refresh/", json={"refresh": tokens["refresh"]}
    ).json()
    assert set(answer) == {"access"}


def test_restart_keeps_port_and_database(private_simplejwt_server):
    server = private_simplejwt_server
    port = server.port
    tokens = _login(server.base_url)
    server.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.base_url}/_test/stats/")
    server.start()
    assert server.port == port
    refreshed = httpx.post(
        f"{server.base_url}/api/token/refresh/", json={"refresh": tokens["refresh"]}
    )
    assert refreshed.status_code == 200  # the outstanding token survived the restart


def test_runner_cli_shows_usage():
    result = subprocess.run(
        [sys.executable, "-m", "kiosk.testing.server.runner", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0
    assert "--access-s" in result.stdout
