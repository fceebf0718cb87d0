"""Servers under test, CPU pinning, CPU and memory meters, and a lean socket client.

The server runs pinned to CPU 0 (``taskset``), the generator (this process)
to CPU 1, when the machine has two CPUs or more. Both servers are measured
with the same client code: ours (``moodboard serve`` on a fresh PostgreSQL
database and Redis) and the bare baseline (baseline_server.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib.util
import os
import resource
import secrets
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol, TypeVar

import asyncpg
import msgspec
import psutil  # type: ignore[import-untyped]
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from server.client import RestClient

ROOT = Path(__file__).resolve().parents[2]
BASELINE = Path(__file__).resolve().parent / "baseline_server.py"
PASSWORD = "bench password 1"
SERVER_CPU, GENERATOR_CPU = 0, 1
OPEN_CONCURRENCY = 100  # sockets opening (and joining) at once
T = TypeVar("T")


class Frame(msgspec.Struct, gc=False):
    """The fields of a server frame the benchmark reads (the rest is skipped unparsed).

    Never tracked by the garbage collector (``gc=False``: its fields are strings
    and numbers, never a cycle). msgspec already leaves such a struct untracked;
    the flag keeps it so if a field ever holds a container: the generator decodes
    one per delivery, and tracked they would start its collections, each a stall
    of every socket's reading.
    """

    type: str
    ref: str | None = None
    seq: int | None = None
    op_id: str | None = None
    version: int | None = None
    current_version: int | None = None
    mode: str | None = None
    project_id: str | None = None
    at: str | None = None  # an event's server time (load_tests/bench/edit_split.py)


decode = msgspec.json.Decoder(Frame).decode
encode = msgspec.json.Encoder().encode


@contextlib.contextmanager
def frozen_objects() -> Iterator[None]:
    """Every object alive now left out of the generator's garbage collections, for a while.

    Used once the sockets are open, around a measurement: a full collection
    walks every object it tracks, a stall of every socket's reading that is
    timed as delivery latency (``gc.freeze``, as the server does at start).
    """
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def raise_fd_limit() -> int:
    """Raise this process's open-file limit to its hard limit (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def can_pin() -> bool:
    return bool(shutil.which("taskset")) and (os.cpu_count() or 1) > 1


def pin_generator() -> bool:
    """Pin this process (the load generator) to GENERATOR_CPU when the server gets its own."""
    if not can_pin():
        return False
    os.sched_setaffinity(0, {GENERATOR_CPU})
    return True


# A fixed piece of pure-Python work: how long it takes says how fast the server's CPU is now.
_PROBE = (
    "import time\nt = time.perf_counter()\n"
    "for i in range(20_000_000): pass\n"
    "print(time.perf_counter() - t)"
)


