"""Many clients on two instances edit the same items at once, through disruptions.

The guarantees of docs/architecture.md §9, checked end to end with real processes, PostgreSQL
and Redis: every subscriber sees each event once, in seq order, without gaps,
across reconnects (with ``last_seq``), a Redis disconnection and the SIGKILL
of an instance; every client's state ends equal to the database; each acked
op is in the log exactly once; no acked write was silently overwritten.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import redis.asyncio as aioredis
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from tests.servers import ServerProcess, running_server, server_env
from tests.wsclient import signup

pytestmark = pytest.mark.e2e
FIELDS = ("x", "y", "w", "h", "z")
CLIENTS = 8
OPS_PER_CLIENT = 25


@dataclass
class Acked:
    op_id: str
    item: str
    field: str
    base: int
    version: int
    seq: int


@dataclass
class Client:
    """A collaborator: a socket, the state it materialised, and what it saw and did."""

    name: str
    token: str
    project_id: str
    rng: random.Random
    servers: list[ServerProcess]
    items: dict[str, dict[str, Any]] = field(default_factory=dict)
    seqs: list[int] = field(default_factory=list)
    acked: list[Acked] = field(default_factory=list)
    conflicted: list[str] = field(default_factory=list)
    reconnects: int = 0
    last_seq: int = 0
    snapshot_seq: int = 0
    socket: ClientConnection | None = None
    replies: dict[str, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)
    reader: asyncio.Task[None] | None = None

    def live_servers(self) -> list[ServerProcess]:
        return [s for s in self.servers if s.process.returncode is None]

    async def connect(self) -> None:
        """Open a socket on a live instance and (re)join with last_seq."""
        server = self.rng.choice(self.live_servers())
        url = server.url.replace("http://", "ws://") + "/ws"
        self.socket = await connect(
            url, additional_headers={"Authorization": f"Bearer {self.token}"}, open_timeout=10
        )
        ready = json.loads(await asyncio.wait_for(self.socket.recv(), 10))
        assert ready["type"] == "ready"
        join: dict[str, Any] = {"type": "join", "ref": "join", "project_id": self.project_id}
        if self.seqs:
            join["last_seq"] = self.last_seq
        await self.socket.send(json.dumps(join))
        joined = json.loads(await asyncio.wait_for(self.socket.recv(), 10))
        assert joined["type"] == "joined", joined
        if joined["mode"] == "snapshot":
            assert not self.seqs, "the log covers every resume here: expected a replay"
            self.items = {i["id"]: i for i in joined["snapshot"]["items"]}
            self.last_seq = self.snapshot_seq = joined["seq"]
        self.reader = asyncio.create_task(self.read(self.socket))

    async def read(self, socket: ClientConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for raw in socket:
                frame = json.loads(raw)
                if frame["type"] == "event":
                    self.apply(frame)
                elif "ref" in frame and frame["ref"] in self.replies:
                    self.replies.pop(frame["ref"]).set_result(frame)
        for future in self.replies.values():
            if not future.done():
                future.set_exception(ConnectionError("socket closed"))
        self.replies.clear()

    def apply(self, event: dict[str, Any]) -> None:
        self.seqs.append(event["seq"])
        self.last_seq = event["seq"]
        if event["entity"] != "item":
            return
        if event["kind"] == "item.created":
            self.items[event["id"]] = dict(event["data"])
        elif event["kind"] == "item.updated":
            self.items[event["id"]].update(event["data"], version=event["version"])
        elif event["kind"] == "item.deleted":
            self.items.pop(event["id"], None)

    async def reconnect(self) -> None:
        """Drop the socket and resume on a live instance (retrying while one dies)."""
        await self.disconnect()
        for _ in range(50):
            try:
                await self.connect()
                return
            except (OSError, ConnectionClosed, TimeoutError, InvalidHandshake):
                await asyncio.sleep(0.1)  # an instance dying under us: try a live one
        raise AssertionError("could not reconnect")

    async def disconnect(self) -> None:
        if self.socket is not None:
            await self.socket.close()
        if self.reader is not None:
            await self.reader
        self.reconnects += 1

    async def send_edit(self, frame: dict[str, Any]) -> dict[str, Any]:
        """Send an edit until it gets an answer, reconnecting (same op_id) if the socket dies."""
        for _ in range(20):
            ref = uuid.uuid4().hex
            future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
            self.replies[ref] = future
            try:
                assert self.socket is not None
                await self.socket.send(json.dumps({**frame, "ref": ref}))
                return await asyncio.wait_for(future, 10)
            except (ConnectionError, ConnectionClosed, TimeoutError):
                self.replies.pop(ref, None)
                await self.reconnect()
        raise AssertionError("an edit never got an answer")

    async def work(self, item_ids: list[str], disruption: asyncio.Event) -> None:
        for n in range(OPS_PER_CLIENT):
            item = self.rng.choice(item_ids)
            name = self.rng.choice(FIELDS)
            value = self.rng.randint(1, 10_000)
            while True:  # rebase on conflict: same intent, on the current entity
                base = self.items[item]["version"]
                op_id = f"{self.name}-{n}-{uuid.uuid4().hex[:6]}"
                reply = await self.send_edit(
                    {
                        "type": "edit",
                        "project_id": self.project_id,
                        "op_id": op_id,
                        "action": "update",
                        "entity": "item",
                        "id": item,
                        "base_version": base,
                        "data": {name: value},
                    }
                )
                if reply["type"] == "ack":
                    self.acked.append(
                        Acked(op_id, item, name, base, reply["version"], reply["seq"])
                    )
                    break
                assert reply["type"] == "conflict", reply
                assert reply["fields"] == [name]
                self.conflicted.append(op_id)
                current = reply["current"]
                if current["version"] > self.items[item]["version"]:
                    self.items[item] = dict(current)  # its event will confirm it
            if self.rng.random() < 0.12:
                await self.reconnect()
            if n == OPS_PER_CLIENT // 2:
                disruption.set()
            await asyncio.sleep(self.rng.random() * 0.01)


async def rest(server: ServerProcess, method: str, path: str, token: str, **kw: Any) -> Any:
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        response = await client.request(
            method, path, headers={"Authorization": f"Bearer {token}"}, **kw
        )
        assert response.status_code < 300, response.text
        return response.json() if response.content else None


async def disrupt(kind: str, redis_url: str, servers: list[ServerProcess]) -> None:
    if kind == "redis":
        # Every pub/sub connection drops, as when Redis restarts: messages
        # published meanwhile are lost to the bus and must come from the log.
        client = aioredis.from_url(redis_url)
        try:
            await client.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
        finally:
            await client.aclose()
    elif kind == "sigkill":
        servers[1].process.kill()
        await servers[1].process.wait()


@pytest.mark.parametrize("disruption", ["none", "redis", "sigkill"])
async def test_clients_converge(
    cluster_db: str, redis_url: str, tmp_path: Path, disruption: str
) -> None:
    """8 clients, 2 instances, racing updates with rebase and resumes: everyone converges."""
    env = server_env(cluster_db, REDIS_URL=redis_url)
    async with running_server(env, tmp_path) as a, running_server(env, tmp_path) as b:
        servers = [a, b]
        suffix = uuid.uuid4().hex[:8]
        owner = await signup(a.url, "Owner", f"owner-{suffix}@example.com")
        project = await rest(a, "POST", "/api/projects", owner[1], json={"name": "Race"})
        pid = project["id"]
        room = await rest(a, "POST", f"/api/projects/{pid}/rooms", owner[1], json={"name": "R"})
        item_ids = [
            (
                await rest(
                    a,
                    "POST",
                    f"/api/projects/{pid}/rooms/{room['id']}/items",
                    owner[1],
                    json={"kind": "note"},
                )
            )["id"]
            for _ in range(3)
        ]
        clients = []
        for i in range(CLIENTS):
            email = f"c{i}-{suffix}@example.com"
            _, token = await signup(a.url, f"C{i}", email)
            await rest(
                a,
                "POST",
                f"/api/projects/{pid}/members",
                owner[1],
                json={"email": email, "role": "editor"},
            )
            client = Client(f"c{i}", token, pid, random.Random(i), servers)
            client.servers = [servers[i % 2], servers[(i + 1) % 2]]
            await client.connect()
            clients.append(client)
        disrupted = asyncio.Event()

        async def disrupt_midway() -> None:
            await disrupted.wait()
            await disrupt(disruption, redis_url, servers)

        disrupter = asyncio.create_task(disrupt_midway())
        await asyncio.wait_for(asyncio.gather(*(c.work(item_ids, disrupted) for c in clients)), 120)
        await disrupter

        final = (await rest(a, "GET", f"/api/projects/{pid}", owner[1]))["seq"]

        async def caught_up(client: Client) -> None:
            while client.last_seq < final:  # noqa: ASYNC110 - polling a plain attribute
                await asyncio.sleep(0.05)

        await asyncio.wait_for(asyncio.gather(*(caught_up(c) for c in clients)), 30)
        events = await all_events(a, pid, owner[1])
        db_items = {
            i["id"]: i
            for i in await rest(a, "GET", f"/api/projects/{pid}/rooms/{room['id']}/items", owner[1])
        }
        for client in clients:
            await client.disconnect()

    assert [e["seq"] for e in events] == list(range(1, final + 1))
    for client in clients:
        expected_seqs = list(range(client.snapshot_seq + 1, final + 1))
        assert client.seqs == expected_seqs, f"{client.name}: gap or duplicate"
        assert client.items == db_items, f"{client.name} diverged from the database"
    logged = [e["op_id"] for e in events if e["op_id"]]
    acked = [a.op_id for c in clients for a in c.acked]
    assert sorted(op for op in logged if op in set(acked)) == sorted(acked)  # each once
    assert not set(c for cl in clients for c in cl.conflicted) & set(logged)
    writes = sorted((a for c in clients for a in c.acked), key=lambda w: w.seq)
    last: dict[tuple[str, str], Acked] = {}
    for write in writes:  # a later write to a field was based on the earlier one: not blind
        earlier = last.get((write.item, write.field))
        if earlier is not None:
            assert write.base >= earlier.version, (earlier, write)
        last[(write.item, write.field)] = write
    for (item, _), write in last.items():
        assert write.version <= db_items[item]["version"]
    assert sum(len(c.acked) for c in clients) == CLIENTS * OPS_PER_CLIENT
    assert sum(c.reconnects for c in clients) > 0


async def all_events(server: ServerProcess, pid: str, token: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    while True:
        page = await rest(
            server,
            "GET",
            f"/api/projects/{pid}/events",
            token,
            params={"after": len(events), "limit": 1000},
        )
        events += page["events"]
        if len(events) >= page["seq"]:
            return events


async def owner_with_a_note(
    server: ServerProcess,
) -> tuple[Any, str, dict[str, Any], dict[str, Any]]:
    """A new owner (signup result), their project's id, a room of it and a note in that room."""
    owner = await signup(server.url, "Owner", f"o-{uuid.uuid4().hex[:8]}@example.com")
    pid = (await rest(server, "POST", "/api/projects", owner[1], json={"name": "P"}))["id"]
    room = await rest(server, "POST", f"/api/projects/{pid}/rooms", owner[1], json={"name": "R"})
    item = await rest(
        server, "POST", f"/api/projects/{pid}/rooms/{room['id']}/items", owner[1],
        json={"kind": "note"},
    )  # fmt: skip
    return owner, pid, room, item


