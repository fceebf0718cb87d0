"""Benchmark: acked versioned edits per second over many small projects, and latency at half load.

Not a test: it prints a table and writes JSON. It starts its own server
(``moodboard serve`` on PostgreSQL + Redis, pinned to CPU 0 with taskset when
there is one) in a fresh database, seeds P projects over REST, then:

1. throughput: one editor socket per project sends versioned item updates in
   a closed loop (next edit when the last is acked) for ``--duration`` seconds;
2. latency: the same edits paced at half the measured rate, with a second
   socket per project watching: edit->ack and edit->peer (the event reaching
   the watcher) p50/p95/p99. The editor does not wait for an ack before its
   next edit; it bases each edit on the version its previous one will make
   (a socket's edits apply in order), so a slow ack delays, never conflicts.

The generator runs on CPU 1 and reports its own CPU use; a run where it
exceeds 80 % is flagged (the generator, not the server, would be the limit).

Besides the rates it reports the work each acked edit cost: CPU milliseconds
of the server process and of its PostgreSQL backends (read from /proc). Those
hardly move when other programs share the machine, so they compare two
versions fairly on a busy machine; the rates and latencies need a quiet one.

    .venv/bin/python load_tests/edit_bench.py --projects 50 --duration 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import secrets
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from websockets.asyncio.client import ClientConnection, connect

from server.client import RestClient

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "correct horse battery"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far (0 when it is gone or not Linux)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def backend_pids(admin: asyncpg.Connection, db: str) -> list[int]:
    rows = await admin.fetch("SELECT pid FROM pg_stat_activity WHERE datname = $1", db)
    return [row["pid"] for row in rows]


class CpuMeter:
    """CPU seconds used by the server process and its database's backends since start()."""

    def __init__(self, admin: asyncpg.Connection, db: str, server_pid: int) -> None:
        self.admin, self.db, self.server_pid = admin, db, server_pid
        self.server0 = 0.0
        self.backends0: dict[int, float] = {}

    async def start(self) -> None:
        self.server0 = process_cpu_seconds(self.server_pid)
        self.backends0 = {
            pid: process_cpu_seconds(pid) for pid in await backend_pids(self.admin, self.db)
        }

    async def stop(self) -> tuple[float, float]:
        server = process_cpu_seconds(self.server_pid) - self.server0
        database = sum(
            process_cpu_seconds(pid) - self.backends0.get(pid, 0.0)
            for pid in await backend_pids(self.admin, self.db)
        )
        return server, database


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Project:
    def __init__(self, pid: str, item: str, token: str) -> None:
        self.pid, self.item, self.token = pid, item, token
        self.version = 1
        self.editor: ClientConnection | None = None
        self.watcher: ClientConnection | None = None
        self.pending_ack: dict[str, float] = {}  # op_id -> sent at
        self.pending_peer: dict[str, float] = {}
        self.acks: list[float] = []
        self.peers: list[float] = []
        self.acked = 0
        self.conflicts = 0
        self.errors = 0


async def open_socket(url: str, token: str, pid: str) -> ClientConnection:
    sock = await connect(
        url, additional_headers={"Authorization": f"Bearer {token}"}, max_queue=None
    )
    json.loads(await sock.recv())
    await sock.send(json.dumps({"type": "join", "ref": "j", "project_id": pid}))
    while json.loads(await sock.recv())["type"] != "joined":
        pass
    return sock


async def seed(base: str, count: int) -> list[Project]:
    """One account, ``count`` projects of one room and one item (over REST, our client)."""
    projects = []
    async with RestClient(base, timeout_s=30) as rest:
        registered = await rest.register(
            f"bench-{uuid.uuid4().hex[:8]}@example.com", PASSWORD, "Bench"
        )
        for i in range(count):
            project = await rest.create_project(f"p{i}")
            room = await rest.create_room(project.id, "r", "other")
            item = await rest.create_item(project.id, room.id, "note")
            projects.append(Project(str(project.id), str(item.id), registered.token))
    return projects