def machine_probe() -> float:
    """Seconds the server's CPU takes for a fixed loop (best of 3): compares machines and hours.

    Every workload on the development machine (a virtual one) slowed by a
    quarter within an afternoon with nothing else running. The probe says
    whether the CPU itself was slower in a run.
    """
    pin = ["taskset", "-c", str(SERVER_CPU)] if can_pin() else []
    times = [
        float(
            subprocess.run(
                [*pin, sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True
            ).stdout
        )
        for _ in range(3)
    ]
    return round(min(times), 3)


class CpuMeter:
    """CPU use (1.0 = one core) of this process and of the server between start and stop."""

    def __init__(self, server: psutil.Process) -> None:
        self.server = server

    def __enter__(self) -> CpuMeter:
        self.wall0 = time.monotonic()
        usage = resource.getrusage(resource.RUSAGE_SELF)
        self.self0 = usage.ru_utime + usage.ru_stime
        times = self.server.cpu_times()
        self.server0 = times.user + times.system
        return self

    def __exit__(self, *exc: object) -> None:
        wall = max(time.monotonic() - self.wall0, 1e-9)
        usage = resource.getrusage(resource.RUSAGE_SELF)
        times = self.server.cpu_times()
        self.generator = (usage.ru_utime + usage.ru_stime - self.self0) / wall
        self.server_cpu = (times.user + times.system - self.server0) / wall

    def as_dict(self) -> dict[str, Any]:
        return {
            "generator_cpu": round(self.generator, 2),
            "server_cpu": round(self.server_cpu, 2),
            "generator_saturated": self.generator > 0.8,
        }


async def settle(server: psutil.Process, idle: float = 0.05, limit_s: float = 15.0) -> float:
    """Wait until the server is idle (below ``idle`` of a core over 0.25 s); the seconds waited.

    A workload starts from a quiet server: the previous one's sockets may
    still be closing (5,000 of them after W4), and that work would be billed
    to the next workload. Gives up after ``limit_s``.
    """
    started = time.monotonic()
    while time.monotonic() - started < limit_s:
        before = server.cpu_times()
        await asyncio.sleep(0.25)
        after = server.cpu_times()
        used = (after.user + after.system - before.user - before.system) / 0.25
        if used < idle:
            break
    return round(time.monotonic() - started, 2)


@dataclass
class ProjectRef:
    id: str
    items: list[str]


@dataclass
class Target:
    """A server under test: where it listens, its process, and how to make projects."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    token: str = "bench"
    baseline: bool = False
    rest: RestClient | None = None  # the benchmark user's REST client (our server only)
    database_url: str | None = None  # its database (our server only: bench accounts)
    notes: list[str] = field(default_factory=list)

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    @property
    def ps(self) -> psutil.Process:
        return psutil.Process(self.process.pid)

    def rss(self) -> int:
        return int(self.ps.memory_info().rss)

    async def projects(self, count: int, items: int) -> list[ProjectRef]:
        """``count`` projects with ``items`` items each (over REST on our server)."""
        if self.baseline:
            return [
                ProjectRef(str(uuid.uuid4()), [str(uuid.uuid4()) for _ in range(items)])
                for _ in range(count)
            ]
        rest = self.rest
        assert rest is not None
        sem = asyncio.Semaphore(8)

        async def bounded(call: Callable[[], Awaitable[T]]) -> T:
            async with sem:
                return await call()

        async def one(n: int) -> ProjectRef:
            project = await bounded(lambda: rest.create_project(f"bench {n}"))
            room = await bounded(lambda: rest.create_room(project.id, "r", "other"))
            made = await asyncio.gather(
                *(
                    bounded(lambda: rest.create_item(project.id, room.id, "note"))
                    for _ in range(items)
                )
            )
            return ProjectRef(str(project.id), [str(item.id) for item in made])

        return list(await asyncio.gather(*(one(n) for n in range(count))))


def _spawn(
    cmd: list[str], env: dict[str, str], log: Path, pinned: bool = True
) -> subprocess.Popen[bytes]:
    pin = ["taskset", "-c", str(SERVER_CPU)] if pinned and can_pin() else []
    with log.open("wb") as out:
        return subprocess.Popen(
            [*pin, *cmd], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:]


async def _wait_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    for _ in range(600):
        if process.poll() is not None:
            raise RuntimeError(f"server exited {process.returncode}:\n{_tail(log)}")
        with contextlib.suppress(OSError):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"server did not listen on {port}:\n{_tail(log)}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def our_env(
    database_url: str, redis_url: str, settings: dict[str, str] | None = None
) -> dict[str, str]:
    """The environment of ``moodboard serve`` under the benchmark (``settings`` on top)."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("MOODBOARD_")},
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "MOODBOARD_SECRET_KEY": "bench-" + secrets.token_urlsafe(32),
        "MOODBOARD_LOG_LEVEL": "warning",
        "MOODBOARD_LOG_FORMAT": "json",
        # The benchmark drives one socket far above a person's rate, and one
        # account opens thousands of sockets: lift the per-socket/per-user limits.
        "MOODBOARD_SOCKET_RATE": "100000",
        "MOODBOARD_SOCKET_BURST": "100000",
        "MOODBOARD_MAX_SOCKETS_PER_USER": "100000",
        "MOODBOARD_DB_POOL_SIZE": "20",
        "MOODBOARD_INPROCESS_WORKER": "false",
        **(settings or {}),
    }


async def spawn_ours(
    env: dict[str, str], log: Path, pinned: bool = True
) -> tuple[int, subprocess.Popen[bytes]]:
    """``moodboard serve`` on a free port (``pinned``: to the server's CPU); once it listens."""
    port = free_port()
    cmd = [sys.executable, "-m", "server.cli", "serve", "--port", str(port)]
    process = _spawn(cmd, env, log, pinned)
    try:
        await _wait_port(port, process, log)
    except BaseException:
        _stop(process)
        raise
    return port, process


async def register(rest: RestClient, name: str) -> str:
    """The benchmark user's token (a new account named after ``name``)."""
    registered = await rest.register(f"bench-{name}@example.com", PASSWORD, "Bench")
    return registered.token


