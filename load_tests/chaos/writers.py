"""The chaos run's writers: editors over sockets and REST, an outside SQL writer, the owner's
access changes, and the burst of big notes a slow reader gets.

Each draws its choices from its own ``random.Random`` derived from the run's seed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import WebSocketException

from load_tests.chaos.actors import Api, Unavailable, User, World, open_socket
from load_tests.chaos.records import AccessChange, Journal, OutsideWrite
from load_tests.chaos.topology import Topology

REPLY_TIMEOUT_S = 5.0


class SocketEditor:
    """A member editing items over a socket of its own, as fast as its replies come."""

    def __init__(
        self,
        user: User,
        token: str,
        topology: Topology,
        world: World,
        journal: Journal,
        rng: random.Random,
    ) -> None:
        self.user, self.token, self.topology, self.world, self.journal, self.rng = (
            user,
            token,
            topology,
            world,
            journal,
            rng,
        )

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            live = self.topology.live()
            if not live:
                await asyncio.sleep(0.3)
                continue
            try:
                ws = await open_socket(self.rng.choice(live), self.token)
            except (OSError, TimeoutError, WebSocketException):
                await asyncio.sleep(0.3)
                continue
            try:
                await self._edit_until_closed(ws, stop)
            except (OSError, TimeoutError, WebSocketException):
                pass
            finally:
                ws.transport.abort()

    async def _edit_until_closed(self, ws: ClientConnection, stop: asyncio.Event) -> None:
        n = 0
        while not stop.is_set():
            n += 1
            pid = self.rng.choice(self.world.projects)
            item = self.rng.choice(self.world.items[pid])
            ref = f"e{n}"
            await ws.send(
                json.dumps(
                    {
                        "type": "edit",
                        "ref": ref,
                        "project_id": pid,
                        "op_id": uuid.uuid4().hex,
                        "action": "update",
                        "entity": "item",
                        "id": item,
                        "base_version": self.world.versions.get(item, 1),
                        "data": self._change(),
                    }
                )
            )
            reply = await asyncio.wait_for(self._reply(ws, ref), REPLY_TIMEOUT_S)
            outcome = str(reply.get("type") if reply.get("type") != "error" else reply.get("code"))
            self.journal.edits[f"socket {outcome}"] = (
                self.journal.edits.get(f"socket {outcome}", 0) + 1
            )
            if reply.get("type") == "ack":
                book = self.world.versions
                book[item] = max(book.get(item, 0), int(reply["version"]))
            elif reply.get("type") == "conflict" and reply.get("current_version"):
                book = self.world.versions
                book[item] = max(book.get(item, 0), int(reply["current_version"]))
            await asyncio.sleep(self.rng.uniform(0.05, 0.3))

    def _change(self) -> dict[str, Any]:
        """A move, or (every third edit) a note of a few KiB: frames big enough to fill buffers."""
        if self.rng.random() < 0.33:
            text = "".join(self.rng.choices("abcdefgh ", k=self.rng.randint(1000, 6000)))
            return {"data": {"text": text}}
        return {"x": round(self.rng.uniform(0, 1000), 3)}

    async def _reply(self, ws: ClientConnection, ref: str) -> dict[str, Any]:
        while True:
            frame: dict[str, Any] = json.loads(await ws.recv())
            if frame.get("ref") == ref:
                return frame


async def rest_editor(
    token: str, api: Api, world: World, journal: Journal, rng: random.Random, stop: asyncio.Event
) -> None:
    """A member editing items over REST (PATCH with base_version) on random instances."""
    while not stop.is_set():
        pid = rng.choice(world.projects)
        item = rng.choice(world.items[pid])
        body = {"base_version": world.versions.get(item, 1), "y": round(rng.uniform(0, 1000), 3)}
        try:
            response = await api.call("PATCH", f"/api/projects/{pid}/items/{item}", token, body)
        except Unavailable:
            continue
        journal.edits[f"rest {response.status_code}"] = (
            journal.edits.get(f"rest {response.status_code}", 0) + 1
        )
        answer = (
            response.json() if response.headers.get("content-type", "").endswith("json") else {}
        )
        version = answer.get("version") or answer.get("current_version")
        if isinstance(version, int):
            world.versions[item] = max(world.versions.get(item, 0), version)
        await asyncio.sleep(rng.uniform(0.1, 0.4))


async def outside_writer(
    database_url: str, world: World, journal: Journal, rng: random.Random, stop: asyncio.Event
) -> None:
    """SQL straight into the cluster (triggers log and NOTIFY): single- and multi-row UPDATEs."""
    db: asyncpg.Connection | None = None
    while not stop.is_set():
        try:
            if db is None or db.is_closed():
                db = await asyncpg.connect(database_url, timeout=5)
            pid = rng.choice(world.projects)
            async with db.transaction():  # the head read in it is the statement's last seq
                if rng.random() < 0.3:
                    status = await db.execute(
                        "UPDATE item SET z = z + 1 WHERE project_id = $1", uuid.UUID(pid)
                    )
                else:
                    item = uuid.UUID(rng.choice(world.items[pid]))
                    status = await db.execute(
                        "UPDATE item SET w = $1 WHERE id = $2", rng.uniform(10, 500), item
                    )
                head = await db.fetchval("SELECT seq FROM project WHERE id = $1", uuid.UUID(pid))
            rows = int(status.split()[-1])
            if rows:
                write = OutsideWrite(pid, head - rows + 1, head, time.monotonic())
                journal.outside_writes.append(write)
            journal.outside_statements += 1
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
            db = None
            await asyncio.sleep(0.3)
            continue
        await asyncio.sleep(rng.uniform(0.2, 0.8))
    if db is not None and not db.is_closed():
        await db.close()


class AccessChanger:
    """The owner removing members (or making them viewers) and giving access back later."""

    def __init__(self, api: Api, world: World, journal: Journal, rng: random.Random) -> None:
        self.api, self.world, self.journal, self.rng = api, world, journal, rng
        self.off: dict[tuple[str, str], AccessChange] = {}  # (user, project) -> open change
        self.restores: set[asyncio.Task[None]] = set()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await asyncio.sleep(self.rng.uniform(1.0, 2.0))
            with contextlib.suppress(Unavailable):
                await self.change_one()

    async def change_one(self, among: set[tuple[str, str]] | None = None) -> None:
        """Take access from one member on one project; give it back a few seconds later.

        ``among``: only these (user, project) pairs, and always a removal.
        """
        pairs = [
            (m, p)
            for m in self.world.members
            for p in self.world.projects
            if (m.id, p) not in self.off and (among is None or (m.id, p) in among)
        ]
        if not pairs or len(self.off) >= len(self.world.members) * len(self.world.projects) // 2:
            return
        member, pid = self.rng.choice(pairs)
        path = f"/api/projects/{pid}/members/{member.id}"
        token = self.world.owner_token
        if among is not None or self.rng.random() < 0.7:
            response = await self.api.call("DELETE", path, token)
            how, ok = "removed", response.status_code == 204
        else:
            response = await self.api.call("PATCH", path, token, {"role": "viewer"})
            how, ok = "downgraded", response.status_code == 200
        if not ok:
            return
        change = AccessChange(member.id, pid, how, time.monotonic())  # type: ignore[arg-type]
        self.journal.access_changes.append(change)
        self.off[(member.id, pid)] = change
        task = asyncio.create_task(self._restore(member, pid, self.rng.uniform(2.0, 5.0)))
        self.restores.add(task)
        task.add_done_callback(self.restores.discard)

    async def _restore(self, member: User, pid: str, after_s: float) -> None:
        await asyncio.sleep(after_s)
        change = self.off[(member.id, pid)]
        token = self.world.owner_token
        for _ in range(20):
            change.restore_sent_at = time.monotonic()
            try:
                if change.how == "removed":
                    body = {"email": member.email, "role": "editor"}
                    response = await self.api.call(
                        "POST", f"/api/projects/{pid}/members", token, body
                    )
                else:
                    path = f"/api/projects/{pid}/members/{member.id}"
                    response = await self.api.call("PATCH", path, token, {"role": "editor"})
            except Unavailable:
                continue
            if response.status_code in (200, 201, 409):
                break
        del self.off[(member.id, pid)]

    async def restore_all(self) -> None:
        """Wait for every pending restore (the end of the run)."""
        if self.restores:
            await asyncio.gather(*self.restores, return_exceptions=True)


async def forever(
    every: Callable[[], float], action: Callable[[], Awaitable[None]], stop: asyncio.Event
) -> None:
    """Run ``action`` every ``every()`` seconds until ``stop``."""
    while not stop.is_set():
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), every())
        if not stop.is_set():
            with contextlib.suppress(Unavailable):
                await action()


async def burst(
    api: Api, world: World, projects: list[str], count: int, rng: random.Random
) -> None:
    """``count`` notes of about 12 KiB written by the owner over REST into ``projects``.

    Sent while a client has stopped reading: its socket and the server's
    buffers fill, so the server has to deal with a peer that does not read.
    """

    async def one() -> None:
        pid = rng.choice(projects)
        item = rng.choice(world.items[pid])
        text = "".join(rng.choices("abcdefgh ", k=12_000))
        for _ in range(3):  # a conflict answers the current version: try again on it
            body = {"base_version": world.versions.get(item, 1), "data": {"text": text}}
            response = await api.call(
                "PATCH", f"/api/projects/{pid}/items/{item}", world.owner_token, body
            )
            version = response.json().get("version") or response.json().get("current_version")
            if isinstance(version, int):
                world.versions[item] = max(world.versions.get(item, 0), version)
            if response.status_code != 409:
                return

    for _ in range(count // 4):
        with contextlib.suppress(Unavailable, ValueError):
            await asyncio.gather(*(one() for _ in range(4)))
