"""Two instances on PostgreSQL topologies beyond one server (issue 20, items 3 to 5).

- behind PgBouncer in transaction mode (LISTEN, migrations and locks on the
  direct MOODBOARD_DATABASE_LISTEN_URL), every kind of query the server makes;
- on a primary with a synchronous streaming standby that is also the read
  replica: reads go to the replica only when it has replayed what the reader
  must see, and through a primary switch (the primary stopped, the standby
  promoted) the instances find the new primary through the several hosts of
  DATABASE_URL, in-flight edits are retried with their op_id, and every
  socket gets every event exactly once.

Each topology is started by the test on free loopback ports and stopped by pid
(tests/pg_topology.py); the shared PostgreSQL is only ever a PgBouncer target.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from server.db.database import Database, DatabaseSetupError
from server.settings import DatabaseUrl
from tests.pg_topology import pgbouncer, primary_and_standby, require_binaries
from tests.servers import ServerProcess, server_env, two_instances
from tests.wsclient import signup

pytestmark = pytest.mark.e2e
RETRYABLE = ("internal",)  # the error an edit gets when the database failed under it


@dataclass
class Collaborator:
    """A socket on one instance that joins a project, edits one item, and records what it saw."""

    token: str
    project_id: str
    server: ServerProcess
    seqs: list[int] = field(default_factory=list)
    items: dict[str, dict[str, Any]] = field(default_factory=dict)
    snapshot_seq: int = 0
    acked: list[tuple[str, int]] = field(default_factory=list)  # (op_id, seq)
    retries: int = 0
    socket: ClientConnection | None = None
    replies: dict[str, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)
    reader: asyncio.Task[None] | None = None

    async def connect(self) -> dict[str, Any]:
        """Open a socket and join (resuming after the last event seen); the joined frame."""
        for _ in range(100):
            try:
                return await self._join()
            except (OSError, ConnectionClosed, TimeoutError, InvalidHandshake, JoinRefused):
                await self.close()
                await asyncio.sleep(0.2)  # the database is switching: join again
        raise AssertionError("could not join")

    async def _join(self) -> dict[str, Any]:
        url = self.server.url.replace("http://", "ws://") + "/ws"
        self.socket = await connect(
            url, additional_headers={"Authorization": f"Bearer {self.token}"}, open_timeout=10
        )
        assert json.loads(await asyncio.wait_for(self.socket.recv(), 10))["type"] == "ready"
        join: dict[str, Any] = {"type": "join", "ref": "join", "project_id": self.project_id}
        if self.seqs:
            join["last_seq"] = self.seqs[-1]
        await self.socket.send(json.dumps(join))
        joined = json.loads(await asyncio.wait_for(self.socket.recv(), 10))
        if joined["type"] != "joined":
            raise JoinRefused(joined)
        if joined["mode"] == "snapshot":
            assert not self.seqs, f"a resume got a snapshot: {joined['seq']}"
            self.items = {i["id"]: i for i in joined["snapshot"]["items"]}
            self.snapshot_seq = joined["seq"]
        self.reader = asyncio.create_task(self._read(self.socket))
        return dict(joined)

    async def _read(self, socket: ClientConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for raw in socket:
                frame = json.loads(raw)
                if frame["type"] == "event":
                    self.seqs.append(frame["seq"])
                    if frame["kind"] == "item.updated":
                        self.items[frame["id"]].update(frame["data"], version=frame["version"])
                elif frame.get("ref") in self.replies:
                    self.replies.pop(frame["ref"]).set_result(frame)
        for future in self.replies.values():
            future.set_exception(ConnectionError("socket closed"))
        self.replies.clear()

    async def close(self) -> None:
        if self.socket is not None:
            await self.socket.close()
        if self.reader is not None:
            await self.reader
        self.socket = self.reader = None

    async def edit(self, item: str, base: int, data: dict[str, Any]) -> dict[str, Any]:
        """Update ``item`` until acked: an error or a lost socket sends the same op_id again."""
        op_id = uuid.uuid4().hex
        frame = {"type": "edit", "project_id": self.project_id, "op_id": op_id,
                 "action": "update", "entity": "item", "id": item, "base_version": base,
                 "data": data}  # fmt: skip
        for _ in range(100):
            ref = uuid.uuid4().hex
            future = asyncio.get_running_loop().create_future()
            self.replies[ref] = future
            try:
                assert self.socket is not None
                await self.socket.send(json.dumps({**frame, "ref": ref}))
                reply: dict[str, Any] = await asyncio.wait_for(future, 10)
            except (ConnectionError, ConnectionClosed, TimeoutError):
                self.replies.pop(ref, None)
                self.retries += 1
                await self.close()
                await self.connect()
                continue
            if reply["type"] == "error" and reply["code"] in RETRYABLE:
                self.retries += 1
                await asyncio.sleep(0.1)
                continue
            assert reply["type"] == "ack", reply
            self.acked.append((op_id, reply["seq"]))
            return reply
        raise AssertionError(f"edit {op_id} was never acked")

    async def update_repeatedly(self, item: str, times: int, pause_s: float = 0.0) -> None:
        """``times`` updates of its own item, each based on the previous one's ack."""
        version = 1
        for n in range(times):
            version = (await self.edit(item, version, {"x": n}))["version"]
            await asyncio.sleep(pause_s)