async def test_outside_writers_reach_every_instance(
    cluster_db: str, redis_url: str, tmp_path: Path
) -> None:
    """psql-style UPDATEs of an item, a room and a generation arrive as next-seq events."""
    env = server_env(cluster_db, REDIS_URL=redis_url)
    async with running_server(env, tmp_path) as a, running_server(env, tmp_path) as b:
        owner, pid, room, item = await owner_with_a_note(a)
        sockets = []
        for server in (a, b):
            sock = await connect(
                server.url.replace("http://", "ws://") + "/ws",
                additional_headers={"Authorization": f"Bearer {owner[1]}"},
            )
            await sock.recv()
            await sock.send(json.dumps({"type": "join", "ref": "j", "project_id": pid}))
            joined = json.loads(await sock.recv())
            sockets.append(sock)
        seq = joined["seq"]
        conn = await asyncpg.connect(cluster_db)
        try:
            await conn.execute("UPDATE item SET x = 5 WHERE id = $1", uuid.UUID(item["id"]))
            await conn.execute(
                "UPDATE room SET name = 'Pantry' WHERE id = $1", uuid.UUID(room["id"])
            )
            generation = uuid.uuid4()
            await conn.execute(
                "INSERT INTO generation (id, project_id, room_id, prompt) VALUES ($1, $2, $3, $4)",
                generation,
                uuid.UUID(pid),
                uuid.UUID(room["id"]),
                "oak table",
            )
            await conn.execute(
                "UPDATE generation SET status = 'running', progress = 10 WHERE id = $1", generation
            )
            await conn.execute(
                "UPDATE generation SET progress = 60, stage = 'paint' WHERE id = $1", generation
            )
            expected = [
                ("item.updated", item["id"], {"x": 5.0}, 2),
                ("room.updated", room["id"], {"name": "Pantry"}, 2),
                ("generation.queued", str(generation), None, 1),
                ("generation.started", str(generation), None, 2),
                ("generation.progress", str(generation), None, 3),
            ]
            for sock in sockets:
                for offset, (kind, entity_id, data, version) in enumerate(expected, start=1):
                    event = await next_event(sock)
                    assert (event["type"], event["seq"], event["kind"]) == (
                        "event",
                        seq + offset,
                        kind,
                    )
                    assert (event["id"], event["version"], event["actor_id"]) == (
                        entity_id,
                        version,
                        None,
                    )
                    if data is not None:
                        assert event["data"] == data
                    else:
                        assert event["data"]["prompt"] == "oak table"
                assert event["data"]["progress"] == 60
            # The listener's connection dies (as in a PostgreSQL restart); a change made
            # while it is away still arrives, from the log.
            killed = await conn.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND query LIKE 'LISTEN%'"
            )
            assert killed == 2
            await conn.execute("UPDATE item SET y = 7 WHERE id = $1", uuid.UUID(item["id"]))
            for sock in sockets:
                event = await next_event(sock)
                assert (event["seq"], event["kind"], event["data"]) == (
                    seq + 6,
                    "item.updated",
                    {"y": 7.0},
                )
        finally:
            await conn.close()
            for sock in sockets:
                await sock.close()