@contextlib.asynccontextmanager
async def ours(
    admin_url: str, redis_url: str, workdir: Path, settings: dict[str, str] | None = None
) -> AsyncIterator[Target]:
    """``moodboard serve`` on a fresh PostgreSQL database (dropped after) and Redis.

    ``settings``: MOODBOARD_* variables to set on top of the benchmark's own
    (``--set``), to measure a setting's effect.
    """
    admin = await asyncpg.connect(admin_url)
    db = f"moodboard_benchsuite_{uuid.uuid4().hex[:8]}"
    await admin.execute(f'CREATE DATABASE "{db}"')
    database_url = admin_url.rsplit("/", 1)[0] + f"/{db}"
    env = our_env(database_url, redis_url, settings)
    process: subprocess.Popen[bytes] | None = None
    try:
        port, process = await spawn_ours(env, workdir / "ours.log")
        async with RestClient(f"http://127.0.0.1:{port}", timeout_s=60) as rest:
            token = await register(rest, db)
            yield Target("ours", port, process, token=token, rest=rest, database_url=database_url)
    finally:
        if process is not None:
            _stop(process)
        await admin.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        await admin.close()


@contextlib.asynccontextmanager
async def baseline(workdir: Path) -> AsyncIterator[Target]:
    """The bare websockets broadcast server."""
    port = free_port()
    log = workdir / "baseline.log"
    process = _spawn([sys.executable, str(BASELINE), "--port", str(port)], dict(os.environ), log)
    try:
        await _wait_port(port, process, log)
        yield Target("baseline", port, process, baseline=True)
    finally:
        _stop(process)


Handler = Callable[[Frame, float], None]


def ignore(frame: Frame, at: float) -> None:
    """The default frame handler of a pumped socket: read and forget."""


class Conn:
    """One client socket: authenticated, optionally joined; frames decoded lean.

    A socket is read either by the caller (``recv``) or, once ``pump`` is
    called, by a task handing every frame to ``handler`` (replaceable at any
    time). A socket nobody reads would stop answering the server's pings and
    fill its outbox, and be dropped: every socket a workload keeps open for a
    while is pumped.
    """

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.project_id: str | None = None  # the last project joined, and its seq then
        self.joined_seq = 0
        self.handler: Handler = ignore
        self.closed = False
        self._pump: asyncio.Task[None] | None = None

    def pump(self, handler: Handler = ignore) -> None:
        self.handler = handler
        if self._pump is None:
            self._pump = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            while True:
                raw = await self.ws.recv(decode=False)
                self.handler(decode(raw), time.perf_counter())
        except ConnectionClosed:
            self.closed = True

    @classmethod
    async def open(cls, target: Target) -> Conn:
        ws = await connect(
            target.ws_url,
            additional_headers={"Authorization": f"Bearer {target.token}"},
            compression=None,
            ping_interval=None,
            max_queue=64,
            open_timeout=60,
        )
        ready = decode(await ws.recv(decode=False))
        if ready.type != "ready":
            raise RuntimeError(f"expected ready, got {ready}")
        return cls(ws)

    async def send(self, frame: dict[str, Any]) -> None:
        await self.ws.send(encode(frame).decode())

    async def recv(self) -> Frame:
        return decode(await self.ws.recv(decode=False))

    async def join(self, project_id: str, last_seq: int | None = None) -> Frame:
        """Join; returns ``joined`` (the replayed events follow it on the socket)."""
        frame: dict[str, Any] = {"type": "join", "ref": "j", "project_id": project_id}
        if last_seq is not None:
            frame["last_seq"] = last_seq
        await self.send(frame)
        while True:
            reply = await self.recv()
            if reply.ref == "j":
                if reply.type != "joined":
                    raise RuntimeError(f"join failed: {reply}")
                self.project_id, self.joined_seq = project_id, reply.seq or 0
                return reply

    async def replay(
        self, project_id: str, last_seq: int, limit_s: float
    ) -> tuple[Frame, list[int]]:
        """Join with ``last_seq``; ``joined`` and the seqs of the events that follow it, read
        until the one ``joined`` announced (or ``limit_s`` passed). Not on a pumped socket."""
        reply = await self.join(project_id, last_seq)
        want, seqs = reply.seq or 0, list[int]()
        if reply.mode == "replay":
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(limit_s):
                    while want > (seqs[-1] if seqs else last_seq):
                        frame = await self.recv()
                        if frame.type == "event" and frame.seq is not None:
                            seqs.append(frame.seq)
        return reply, seqs

    def abort(self) -> None:
        """Drop the TCP connection without a closing handshake (a network cut)."""
        if self._pump is not None:
            self._pump.cancel()
        self.ws.transport.abort()