class JoinRefused(Exception):
    """The join was answered with an error (e.g. the database was away): join again."""


async def call(server: ServerProcess, method: str, path: str, token: str, **kw: Any) -> Any:
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        response = await client.request(
            method, path, headers={"Authorization": f"Bearer {token}"}, **kw
        )
    assert response.status_code < 300, response.text
    return response.json() if response.content else None


async def board(server: ServerProcess, items: int) -> tuple[str, str, str, list[str]]:
    """An owner (token), a project of theirs with a room and ``items`` notes: their ids."""
    _, token = await signup(server.url, "Owner", f"o-{uuid.uuid4().hex[:8]}@example.com")
    pid = (await call(server, "POST", "/api/projects", token, json={"name": "P"}))["id"]
    room = await call(server, "POST", f"/api/projects/{pid}/rooms", token, json={"name": "R"})
    ids = [
        (await call(server, "POST", f"/api/projects/{pid}/rooms/{room['id']}/items", token,
                    json={"kind": "note"}))["id"]
        for _ in range(items)
    ]  # fmt: skip
    return token, pid, room["id"], ids


async def logged_ops(url: str, pid: str) -> list[tuple[int, str | None]]:
    """The project's event log, straight from the database: (seq, op_id) in seq order."""
    connection = await asyncpg.connect(url)
    try:
        rows = await connection.fetch(
            "SELECT seq, op_id FROM event WHERE project_id = $1 ORDER BY seq", uuid.UUID(pid)
        )
    finally:
        await connection.close()
    return [(row["seq"], row["op_id"]) for row in rows]


async def caught_up(watchers: list[Collaborator], head: int) -> None:
    async def one(watcher: Collaborator) -> None:
        while not watcher.seqs or watcher.seqs[-1] < head:  # noqa: ASYNC110 - a plain list
            await asyncio.sleep(0.05)

    await asyncio.wait_for(asyncio.gather(*(one(w) for w in watchers)), 30)


def assert_exactly_once(
    watchers: list[Collaborator], editors: list[Collaborator], log: list[tuple[int, str | None]]
) -> None:
    """Every socket saw each event after its snapshot once, in order; each ack is logged once."""
    head = log[-1][0]
    assert [seq for seq, _ in log] == list(range(1, head + 1))
    for watcher in watchers:
        assert watcher.seqs == list(range(watcher.snapshot_seq + 1, head + 1))
    logged = [op for _, op in log if op is not None]
    acked = [op for editor in editors for op, _ in editor.acked]
    assert sorted(op for op in logged if op in set(acked)) == sorted(acked)
    assert len(set(acked)) == len(acked)


async def replica_reads(server: ServerProcess) -> dict[tuple[str, str], float]:
    """moodboard_replica_reads_total of an instance, by (read, source)."""
    async with httpx.AsyncClient(base_url=server.url) as client:
        text = (await client.get("/metrics")).text
    return {
        (s.labels["read"], s.labels["source"]): s.value
        for family in text_string_to_metric_families(text)
        if family.name == "moodboard_replica_reads"
        for s in family.samples
        if s.name.endswith("_total")
    }