def edit(project: Project, op_id: str) -> str:
    return json.dumps(
        {
            "type": "edit",
            "ref": op_id,
            "project_id": project.pid,
            "op_id": op_id,
            "action": "update",
            "entity": "item",
            "id": project.item,
            "base_version": project.version,
            "data": {"x": time.time() % 1000},
        }
    )


async def closed_loop(project: Project, until: float) -> None:
    assert project.editor is not None
    while time.monotonic() < until:
        op_id = uuid.uuid4().hex
        await project.editor.send(edit(project, op_id))
        while True:
            frame = json.loads(await project.editor.recv())
            if frame.get("ref") == op_id:
                break
        if frame["type"] == "ack":
            project.version = frame["version"]
            project.acked += 1
        elif frame["type"] == "conflict":
            project.version = frame["current_version"] or project.version
            project.conflicts += 1
        else:
            project.errors += 1


async def reader(project: Project, sock: ClientConnection, role: str) -> None:
    async for raw in sock:
        frame = json.loads(raw)
        now = time.monotonic()
        if role == "editor" and frame["type"] == "ack":
            sent = project.pending_ack.pop(frame["op_id"], None)
            if sent is not None:
                project.acks.append(now - sent)
                project.acked += 1
        elif role == "editor" and frame["type"] == "conflict":
            project.version = frame["current_version"] or project.version  # resync
            project.pending_ack.pop(frame["op_id"], None)
            project.pending_peer.pop(frame["op_id"], None)
            project.conflicts += 1
        elif role == "editor" and frame["type"] == "error":
            project.errors += 1
        elif role == "watcher" and frame["type"] == "event":
            sent = project.pending_peer.pop(frame.get("op_id") or "", None)
            if sent is not None:
                project.peers.append(now - sent)