class Socket(Protocol):
    """What a pumped socket offers: ``Conn``, or ``FastConn`` when picows is installed."""

    project_id: str | None
    joined_seq: int
    closed: bool
    handler: Handler  # where pumped frames go (a fast client's, from the moment it is set)

    async def send(self, frame: dict[str, Any]) -> None: ...

    async def join(self, project_id: str, last_seq: int | None = None) -> Frame: ...

    def pump(self, handler: Handler = ...) -> None: ...

    async def replay(
        self, project_id: str, last_seq: int, limit_s: float
    ) -> tuple[Frame, list[int]]: ...

    def abort(self) -> None: ...


def fast_client() -> bool:
    """Whether pumped sockets use picows (``pip install picows``)."""
    return importlib.util.find_spec("picows") is not None


def opener() -> Callable[[Target], Awaitable[Socket]]:
    """How to open a socket that is pumped or replayed: picows when installed."""
    if fast_client():
        from load_tests.bench.fastclient import FastConn

        return FastConn.open
    return Conn.open


async def _bounded(
    count: int, concurrency: int, open_one: Callable[[int], Awaitable[T]]
) -> tuple[list[T], list[BaseException]]:
    sem = asyncio.Semaphore(concurrency)

    async def one(index: int) -> T:
        async with sem:
            return await open_one(index)

    results = await asyncio.gather(*(one(i) for i in range(count)), return_exceptions=True)
    good = [r for r in results if not isinstance(r, BaseException)]
    return good, [r for r in results if isinstance(r, BaseException)]


async def open_many(
    target: Target, count: int, project_of: Callable[[int], str] | None = None
) -> list[Conn]:
    """``count`` sockets read with ``recv``, each joined to ``project_of(i)`` when given.

    Raises on the first failure (the workload cannot go on without them).
    """

    async def open_one(index: int) -> Conn:
        conn = await Conn.open(target)
        if project_of is not None:
            await conn.join(project_of(index))
        return conn

    conns, failures = await _bounded(count, OPEN_CONCURRENCY, open_one)
    if failures:
        drop(conns)
        raise RuntimeError(f"{len(failures)} of {count} sockets failed; first: {failures[0]!r}")
    return conns


async def try_open_pumped(
    target: Target,
    count: int,
    project_of: Callable[[int], str],
    tokens: Sequence[str] | None = None,
) -> tuple[list[Socket], list[BaseException]]:
    """``count`` joined sockets, pumped from the moment they joined (frames ignored until a
    workload sets a handler); the ones that made it, and the failures.

    ``tokens``: socket ``i`` signs in with ``tokens[i]`` (else the benchmark user's token).
    """
    open_socket = opener()

    async def open_one(index: int) -> Socket:
        conn = await open_socket(target if tokens is None else as_account(target, tokens[index]))
        try:
            await conn.join(project_of(index))
        except BaseException:
            conn.abort()
            raise
        conn.pump()
        return conn

    return await _bounded(count, OPEN_CONCURRENCY, open_one)


async def open_pumped(target: Target, count: int, project_of: Callable[[int], str]) -> list[Socket]:
    """Like try_open_pumped, but raises on the first failure."""
    conns, failures = await try_open_pumped(target, count, project_of)
    if failures:
        drop(conns)
        raise RuntimeError(f"{len(failures)} of {count} sockets failed; first: {failures[0]!r}")
    return conns


def as_account(target: Target, token: str) -> Target:
    """``target`` as seen by the account whose session token is ``token``."""
    return replace(target, token=token)


def drop(conns: Sequence[Socket]) -> None:
    """Cut every socket (no closing handshake)."""
    for conn in conns:
        conn.abort()


def edit_frame(project: str, item: str, op_id: str, base_version: int) -> dict[str, Any]:
    return {
        "type": "edit",
        "ref": op_id,
        "project_id": project,
        "op_id": op_id,
        "action": "update",
        "entity": "item",
        "id": item,
        "base_version": base_version,
        "data": {"x": len(op_id)},
    }


def percentiles(values: list[float]) -> dict[str, float | None]:
    """p50/p95/p99 in ms of ``values`` in seconds (None when there are none)."""
    if not values:
        return {"p50": None, "p95": None, "p99": None}
    ordered = sorted(values)

    def at(q: float) -> float:
        return round(1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)

    return {"p50": at(0.50), "p95": at(0.95), "p99": at(0.99)}