async def test_two_instances_behind_pgbouncer_in_transaction_mode(
    cluster_db: str, redis_url: str, tmp_path: Path
) -> None:
    """Sockets, REST, group commits, a retried op_id, generations and an outside write, all
    through a transaction-mode PgBouncer (LISTEN direct): both instances converge exactly once;
    an entry that drops moodboard.writer is refused at start."""
    require_binaries("pgbouncer")
    name = urlsplit(cluster_db).path.lstrip("/")
    target = f"host=127.0.0.1 port=5432 dbname={name}"
    entries = {"moodboard": (target, True), "unmarked": (target, False)}
    async with pgbouncer(entries) as bouncer:
        unmarked = DatabaseUrl(url=bouncer.url("unmarked"), kind="postgres", statement_cache=0)
        with pytest.raises(DatabaseSetupError, match="connect_query"):
            async with Database.of(unmarked, pool_size=2):
                pass
        env = server_env(
            bouncer.url("moodboard"),
            REDIS_URL=redis_url,
            MOODBOARD_DATABASE_LISTEN_URL=cluster_db,
            MOODBOARD_DATABASE_STATEMENT_CACHE="0",
            MOODBOARD_INPROCESS_WORKER="1",
            MOODBOARD_WORKER_STEP_DELAY_MS="10",
            MOODBOARD_WORKER_POLL_MS="100",
            MOODBOARD_MAINTENANCE_INTERVAL_S="1",
        )
        async with two_instances(env, tmp_path) as (a, b):
            token, pid, room, items = await board(a, 4)
            watchers = [Collaborator(token, pid, server) for server in (a, b)]
            editors = [Collaborator(token, pid, (a, b)[n % 2]) for n in range(4)]
            for collaborator in watchers + editors:
                await collaborator.connect()
            # Concurrent edits of one project: group commits (one PL/pgSQL call for many).
            await asyncio.gather(
                *(e.update_repeatedly(i, 8) for e, i in zip(editors, items, strict=True))
            )
            # A retried op_id gets its first outcome again, and nothing is applied twice.
            first = editors[0]
            op_id, seq = first.acked[-1]
            frame = {"type": "edit", "ref": "again", "project_id": pid, "op_id": op_id,
                     "action": "update", "entity": "item", "id": items[0],
                     "base_version": 8, "data": {"x": 7}}  # fmt: skip
            future = asyncio.get_running_loop().create_future()
            first.replies["again"] = future
            assert first.socket is not None
            await first.socket.send(json.dumps(frame))
            assert (await asyncio.wait_for(future, 10))["seq"] == seq
            # REST writes and reads, a generation run by the built-in worker, an outside write.
            await call(b, "PATCH", f"/api/projects/{pid}/items/{items[1]}", token,
                       json={"base_version": 9, "y": 3})  # fmt: skip
            generation = await call(b, "POST", f"/api/projects/{pid}/generations", token,
                                    json={"room_id": room, "prompt": "oak"})  # fmt: skip
            outside = await asyncpg.connect(cluster_db)
            try:
                await outside.execute("UPDATE item SET w = 42 WHERE id = $1", uuid.UUID(items[2]))
            finally:
                await outside.close()
            for _ in range(100):
                done = await call(a, "GET", f"/api/generations/{generation['id']}", token)
                if done["status"] == "succeeded":
                    break
                await asyncio.sleep(0.1)
            assert done["status"] == "succeeded", done
            log = await logged_ops(cluster_db, pid)
            await caught_up(watchers, log[-1][0])
            history = await call(b, "GET", f"/api/projects/{pid}/events", token,
                                 params={"limit": 1000})  # fmt: skip
            for collaborator in watchers + editors:
                await collaborator.close()
        # The maintenance rounds took their advisory lock on the direct URL: none is
        # left on a server connection PgBouncer keeps (as one taken through it would be).
        assert "maintenance.done" in a.log() + b.log()
        admin = await asyncpg.connect(cluster_db)
        try:
            held = await admin.fetchval(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                "AND database = (SELECT oid FROM pg_database WHERE datname = $1)",
                name,
            )
        finally:
            await admin.close()
        assert held == 0
    assert [e["seq"] for e in history["events"]] == [seq for seq, _ in log]
    assert_exactly_once(watchers, editors, log)
    for watcher in watchers:
        assert watcher.items[items[2]]["w"] == 42  # the outside write, through LISTEN
        assert watcher.items[items[1]]["y"] == 3


