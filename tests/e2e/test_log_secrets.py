"""No token in any log line of a real server, from any source (docs/protocol.md §2, issue 19).

A ``moodboard serve`` process at debug level, its whole output captured, is
driven through every route and socket step that carries a token: sign-up and
login (answers with tokens, the cookie), bearer, cookie and query-string
calls, sessions, invitations (create, list, accept with the token in the path,
refused and unauthenticated accepts), the socket (Bearer at the handshake, a
token in the query string, the ``auth`` frame, a bad token), and service-account
keys (the worker API, and refused on a user endpoint and on the socket). Then
every line of the output is searched for every secret used.
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect

from server.access.cookies import COOKIE_NAME
from tests.servers import ServerProcess, running_server, server_env

pytestmark = pytest.mark.e2e
PASSWORD = "correct horse battery"
ADMIN = ("logscan-admin@example.com", "admin horse battery staple")
TIMEOUT_S = 10.0


async def _create_admin(env: dict[str, str], cwd: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "server.cli", "create-admin", "--email", ADMIN[0],
        "--password", ADMIN[1], "--migrate", env=env, cwd=cwd,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, out.decode(errors="replace")


async def _socket_frames(
    server: ServerProcess, *, headers: dict[str, str], query: str = "", first: Any = None
) -> list[dict[str, Any]]:
    """Open /ws, optionally send ``first``, and collect frames until ready or a close."""
    url = server.url.replace("http://", "ws://") + "/ws" + query
    frames: list[dict[str, Any]] = []
    async with connect(url, additional_headers=headers, open_timeout=TIMEOUT_S) as ws:
        if first is not None:
            await ws.send(json.dumps(first))
        try:
            while True:
                frame = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT_S))
                frames.append(frame)
                if frame["type"] == "ready":
                    await ws.send(json.dumps({"type": "ping", "ref": "p"}))
                if frame["type"] == "pong":
                    break
        except Exception:  # closed by the server (a refused token): what the test wants
            frames.append({"type": "closed", "code": ws.close_code})
    return frames


async def _exercise(server: ServerProcess, secrets: list[str]) -> None:
    """Every token-carrying call; each secret met along the way goes into ``secrets``."""
    async with httpx.AsyncClient(base_url=server.url, timeout=TIMEOUT_S) as http:
        owner_email = f"owner-{uuid.uuid4().hex[:8]}@example.com"
        body = {"email": owner_email, "password": PASSWORD, "name": "Owner"}
        registered = await http.post("/api/auth/register", json=body)
        assert registered.status_code == 201, registered.text
        owner_token = registered.json()["token"]
        secrets += [owner_token, registered.cookies[COOKIE_NAME]]
        http.cookies.clear()
        assert (await http.post("/api/auth/register", json=body)).status_code == 409

        guest_email = f"guest-{uuid.uuid4().hex[:8]}@example.com"
        guest = await http.post(
            "/api/auth/register", json={"email": guest_email, "password": PASSWORD, "name": "G"}
        )
        guest_token = guest.json()["token"]
        secrets.append(guest_token)
        http.cookies.clear()

        wrong = {"email": owner_email, "password": "not the right password"}
        assert (await http.post("/api/auth/login", json=wrong)).status_code == 401
        login = await http.post(
            "/api/auth/login", json={"email": owner_email, "password": PASSWORD}
        )
        assert login.status_code == 200, login.text
        login_token, cookie = login.json()["token"], login.cookies[COOKIE_NAME]
        secrets += [login_token, cookie]
        by_cookie = await http.get("/api/me")  # the session cookie from the login
        assert by_cookie.status_code == 200, by_cookie.text
        http.cookies.clear()

        owner = {"Authorization": f"Bearer {owner_token}"}
        assert (await http.get("/api/me", headers=owner)).status_code == 200
        query = await http.get(f"/api/me?access_token={login_token}&token={login_token}")
        assert query.status_code == 401
        assert (
            await http.get("/api/me", headers={"Authorization": "Bearer mbs_forged"})
        ).status_code == 401
        garbage = "Bearer " + "g" * 43
        assert (await http.get("/api/me", headers={"Authorization": garbage})).status_code == 401
        secrets.append("g" * 43)
        sessions = (await http.get("/api/me/sessions", headers=owner)).json()
        other = next(s["id"] for s in sessions if not s["current"])
        assert (await http.delete(f"/api/me/sessions/{other}", headers=owner)).status_code == 204

        pid = (await http.post("/api/projects", json={"name": "Logs"}, headers=owner)).json()["id"]
        invitations = []
        for role in ("editor", "viewer", "viewer"):
            created = await http.post(
                f"/api/projects/{pid}/invitations",
                json={"email": guest_email, "role": role},
                headers=owner,
            )
            assert created.status_code == 201, created.text
            invitations.append(created.json())
            secrets.append(created.json()["token"])
        listed = await http.get(f"/api/projects/{pid}/invitations", headers=owner)
        assert listed.status_code == 200, listed.text
        accept, again, revoked = invitations
        guest_auth = {"Authorization": f"Bearer {guest_token}"}
        unauthenticated = await http.post(f"/api/invitations/{accept['token']}/accept")
        assert unauthenticated.status_code == 401
        accepted = await http.post(f"/api/invitations/{accept['token']}/accept", headers=guest_auth)
        assert accepted.status_code == 200, accepted.text
        used = await http.post(f"/api/invitations/{accept['token']}/accept", headers=guest_auth)
        assert used.status_code == 410
        removed = await http.delete(
            f"/api/projects/{pid}/invitations/{revoked['id']}", headers=owner
        )
        assert removed.status_code == 204
        gone = await http.post(f"/api/invitations/{revoked['token']}/accept", headers=guest_auth)
        assert gone.status_code == 404
        shapeless = "not-a-token-" + uuid.uuid4().hex
        secrets.append(shapeless)
        unknown = await http.post(f"/api/invitations/{shapeless}/accept", headers=guest_auth)
        assert unknown.status_code == 404
        assert again["token"] in secrets  # never used: still must not be logged at creation

        admin = await http.post("/api/auth/login", json={"email": ADMIN[0], "password": ADMIN[1]})
        assert admin.status_code == 200, admin.text
        admin_token, admin_cookie = admin.json()["token"], admin.cookies[COOKIE_NAME]
        secrets += [admin_token, admin_cookie]
        http.cookies.clear()
        account = await http.post(
            "/api/admin/service-accounts",
            json={"name": "renderer"},
            headers={"Authorization": f"Bearer {admin_token}"},
        )
        assert account.status_code == 201, account.text
        key = account.json()["key"]
        secrets.append(key)
        worker = {"Authorization": f"Bearer {key}"}
        claim = await http.post("/api/worker/claim", json={"worker_id": "w1"}, headers=worker)
        assert claim.status_code in (200, 204), claim.text
        assert (await http.get("/api/me", headers=worker)).status_code == 401

        ready = await _socket_frames(server, headers=owner)
        assert ready[0]["type"] == "ready"
        in_query = await _socket_frames(
            server,
            headers={},
            query=f"?token={guest_token}",
            first={"type": "auth", "token": guest_token},
        )
        assert in_query[0]["type"] == "ready"
        bad = await _socket_frames(server, headers={"Authorization": "Bearer mbs_" + "b" * 43})
        assert bad[-1] == {"type": "closed", "code": 4401}
        secrets.append("mbs_" + "b" * 43)
        by_key = await _socket_frames(server, headers={}, first={"type": "auth", "token": key})
        assert by_key[-1] == {"type": "closed", "code": 4401}
        revoked_cookie = await _socket_frames(server, headers={"Cookie": f"{COOKIE_NAME}={cookie}"})
        assert revoked_cookie[-1] == {"type": "closed", "code": 4401}
        cookie_socket = await _socket_frames(
            server, headers={"Cookie": f"{COOKIE_NAME}={admin_cookie}"}
        )
        assert cookie_socket[0]["type"] == "ready"

        assert (await http.post("/api/auth/logout", headers=owner)).status_code == 204
        assert (await http.get("/api/me", headers=owner)).status_code == 401


async def test_no_token_reaches_any_log_line(tmp_path: Path) -> None:
    """Every token used against a real server is absent from every line it printed."""
    env = server_env("sqlite:///data/moodboard.sqlite3", MOODBOARD_LOG_LEVEL="debug")
    await _create_admin(env, tmp_path)
    secrets: list[str] = [PASSWORD]
    async with running_server(env, tmp_path, cwd=tmp_path) as server:
        await _exercise(server, secrets)
        assert await server.stop() == 0
    lines = server.log().splitlines()
    paths = [line for line in lines if '"path": "/api/invitations/' in line]
    assert len(paths) == 5  # the calls were logged, with the token's segment redacted
    assert all("/api/invitations/[redacted]/accept" in line for line in paths)
    # uvicorn's per-socket line is there (at debug), without its query string (server/log.py)
    accepted = [line for line in lines if "WebSocket /ws" in line and "[accepted]" in line]
    assert accepted
    assert not any("/ws?" in line for line in accepted)
    leaks = [(secret[:8], line) for secret in secrets for line in lines if _shows(secret, line)]
    assert leaks == [], "\n".join(f"{s}...: {line}" for s, line in leaks[:20])


def _shows(secret: str, line: str) -> bool:
    """Whether ``line`` holds ``secret`` or any 12 characters of it in a row.

    A log line may show part of a token (websockets cuts long frames in the
    middle and prints the end): a part is a leak too.
    """
    window = min(12, len(secret))
    return any(secret[i : i + window] in line for i in range(len(secret) - window + 1))