async def next_event(sock: ClientConnection) -> dict[str, Any]:
    """The next event frame (presence diffs of the other sockets are skipped)."""
    while True:
        frame: dict[str, Any] = json.loads(await asyncio.wait_for(sock.recv(), 10))
        if frame["type"] == "event":
            return frame


async def test_joins_during_continuous_edits_miss_nothing(
    cluster_db: str, redis_url: str, tmp_path: Path
) -> None:
    """Clients joining (snapshot) while edits commit non-stop: none missed, none doubled."""
    env = server_env(cluster_db, REDIS_URL=redis_url)
    async with running_server(env, tmp_path) as a, running_server(env, tmp_path) as b:
        owner, pid, room, item = await owner_with_a_note(a)
        stop = asyncio.Event()

        async def writer(server: ServerProcess) -> int:
            writes = 0
            while not stop.is_set():
                async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
                    current = await client.get(
                        f"/api/projects/{pid}/rooms/{room['id']}/items",
                        headers={"Authorization": f"Bearer {owner[1]}"},
                    )
                    version = current.json()[0]["version"]
                    response = await client.patch(
                        f"/api/projects/{pid}/items/{item['id']}",
                        json={"base_version": version, "x": writes},
                        headers={"Authorization": f"Bearer {owner[1]}"},
                    )
                    writes += response.status_code == 200
            return writes

        writers = [asyncio.create_task(writer(s)) for s in (a, b)]
        joiners = []
        for i in range(10):
            client = Client(f"j{i}", owner[1], pid, random.Random(i), [(a, b)[i % 2]])
            await client.connect()
            joiners.append(client)
            await asyncio.sleep(0.03)
        await asyncio.sleep(0.2)
        stop.set()
        assert sum(await asyncio.gather(*writers)) > 10
        final = (await rest(a, "GET", f"/api/projects/{pid}", owner[1]))["seq"]
        for client in joiners:
            while client.last_seq < final:  # noqa: ASYNC110 - polling a plain attribute
                await asyncio.sleep(0.05)
        db_items = {
            i["id"]: i
            for i in await rest(a, "GET", f"/api/projects/{pid}/rooms/{room['id']}/items", owner[1])
        }
        for client in joiners:
            await client.disconnect()
    for client in joiners:  # exactly the events after its snapshot, once each, in order
        assert client.seqs == list(range(client.snapshot_seq + 1, final + 1)), client.name
        assert client.items == db_items, client.name