async def test_a_replica_and_a_primary_switch_lose_nothing(redis_url: str, tmp_path: Path) -> None:
    """Reads from the replica never show less than an ack, also while it lags; then the
    primary stops mid-run and the standby is promoted: both instances find it, every
    acked edit is in the log once, and every socket got every event once."""
    require_binaries("initdb", "pg_basebackup")
    async with primary_and_standby() as (primary, standby):
        hosts = f"127.0.0.1:{primary.port},127.0.0.1:{standby.port}"
        env = server_env(
            f"postgresql://postgres@{hosts}/moodboard?target_session_attrs=read-write",
            REDIS_URL=redis_url,
            MOODBOARD_DATABASE_REPLICA_URL=standby.url(),
        )
        async with two_instances(env, tmp_path) as (a, b):
            token, pid, _, items = await board(a, 3)
            watchers = [Collaborator(token, pid, server) for server in (a, b)]
            for watcher in watchers:
                await watcher.connect()
            editors = [Collaborator(token, pid, (a, b)[n % 2]) for n in range(3)]
            for editor in editors:
                await editor.connect()

            # The replica caught up: a join, a resume and a history page after an ack
            # read there.
            ack = await editors[0].edit(items[0], 1, {"x": 1})
            await replayed(standby, pid, ack["seq"])
            late = Collaborator(token, pid, b)
            joined = await late.connect()
            assert joined["seq"] >= ack["seq"]
            await late.close()
            resumer = watchers[1]  # on b
            await resumer.close()
            assert (await resumer.connect())["mode"] == "replay"
            await call(b, "GET", f"/api/projects/{pid}/events", token)
            reads = await replica_reads(b)
            assert reads["snapshot", "replica"] >= 1
            assert reads["replay", "replica"] >= 1
            assert reads["history", "replica"] >= 1

            # The replica stops replaying: a join, a history page and a resume right
            # after an ack still show the ack (the primary answers).
            await replay(standby, pause=True)
            ack = await editors[0].edit(items[0], ack["version"], {"x": 2})
            late = Collaborator(token, pid, b)
            joined = await late.connect()
            await late.close()
            assert joined["seq"] >= ack["seq"]
            assert late.items[items[0]]["version"] == ack["version"]
            page = await call(b, "GET", f"/api/projects/{pid}/events", token,
                              params={"after": ack["seq"] - 1})  # fmt: skip
            assert [e["op_id"] for e in page["events"]] == [editors[0].acked[-1][0]]
            await resumer.close()
            assert (await resumer.connect())["seq"] >= ack["seq"]
            await replay(standby, pause=False)
            reads = await replica_reads(b)
            assert reads["snapshot", "primary"] >= 1
            assert reads["replay", "primary"] >= 1
            assert reads["history", "primary"] >= 1

            # Edits run on both instances while the primary stops and the standby takes over.
            work = [
                asyncio.create_task(editor.update_repeatedly(item, 15, pause_s=0.05))
                for editor, item in zip(editors[1:], items[1:], strict=True)
            ]
            await asyncio.sleep(0.3)
            await primary.stop(signal.SIGINT)  # fast: the standby has every committed edit
            await standby.promote()
            await asyncio.wait_for(asyncio.gather(*work), 60)
            # Both LISTEN connections found the new primary; an outside write reaches both.
            outside = await asyncpg.connect(standby.url())
            try:
                for _ in range(200):
                    listening = await outside.fetchval(
                        "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'LISTEN%'"
                    )
                    if listening == 2:
                        break
                    await asyncio.sleep(0.05)
                assert listening == 2
                await outside.execute("UPDATE item SET w = 9 WHERE id = $1", uuid.UUID(items[0]))
            finally:
                await outside.close()
            log = await logged_ops(standby.url(), pid)
            await caught_up(watchers, log[-1][0])
            for collaborator in watchers + editors:
                await collaborator.close()
    assert_exactly_once(watchers, editors, log)
    assert sum(e.retries for e in editors) > 0  # the switch did fail some edits in flight
    for watcher in watchers:
        assert watcher.items[items[0]]["w"] == 9
        assert [watcher.items[i]["version"] for i in items[1:]] == [16, 16]


async def replayed(standby: Any, pid: str, seq: int) -> None:
    """Wait until the standby's project row shows ``seq``."""
    connection = await asyncpg.connect(standby.url())
    try:
        for _ in range(200):
            row = await connection.fetchval("SELECT seq FROM project WHERE id = $1", uuid.UUID(pid))
            if row is not None and row >= seq:
                return
            await asyncio.sleep(0.02)
    finally:
        await connection.close()
    raise AssertionError(f"the standby never replayed seq {seq}")


async def replay(standby: Any, *, pause: bool) -> None:
    connection = await asyncpg.connect(standby.url())
    try:
        await connection.execute(
            "SELECT pg_wal_replay_pause()" if pause else "SELECT pg_wal_replay_resume()"
        )
    finally:
        await connection.close()
