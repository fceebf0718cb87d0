"""The bare baseline: a minimal broadcast server on the ``websockets`` library.

It speaks just enough of docs/protocol.md §3 for the benchmark's
workloads: ``ready`` on connect (any token), ``join`` (with ``last_seq``
replay from an in-memory log), ``edit`` (no storage, no validation, no
permissions: the next seq and version, an ``ack`` to the author and the event
broadcast to the project with ``websockets.broadcast``), ``ping``. It is what
"a WebSocket fan-out in Python" costs with nothing else around it; the
benchmark prints our server's numbers as a ratio to it.

    python load_tests/bench/baseline_server.py --port 8100
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import signal
from collections import defaultdict, deque
from datetime import UTC, datetime
from typing import Any

import msgspec
from websockets.asyncio.server import ServerConnection, broadcast, serve

LOG_EVENTS = 10_000  # events kept per project for resumes
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode


class Project:
    def __init__(self) -> None:
        self.seq = 0
        self.versions: dict[str, int] = defaultdict(lambda: 1)
        self.log: deque[tuple[int, bytes]] = deque(maxlen=LOG_EVENTS)
        self.subscribers: set[ServerConnection] = set()


projects: dict[str, Project] = defaultdict(Project)
connection_ids = itertools.count(1)


def send(conn: ServerConnection, frame: bytes) -> None:
    """Write now, without awaiting (``broadcast`` to one): keeps join and edit atomic."""
    broadcast([conn], frame.decode())


def on_join(conn: ServerConnection, frame: dict[str, Any]) -> None:
    project = projects[frame["project_id"]]
    last = frame.get("last_seq")
    replay = (
        last is not None
        and last <= project.seq
        and (last == project.seq or (project.log and project.log[0][0] <= last + 1))
    )
    joined = {
        "type": "joined",
        "ref": frame.get("ref"),
        "project_id": frame["project_id"],
        "seq": project.seq,
        "mode": "replay" if replay else "snapshot",
        "presence": {},
    }
    if not replay:
        joined["snapshot"] = {"project": {}, "rooms": [], "items": [], "generations": []}
    # No await between reading the log and subscribing: nothing can slip in between.
    send(conn, _encode(joined))
    if replay and last is not None:
        for seq, event in project.log:
            if seq > last:
                send(conn, event)
    project.subscribers.add(conn)


def on_edit(conn: ServerConnection, frame: dict[str, Any]) -> None:
    pid = frame["project_id"]
    project = projects[pid]
    project.seq += 1
    entity_id = frame.get("id") or frame["op_id"]
    project.versions[entity_id] += 1
    version = project.versions[entity_id]
    event = _encode(
        {
            "type": "event",
            "project_id": pid,
            "seq": project.seq,
            "kind": f"{frame['entity']}.updated",
            "entity": frame["entity"],
            "id": entity_id,
            "version": version,
            "data": frame.get("data") or {},
            "actor_id": None,
            "op_id": frame["op_id"],
            "at": datetime.now(UTC).isoformat(),
        }
    )
    project.log.append((project.seq, event))
    ack = {
        "type": "ack",
        "ref": frame.get("ref"),
        "op_id": frame["op_id"],
        "id": entity_id,
        "version": version,
        "seq": project.seq,
        "merged": False,
    }
    send(conn, _encode(ack))
    broadcast(project.subscribers, event.decode())


async def handler(conn: ServerConnection) -> None:
    ready = {
        "type": "ready",
        "protocol": 1,
        "connection_id": f"c{next(connection_ids)}",
        "user": {"id": "00000000-0000-0000-0000-000000000000", "name": "Bench", "email": "b@x"},
    }
    await conn.send(_encode(ready).decode())
    joined: set[str] = set()
    try:
        async for raw in conn:
            frame = _decode(raw)
            kind = frame.get("type")
            if kind == "edit":
                on_edit(conn, frame)
            elif kind == "join":
                on_join(conn, frame)
                joined.add(frame["project_id"])
            elif kind == "ping":
                await conn.send(_encode({"type": "pong", "ref": frame.get("ref")}).decode())
    finally:
        for pid in joined:
            projects[pid].subscribers.discard(conn)


async def main(port: int) -> None:
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set_result, None)
    async with serve(
        handler,
        "127.0.0.1",
        port,
        compression=None,
        max_queue=None,
        ping_interval=None,
        backlog=2048,  # uvicorn's default: the same for both servers
    ):
        await stop


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8100)
    port = parser.parse_args().port
    try:
        import uvloop  # the event loop uvicorn gives our server: the same for both
    except ImportError:
        asyncio.run(main(port))
    else:
        uvloop.run(main(port))
