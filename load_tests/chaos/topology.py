"""The chaos run's own servers: a throwaway PostgreSQL cluster, a Redis, N ``moodboard serve``.

Everything listens on free loopback ports and is stopped by its own pid (or
its own data directory) at the end: the shared PostgreSQL on 5432 and Redis
on 6379 are never touched. As root, the cluster runs as the ``postgres``
user (initdb refuses root), as scripts/pitr-drill.sh does.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parents[2]
PGBIN = Path(os.environ.get("PGBIN", "/usr/lib/postgresql/15/bin"))
SECRET = "chaos-" + secrets.token_urlsafe(32)  # random: the settings refuse a guessable one
READY_TIMEOUT_S = 60.0
# A throwaway redis-server: loopback, no disk, and a replica's first sync at once (the
# default waits 5 s for more replicas). The chaos tool's, the
# topologies' (load_tests/topologies) and the tests' own servers.
NO_DISK = (
    "--bind",
    "127.0.0.1",
    "--save",
    "",
    "--appendonly",
    "no",
    "--repl-diskless-sync-delay",
    "0",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def run_command(
    *cmd: str, timeout_s: float = 120.0, env: dict[str, str] | None = None
) -> str:
    """Run a command to its end; its output; raises with that output when it fails."""
    process = await asyncio.create_subprocess_exec(
        *cmd, cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        out, _ = await asyncio.wait_for(process.communicate(), timeout_s)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    text = out.decode(errors="replace")
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {process.returncode}:\n{text[-3000:]}")
    return text


class PostgresCluster:
    """A PostgreSQL cluster in a temp directory on a free port (restartable, fast to make)."""

    def __init__(self, workdir: Path) -> None:
        self.dir = workdir / "pg"
        self.port = free_port()
        self._as_pg: list[str] = ["runuser", "-u", "postgres", "--"] if os.getuid() == 0 else []

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/moodboard"

    async def _pg_ctl(self, *args: str) -> None:
        log = str(self.dir.parent / "postgres.log")
        await run_command(
            *self._as_pg, str(PGBIN / "pg_ctl"), "-D", str(self.dir), "-l", log, *args
        )

    async def create(self) -> None:
        """initdb, start, and create the ``moodboard`` database."""
        if self._as_pg:
            shutil.chown(self.dir.parent, "postgres")
        await run_command(
            *self._as_pg,
            str(PGBIN / "initdb"),
            "-D",
            str(self.dir),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        )
        with (self.dir / "postgresql.conf").open("a") as conf:
            conf.write(
                f"listen_addresses = '127.0.0.1'\nport = {self.port}\n"
                f"unix_socket_directories = '{self.dir.parent}'\n"
                "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
                "max_connections = 200\n"
            )
        await self._pg_ctl("-w", "start")
        admin = await asyncpg.connect(self.url.rsplit("/", 1)[0] + "/postgres")
        try:
            await admin.execute("CREATE DATABASE moodboard")
        finally:
            await admin.close()

    async def restart(self) -> None:
        """``pg_ctl restart -m fast``: every connection is cut, the server comes back."""
        await self._pg_ctl("-w", "-m", "fast", "restart")

    async def stop(self) -> None:
        if (self.dir / "postmaster.pid").exists():
            with contextlib.suppress(RuntimeError, TimeoutError):
                await self._pg_ctl("-m", "immediate", "stop")


class RedisServer:
    """A redis-server of our own on a fixed free port, stopped and started by pid."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            "redis-server",
            "--port",
            str(self.port),
            *NO_DISK,
            stdout=asyncio.subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.close()
                return
            await asyncio.sleep(0.05)
        raise RuntimeError(f"redis-server did not listen on {self.port}")

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            await asyncio.wait_for(self.process.wait(), 10)
        self.process = None


@dataclass
class Instance:
    """One ``moodboard serve`` on a fixed port; restarted on the same port after a fault."""

    index: int
    port: int
    env: dict[str, str]
    log_dir: Path
    process: asyncio.subprocess.Process | None = None
    starts: int = 0
    logs: list[Path] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def start(self) -> None:
        self.starts += 1
        log = self.log_dir / f"instance-{self.index}-{self.starts}.log"
        self.logs.append(log)
        with log.open("wb") as out:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "server.cli",
                "serve",
                "--port",
                str(self.port),
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
            )
        await self.wait_ready()

    async def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        async with httpx.AsyncClient(timeout=2.0) as client:
            while True:
                if self.process is None or self.process.returncode is not None:
                    raise RuntimeError(f"instance {self.index} exited; see {self.logs[-1]}")
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get(f"{self.url}/readyz")).status_code == 200:
                        return
                if time.monotonic() > deadline:
                    raise RuntimeError(f"instance {self.index} not ready; see {self.logs[-1]}")
                await asyncio.sleep(0.1)

    def signal(self, sig: signal.Signals) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(sig)

    async def wait_exit(self, timeout_s: float) -> bool:
        """Whether the process exited within ``timeout_s``."""
        if self.process is None:
            return True
        try:
            await asyncio.wait_for(self.process.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    async def kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()


@dataclass
class Topology:
    """The servers of one chaos run."""

    workdir: Path
    postgres: PostgresCluster
    redis: RedisServer
    instances: list[Instance]

    def live(self) -> Sequence[Instance]:
        return [i for i in self.instances if i.running]


def server_env(database_url: str, redis_url: str) -> dict[str, str]:
    """A server's environment: ours minus MOODBOARD_* and databases, plus the run's own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOODBOARD_")}
    env.pop("REDIS_URL", None)
    env.update(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        MOODBOARD_SECRET_KEY=SECRET,
        MOODBOARD_LOG_FORMAT="json",
        MOODBOARD_LOG_LEVEL="warning",
        MOODBOARD_INPROCESS_WORKER="0",
        # Editors and subscribers share few accounts and edit faster than a person.
        MOODBOARD_SOCKET_RATE="10000",
        MOODBOARD_SOCKET_BURST="10000",
        MOODBOARD_MAX_SOCKETS_PER_USER="1000",
        MOODBOARD_LOGIN_FAILURES_PER_MINUTE="10000",
    )
    return env


@contextlib.asynccontextmanager
async def running_topology(workdir: Path, instances: int) -> AsyncIterator[Topology]:
    """Start the cluster, Redis, ``moodboard migrate`` and the instances; stop them all after."""
    (workdir / "logs").mkdir(parents=True, exist_ok=True)
    postgres, redis = PostgresCluster(workdir), RedisServer()
    env = server_env(postgres.url, redis.url)
    env["MOODBOARD_STORAGE_DIR"] = str(workdir / "files")
    topology = Topology(
        workdir,
        postgres,
        redis,
        [Instance(n, free_port(), env, workdir / "logs") for n in range(instances)],
    )
    try:
        await postgres.create()
        await redis.start()
        await run_command(sys.executable, "-m", "server.cli", "migrate", env=env)
        await asyncio.gather(*(instance.start() for instance in topology.instances))
        yield topology
    finally:
        for instance in topology.instances:
            instance.signal(signal.SIGKILL)
        for instance in topology.instances:
            await instance.wait_exit(10)
        await redis.stop()
        await postgres.stop()
        shutil.rmtree(postgres.dir, ignore_errors=True)
