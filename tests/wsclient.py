"""A small test client for the /ws protocol on top of the `websockets` library."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from server.client import RestClient

TIMEOUT_S = 10.0
PASSWORD = "correct horse battery"


class Ws:
    """A connected socket with JSON helpers; every wait has a timeout.

    Frames passed over while waiting for a particular one are kept, in order,
    for the next ``recv``/``expect``: an event that arrives before an ack is
    not lost to a test waiting for the ack.
    """

    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection
        self.backlog: list[dict[str, Any]] = []

    async def send(self, frame: Mapping[str, Any]) -> None:
        await self.connection.send(json.dumps(frame))

    async def _recv_wire(self, timeout: float) -> dict[str, Any]:
        raw = await asyncio.wait_for(self.connection.recv(), timeout)
        frame: dict[str, Any] = json.loads(raw)
        return frame

    async def recv(self, timeout: float = TIMEOUT_S) -> dict[str, Any]:
        """The next frame (the oldest kept one first)."""
        if self.backlog:
            return self.backlog.pop(0)
        return await self._recv_wire(timeout)

    async def first(
        self, matches: Callable[[dict[str, Any]], bool], timeout: float = TIMEOUT_S
    ) -> dict[str, Any]:
        """The first frame that ``matches``; the others are kept for later."""
        for index, frame in enumerate(self.backlog):
            if matches(frame):
                return self.backlog.pop(index)
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            left = deadline - asyncio.get_running_loop().time()
            frame = await self._recv_wire(max(left, 0.001))
            if matches(frame):
                return frame
            self.backlog.append(frame)

    async def expect(self, type_: str, timeout: float = TIMEOUT_S, **match: Any) -> dict[str, Any]:
        """The first frame of type ``type_`` (and matching fields)."""
        return await self.first(
            lambda f: f["type"] == type_ and all(f.get(k) == v for k, v in match.items()), timeout
        )

    async def request(self, frame: Mapping[str, Any], timeout: float = TIMEOUT_S) -> dict[str, Any]:
        """Send a frame with a ref and wait for the reply carrying it."""
        await self.send(frame)
        return await self.first(lambda f: f.get("ref") == frame["ref"], timeout)

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
    async with RestClient(base_url, timeout_s=TIMEOUT_S) as rest:
        result = await rest.register(email, PASSWORD, name)
        return str(result.user.id), result.token
