"""A small test client for the /ws protocol on top of the `websockets` library."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

TIMEOUT_S = 10.0
PASSWORD = "correct horse battery"


class Ws:
    """A connected socket with JSON helpers; every wait has a timeout."""

    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection

    async def send(self, frame: Mapping[str, Any]) -> None:
        await self.connection.send(json.dumps(frame))

    async def recv(self, timeout: float = TIMEOUT_S) -> dict[str, Any]:
        raw = await asyncio.wait_for(self.connection.recv(), timeout)
        frame: dict[str, Any] = json.loads(raw)
        return frame

    async def expect(self, kind: str, timeout: float = TIMEOUT_S, **match: Any) -> dict[str, Any]:
        """The next frame of ``type`` kind (and matching fields), skipping others."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            left = deadline - asyncio.get_running_loop().time()
            frame = await self.recv(max(left, 0.001))
            if frame["type"] == kind and all(frame.get(k) == v for k, v in match.items()):
                return frame

    async def request(self, frame: Mapping[str, Any], timeout: float = TIMEOUT_S) -> dict[str, Any]:
        """Send a frame with a ref and wait for the reply carrying it."""
        await self.send(frame)
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            left = deadline - asyncio.get_running_loop().time()
            reply = await self.recv(max(left, 0.001))
            if reply.get("ref") == frame["ref"]:
                return reply

    async def closed(self, timeout: float = TIMEOUT_S) -> int | None:
        """Wait for the server to close; the close code."""
        await asyncio.wait_for(self.connection.wait_closed(), timeout)
        return self.connection.close_code


@asynccontextmanager
async def ws(
    base_url: str, token: str | None = None, *, origin: str | None = None, **kwargs: Any
) -> AsyncIterator[Ws]:
    """Open /ws on a server (http://host:port), with a Bearer header when a token is given."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    url = base_url.replace("http://", "ws://") + "/ws"
    async with connect(
        url,
        additional_headers=headers,
        origin=origin,  # type: ignore[arg-type]
        open_timeout=TIMEOUT_S,
        **kwargs,
    ) as connection:
        yield Ws(connection)


async def signup(base_url: str, name: str, email: str) -> tuple[str, str]:
    """Register a user over HTTP; (user id, token)."""
    async with httpx.AsyncClient(base_url=base_url, timeout=TIMEOUT_S) as client:
        response = await client.post(
            "/api/auth/register", json={"email": email, "password": PASSWORD, "name": name}
        )
        response.raise_for_status()
        body = response.json()
        return body["user"]["id"], body["token"]
