"""Real server processes for end-to-end tests: ``moodboard serve`` on a free port."""

from __future__ import annotations

import asyncio
import atexit
import hashlib
import itertools
import os
import shutil
import signal
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError

from load_tests.chaos.topology import NO_DISK
from tests.conftest import free_port
from tests.log_scan import LOGS
from tests.wsclient import signup

SECRET = "e2e-secret-" + hashlib.sha256(b"tests/servers.py").hexdigest()
START_TIMEOUT_S = 30.0
STORAGE_DIR = tempfile.mkdtemp(prefix="moodboard-e2e-files-")
atexit.register(shutil.rmtree, STORAGE_DIR, ignore_errors=True)


@dataclass
class ServerProcess:
    """A running ``moodboard serve``, its base URL and its captured output."""

    process: asyncio.subprocess.Process
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    async def wait_ready(self, timeout: float = START_TIMEOUT_S) -> None:
        """Wait until /readyz answers 200 (fails early if the process died)."""
        async with httpx.AsyncClient(timeout=2.0) as client:
            deadline = asyncio.get_running_loop().time() + timeout
            while True:
                if self.process.returncode is not None:
                    raise AssertionError(f"server exited {self.process.returncode}:\n{self.log()}")
                try:
                    if (await client.get(f"{self.url}/readyz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                if asyncio.get_running_loop().time() > deadline:
                    raise AssertionError(f"server not ready in {timeout} s:\n{self.log()}")
                await asyncio.sleep(0.1)

    async def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        """Send ``sig`` and wait for the exit status."""
        if self.process.returncode is None:
            self.process.send_signal(sig)
        return await asyncio.wait_for(self.process.wait(), timeout)


def server_env(database_url: str, **extra: str) -> dict[str, str]:
    """The environment of a server process: ours, minus MOODBOARD_*, plus these."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOODBOARD_")}
    env.pop("REDIS_URL", None)
    env.update(
        DATABASE_URL=database_url,
        MOODBOARD_SECRET_KEY=SECRET,
        MOODBOARD_LOG_FORMAT="json",
        MOODBOARD_INPROCESS_WORKER="0",  # tests that want it say so
        MOODBOARD_STORAGE_DIR=STORAGE_DIR,
    )
    env.update(extra)
    return env


@asynccontextmanager
async def running_server(
    env: Mapping[str, str],
    log_dir: Path,
    *,
    cwd: Path | None = None,
    wait: bool = True,
    port: int | None = None,
) -> AsyncIterator[ServerProcess]:
    """Start ``moodboard serve`` on ``port`` (default: a free one); stop it (SIGKILL if hung)."""
    port = port or free_port()
    log_path = log_dir / f"server-{port}.log"
    for n in itertools.count(2):  # a restart on the same port keeps the first one's log
        if not log_path.exists():
            break
        log_path = log_dir / f"server-{port}-{n}.log"
    with log_path.open("wb") as log_file:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "server.cli",
            "serve",
            "--port",
            str(port),
            env=dict(env),
            cwd=cwd,
            stdout=log_file,
            stderr=asyncio.subprocess.STDOUT,
        )
    LOGS.append(log_path)
    server = ServerProcess(process=process, port=port, log_path=log_path)
    try:
        if wait:
            await server.wait_ready()
        yield server
    finally:
        if process.returncode is None:
            try:
                await server.stop()
            except TimeoutError:
                process.kill()
                await process.wait()


@asynccontextmanager
async def two_instances(
    env: dict[str, str], log_dir: Path
) -> AsyncIterator[tuple[ServerProcess, ServerProcess]]:
    """Two instances started at once (one migrates, the other waits for its lock)."""
    async with (
        running_server(env, log_dir, wait=False) as a,
        running_server(env, log_dir, wait=False) as b,
    ):
        await asyncio.gather(a.wait_ready(), b.wait_ready())
        yield a, b


@dataclass
class WorkerProcess:
    """A running ``moodboard worker`` and its captured output."""

    process: asyncio.subprocess.Process
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    async def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        """Send ``sig`` and wait for the exit status."""
        if self.process.returncode is None:
            self.process.send_signal(sig)
        return await asyncio.wait_for(self.process.wait(), timeout)


def worker_env(key: str, **extra: str) -> dict[str, str]:
    """A worker's environment: ours minus MOODBOARD_* and databases, the key, quick polling."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOODBOARD_")}
    for name in ("DATABASE_URL", "REDIS_URL"):
        env.pop(name, None)
    env.update(
        MOODBOARD_WORKER_KEY=key,
        MOODBOARD_WORKER_POLL_MS="100",
        MOODBOARD_WORKER_STEP_DELAY_MS="50",
        MOODBOARD_LOG_FORMAT="json",
    )
    env.update(extra)
    return env


@asynccontextmanager
async def running_worker(
    server_url: str, env: Mapping[str, str], log_dir: Path, name: str
) -> AsyncIterator[WorkerProcess]:
    """Start ``moodboard worker`` against ``server_url``; stop it (SIGKILL if it hangs) on exit."""
    log_path = log_dir / f"worker-{name}.log"
    with log_path.open("wb") as log_file:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "server.cli",
            "worker",
            "--server",
            server_url,
            "--worker-id",
            name,
            env=dict(env),
            stdout=log_file,
            stderr=asyncio.subprocess.STDOUT,
        )
    LOGS.append(log_path)
    worker = WorkerProcess(process=process, log_path=log_path)
    try:
        yield worker
    finally:
        if process.returncode is None:
            try:
                await worker.stop()
            except TimeoutError:
                process.kill()
                await process.wait()


async def create_service_account(env: Mapping[str, str], name: str = "worker") -> str:
    """Run ``moodboard create-service-account``; the key it prints."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "server.cli",
        "create-service-account",
        "--name",
        name,
        env=dict(env),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    line = next(x for x in out.decode().splitlines() if x.startswith("key"))
    return line.rsplit(" ", 1)[1]


async def call(server: ServerProcess, method: str, path: str, token: str, **kw: Any) -> Any:
    """One REST call to a server process with a bearer token; the httpx response."""
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        return await client.request(
            method, path, headers={"Authorization": f"Bearer {token}"}, **kw
        )


async def project_with_editors(
    server: ServerProcess, *names: str
) -> tuple[str, str, list[tuple[str, str]]]:
    """An owner's new project with one editor per name: (owner token, project id, [(id, token)])."""
    tag = uuid.uuid4().hex[:8]
    _, owner = await signup(server.url, "Own", f"own-{tag}@example.com")
    pid = (await call(server, "POST", "/api/projects", owner, json={"name": "P"})).json()["id"]
    editors = []
    for name in names:
        email = f"{name.lower()}-{tag}@example.com"
        user_id, token = await signup(server.url, name, email)
        added = await call(
            server,
            "POST",
            f"/api/projects/{pid}/members",
            owner,
            json={"email": email, "role": "editor"},
        )
        assert added.status_code == 201, added.text
        editors.append((user_id, token))
    return owner, pid, editors


@asynccontextmanager
async def private_redis(port: int) -> AsyncIterator[asyncio.subprocess.Process]:
    """A redis-server of this test alone (the shared one must not be restarted)."""
    process = await asyncio.create_subprocess_exec(
        "redis-server",
        "--port",
        str(port),
        *NO_DISK,
        stdout=asyncio.subprocess.DEVNULL,
    )
    client = aioredis.from_url(f"redis://127.0.0.1:{port}/0")
    try:
        for _ in range(100):
            try:
                await client.ping()
                break
            except RedisConnectionError:
                await asyncio.sleep(0.05)
        yield process
    finally:
        await client.aclose()
        if process.returncode is None:
            process.terminate()
            await process.wait()
