"""Rotating MOODBOARD_SECRET_KEY signs nobody out (issue 23 item 8; docs/security.md).

A server whose key was rotated (the new one in ``MOODBOARD_SECRET_KEY``, the
old one in ``MOODBOARD_SECRET_KEY_PREVIOUS``) still accepts the cookies the
old key signed, over REST (reads and writes) and on the socket; it signs new
cookies with the new key only, refuses a cookie signed with any other key,
and counts the old key's uses in /metrics.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect

from server.access.cookies import COOKIE_NAME, sign, unsign
from tests.servers import running_server, server_env
from tests.wsclient import PASSWORD, TIMEOUT_S, Ws, signup

pytestmark = pytest.mark.e2e
NEW_KEY = "rotation-new-" + hashlib.sha256(b"the key after the rotation").hexdigest()
OLD_KEY = "rotation-old-" + hashlib.sha256(b"the key before the rotation").hexdigest()


async def test_cookies_of_the_retired_key_still_work_and_new_ones_use_the_new_key(
    tmp_path: Path,
) -> None:
    """An old-key cookie reads, writes and opens a socket; a login's cookie carries the new
    key's signature; a cookie under an unknown key is refused; /metrics counts old-key uses."""
    env = server_env(
        f"sqlite:///{tmp_path / 'm.sqlite3'}",
        MOODBOARD_SECRET_KEY=NEW_KEY,
        MOODBOARD_SECRET_KEY_PREVIOUS=OLD_KEY,
    )
    async with running_server(env, tmp_path) as server:
        email = f"rotation-{uuid.uuid4().hex[:8]}@example.com"
        _, token = await signup(server.url, "Rotated", email)
        # What the server handed out before the rotation, for this session.
        old_cookie = {"Cookie": f"{COOKIE_NAME}={sign(token, OLD_KEY)}"}
        forged = {"Cookie": f"{COOKIE_NAME}={sign(token, secrets.token_urlsafe(32))}"}
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            assert (await client.get("/api/me", headers=old_cookie)).status_code == 200
            write = await client.post(
                "/api/projects",
                json={"name": "Kept"},
                headers={**old_cookie, "Origin": server.url},
            )
            assert write.status_code == 201, write.text
            assert (await client.get("/api/me", headers=forged)).status_code == 401

            login = await client.post(
                "/api/auth/login", json={"email": email, "password": PASSWORD}
            )
            assert login.status_code == 200, login.text
            issued = login.cookies[COOKIE_NAME]
            assert unsign(issued, (NEW_KEY,)) == login.json()["token"]
            assert unsign(issued, (OLD_KEY,)) is None

        async with _cookie_socket(server.url, old_cookie) as sock:
            await sock.expect("ready")
            joined = await sock.request(
                {"type": "join", "ref": "j", "project_id": write.json()["id"]}
            )
            assert joined["type"] == "joined", joined
        async with _cookie_socket(server.url, forged) as sock:
            assert await sock.closed() == 4401

        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            scraped = (await client.get("/metrics")).text
        # GET /api/me, POST /api/projects and the socket: three uses of the old key.
    assert 'moodboard_auth_retired_key_total{kind="cookie"} 3.0' in scraped


@asynccontextmanager
async def _cookie_socket(base_url: str, cookie: dict[str, str]) -> AsyncIterator[Ws]:
    """/ws opened with a session cookie (as a browser of the same origin does)."""
    url = base_url.replace("http://", "ws://") + "/ws"
    async with connect(url, additional_headers=cookie, open_timeout=TIMEOUT_S) as connection:
        yield Ws(connection)