async def paced(projects: list[Project], rate: float, duration: float) -> None:
    """Open loop: ``rate`` edits a second in all, round-robin over the projects."""
    interval = 1.0 / rate
    start = time.monotonic()
    n = 0
    while (now := time.monotonic()) - start < duration:
        project = projects[n % len(projects)]
        op_id = uuid.uuid4().hex
        project.pending_ack[op_id] = project.pending_peer[op_id] = now
        assert project.editor is not None
        await project.editor.send(edit(project, op_id))
        project.version += 1  # what this edit makes: the next one builds on it
        n += 1
        delay = start + n * interval - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    admin = await asyncpg.connect(args.admin_url)
    db = f"moodboard_bench_{uuid.uuid4().hex[:8]}"
    await admin.execute(f'CREATE DATABASE "{db}"')
    url = args.admin_url.rsplit("/", 1)[0] + f"/{db}"
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "REDIS_URL": args.redis_url,
        "MOODBOARD_SECRET_KEY": secrets.token_urlsafe(32),
        "MOODBOARD_LOG_LEVEL": "warning",
        "MOODBOARD_SOCKET_RATE": "100000",
        "MOODBOARD_SOCKET_BURST": "100000",
        "MOODBOARD_DB_POOL_SIZE": str(args.pool_size),
        "MOODBOARD_MAX_SOCKETS_PER_USER": "100000",
        "PYTHONPATH": str(args.server_root),
    }
    pin = (
        ["taskset", "-c", "0"]
        if shutil.which("taskset") and os.cpu_count() and os.cpu_count() > 1
        else []
    )
    server = subprocess.Popen(
        [*pin, sys.executable, "-m", "server.cli", "serve", "--port", str(port)],
        cwd=args.server_root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    if pin:
        os.sched_setaffinity(0, {1})
    base, ws = f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}/ws"
    try:
        async with httpx.AsyncClient() as client:
            for _ in range(300):
                try:
                    if (await client.get(f"{base}/readyz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
        projects = await seed(base, args.projects)
        for project in projects:
            project.editor = await open_socket(ws, project.token, project.pid)
        meter = CpuMeter(admin, db, server.pid)
        await meter.start()
        cpu0, wall0 = cpu_seconds(), time.monotonic()
        await asyncio.gather(*(closed_loop(p, time.monotonic() + args.duration) for p in projects))
        wall = time.monotonic() - wall0
        server_cpu, db_cpu = await meter.stop()
        acked = sum(p.acked for p in projects)
        throughput = acked / wall
        gen_cpu_1 = (cpu_seconds() - cpu0) / wall
        closed = {
            "acked": acked,
            "conflicts": sum(p.conflicts for p in projects),
            "errors": sum(p.errors for p in projects),
            "server_cpu_ms_per_edit": round(1000 * server_cpu / max(1, acked), 3),
            "postgres_cpu_ms_per_edit": round(1000 * db_cpu / max(1, acked), 3),
        }

        for project in projects:
            project.watcher = await open_socket(ws, project.token, project.pid)
            project.acked = project.conflicts = project.errors = 0
        readers = [
            asyncio.create_task(reader(p, s, role))
            for p in projects
            for s, role in ((p.editor, "editor"), (p.watcher, "watcher"))
            if s
        ]
        half = max(1.0, throughput / 2)
        cpu0, wall0 = cpu_seconds(), time.monotonic()
        await paced(projects, half, args.duration)
        await asyncio.sleep(1.0)
        gen_cpu_2 = (cpu_seconds() - cpu0) / (time.monotonic() - wall0)
        for task in readers:
            task.cancel()
        acks = [x * 1000 for p in projects for x in p.acks]
        peers = [x * 1000 for p in projects for x in p.peers]
        return {
            "projects": args.projects,
            "duration_s": args.duration,
            "throughput_acked_edits_per_s": round(throughput, 1),
            "throughput_phase": closed,
            "half_rate_edits_per_s": round(half, 1),
            "half_rate_phase": {
                "acked": sum(p.acked for p in projects),
                "conflicts": sum(p.conflicts for p in projects),
                "errors": sum(p.errors for p in projects),
            },
            "ack_ms": {
                q: round(percentile(acks, v), 2)
                for q, v in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))
            },
            "peer_ms": {
                q: round(percentile(peers, v), 2)
                for q, v in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))
            },
            "latency_samples": {"ack": len(acks), "peer": len(peers)},
            "generator_cpu": {"throughput": round(gen_cpu_1, 2), "latency": round(gen_cpu_2, 2)},
            "generator_saturated": max(gen_cpu_1, gen_cpu_2) > 0.8,
            "pinned": bool(pin),
        }
    finally:
        server.terminate()
        server.wait(15)
        await admin.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--projects", type=int, default=50)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--json", default="edit_bench.json")
    parser.add_argument("--pool-size", type=int, default=20, help="the server's database pool")
    parser.add_argument(
        "--server-root",
        type=Path,
        default=ROOT,
        help="the checkout whose server to run (compare two versions under the same conditions)",
    )
    result = asyncio.run(run(parser.parse_args()))
    print(json.dumps(result, indent=2))
    Path(parser.parse_args().json).write_text(json.dumps(result, indent=2))
    closed = result["throughput_phase"]
    print(
        f"\nthroughput {result['throughput_acked_edits_per_s']:.0f} acked edits/s "
        f"(target >= 2000; {closed['conflicts']} conflicts, {closed['errors']} errors); "
        f"cost per edit: server {closed['server_cpu_ms_per_edit']:.3f} ms CPU, "
        f"PostgreSQL {closed['postgres_cpu_ms_per_edit']:.3f} ms CPU\n"
        f"at {result['half_rate_edits_per_s']:.0f}/s "
        f"({result['half_rate_phase']['conflicts']} conflicts): "
        f"ack p50 {result['ack_ms']['p50']} ms, "
        f"p99 {result['ack_ms']['p99']} ms (target <= 20); peer p50 {result['peer_ms']['p50']} "
        f"ms, p99 {result['peer_ms']['p99']} ms (target <= 25)"
    )
    if result["generator_saturated"]:
        print(
            "WARNING: the load generator used over 80 % of its CPU: the numbers understate "
            "the server",
            file=sys.stderr,
        )


if __name__ == "__main__":
    main()
