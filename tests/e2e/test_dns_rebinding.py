"""The server's own origin is configured, never taken from the Host header (DNS rebinding).

Issue 19 item 7: an upgrade with ``Host: evil.test`` and ``Origin:
http://evil.test`` was accepted, because "same origin" was computed from
Host. A page on evil.test whose name an attacker re-points at 127.0.0.1
sends exactly that from the victim's browser, so it could open sockets and
(with a cookie of that name) write, and read ``/metrics``, whose loopback
rule saw the victim's own address. Now the same origin is the configured
``MOODBOARD_PUBLIC_URL`` (by default the bind address), and ``/metrics``
answers loopback peers only when Host names this server.
"""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from server.access.cookies import COOKIE_NAME
from tests.servers import ServerProcess, running_server, server_env
from tests.wsclient import PASSWORD, signup

pytestmark = pytest.mark.e2e
EVIL = "evil.test"


@pytest.fixture(scope="module")
async def server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ServerProcess]:
    """An embedded server on 127.0.0.1 with no public URL set: its origin is the bind address."""
    tmp: Path = tmp_path_factory.mktemp("rebinding")
    async with running_server(server_env(f"sqlite:///{tmp / 'm.sqlite3'}"), tmp) as process:
        yield process


async def _upgrade_status(server: ServerProcess, host: str, origin: str) -> int:
    """The HTTP status of a WebSocket handshake sent with this Host and Origin."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            (
                f"GET /ws HTTP/1.1\r\nHost: {host}\r\nOrigin: {origin}\r\n"
                "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        status = await asyncio.wait_for(reader.readline(), 10)
        return int(status.split()[1])
    finally:
        writer.close()


async def test_a_rebound_host_cannot_open_a_socket(server: ServerProcess) -> None:
    """Host and Origin both evil.test: 403 before the upgrade; the bind address's own: 101."""
    for host in (EVIL, f"{EVIL}:{server.port}"):
        assert await _upgrade_status(server, host, f"http://{host}") == 403
    own = f"127.0.0.1:{server.port}"
    assert await _upgrade_status(server, own, f"http://{own}") == 101
    assert await _upgrade_status(server, f"localhost:{server.port}", f"http://{own}") == 101


async def test_a_rebound_host_cannot_write_with_a_cookie(server: ServerProcess) -> None:
    """A cookie write whose Host and Origin are evil.test is 403; from the real origin, 201."""
    email = "rebound@example.com"
    await signup(server.url, "Rebound", email)
    async with httpx.AsyncClient(base_url=server.url) as client:
        login = await client.post("/api/auth/login", json={"email": email, "password": PASSWORD})
        assert login.status_code == 200, login.text
        cookie = {"Cookie": f"{COOKIE_NAME}={client.cookies[COOKIE_NAME]}"}
        client.cookies.clear()
        evil = await client.post(
            "/api/projects",
            json={"name": "Rebound"},
            headers={
                **cookie,
                "Host": f"{EVIL}:{server.port}",
                "Origin": f"http://{EVIL}:{server.port}",
            },
        )
        assert evil.status_code == 403, evil.text
        own = await client.post(
            "/api/projects", json={"name": "Mine"}, headers={**cookie, "Origin": server.url}
        )
        assert own.status_code == 201, own.text


async def test_metrics_loopback_rule_does_not_trust_a_rebound_host(server: ServerProcess) -> None:
    """From loopback, /metrics answers when Host names this server, never for evil.test."""
    async with httpx.AsyncClient(base_url=server.url) as client:
        assert (await client.get("/metrics")).status_code == 200
        for host in (EVIL, f"{EVIL}:{server.port}"):
            response = await client.get("/metrics", headers={"Host": host})
            assert response.status_code == 403, (host, response.text)


async def test_a_public_url_is_the_only_same_origin(tmp_path: Path) -> None:
    """With MOODBOARD_PUBLIC_URL set, that origin opens sockets; the bind address's does not."""
    env = server_env(
        f"sqlite:///{tmp_path / 'm.sqlite3'}", MOODBOARD_PUBLIC_URL="https://mood.example.com"
    )
    async with running_server(env, tmp_path) as server:
        assert await _upgrade_status(server, "mood.example.com", "https://mood.example.com") == 101
        own = f"127.0.0.1:{server.port}"
        assert await _upgrade_status(server, own, f"http://{own}") == 403
        assert await _upgrade_status(server, EVIL, f"http://{EVIL}") == 403
