"""Throwaway Redis topologies on loopback: one Redis, a Cluster, a Sentinel set.

Each process is started on a free port in a directory of its own and stopped
by its pid; the shared Redis on 6379 is never touched. Without a
``redis-server`` able to run them, starting one raises MissingBinary (the
tests' wrappers in tests/redis_topologies.py skip loudly, or fail under CI=true).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import shutil
import signal
import socket
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from load_tests.chaos.topology import NO_DISK, free_port

CLUSTER_NODE_TIMEOUT_MS = 1000  # a dead master is replaced within ~2 s
SENTINEL_DOWN_AFTER_MS = 1000


class MissingBinary(RuntimeError):
    """A program a topology needs is not installed (the message says which, and the package)."""


def redis_server_missing() -> str | None:
    """What is missing for these topologies (redis-server 7+, redis-cli), or None.

    Redis 7 is the first with sharded pub/sub (SSUBSCRIBE/SPUBLISH).
    """
    missing = [b for b in ("redis-server", "redis-cli") if not shutil.which(b)]
    message = f"needs {', '.join(missing)} (Debian: redis-server, redis-tools)" if missing else ""
    if not missing:
        version = subprocess.run(
            ["redis-server", "--version"], capture_output=True, text=True, check=False
        ).stdout
        found = re.search(r"v=(\d+)\.", version)
        if found is None or int(found.group(1)) < 7:
            message = f"needs redis-server 7+ for sharded pub/sub, found: {version.strip()!r}"
    return message or None


def require_redis_server() -> None:
    """Raise MissingBinary unless redis-server 7+ and redis-cli are installed."""
    message = redis_server_missing()
    if message:
        raise MissingBinary(message)


@dataclass
class RedisProcess:
    """One redis-server (or sentinel) of the test."""

    port: int
    process: asyncio.subprocess.Process

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)


@dataclass
class Topology:
    """The processes of a topology and the ``REDIS_URL`` that reaches it."""

    url: str
    nodes: list[RedisProcess] = field(default_factory=list)
    sentinels: list[RedisProcess] = field(default_factory=list)


def _log_file(directory: Path) -> BinaryIO:
    directory.mkdir(parents=True, exist_ok=True)
    return (directory / "out.log").open("wb")


async def _start(directory: Path, port: int, *args: str) -> RedisProcess:
    """redis-server with ``args`` (a config file first, if any) on ``port``."""
    with _log_file(directory) as log:  # the child keeps its own descriptor
        process = await asyncio.create_subprocess_exec(
            "redis-server",
            *args,
            "--port",
            str(port),
            cwd=directory,
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
        )
    return RedisProcess(port=port, process=process)


async def _wait_ping(port: int, limit_s: float = 10.0) -> None:
    client = aioredis.Redis(port=port, socket_timeout=1)
    try:
        for _ in range(int(limit_s / 0.05)):
            try:
                await client.ping()
                return
            except (RedisError, OSError):
                await asyncio.sleep(0.05)
        raise TimeoutError(f"redis on {port} did not answer")
    finally:
        await client.aclose()


async def _stop(processes: list[RedisProcess]) -> None:
    for node in processes:
        if node.process.returncode is None:
            node.process.terminate()
    for node in processes:
        try:
            await asyncio.wait_for(node.process.wait(), 5)
        except TimeoutError:
            node.kill()
            await node.process.wait()


@asynccontextmanager
async def redis_standalone(workdir: Path) -> AsyncIterator[Topology]:
    """One Redis of our own (the shared one's counters would mix in other clients' commands)."""
    require_redis_server()
    port = free_port()
    nodes = [await _start(workdir / f"redis-{port}", port, *NO_DISK)]
    try:
        await _wait_ping(port)
        yield Topology(url=f"redis://127.0.0.1:{port}/0", nodes=nodes)
    finally:
        await _stop(nodes)


def _cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000) is free too."""
    while True:
        port = random.randrange(20_000, 30_000)
        with contextlib.ExitStack() as stack:
            try:
                for p in (port, port + 10_000):
                    sock = stack.enter_context(socket.socket())
                    sock.bind(("127.0.0.1", p))
            except OSError:
                continue
            return port


@asynccontextmanager
async def redis_cluster(workdir: Path) -> AsyncIterator[Topology]:
    """A Redis Cluster of 3 masters and 3 replicas."""
    require_redis_server()
    ports = [_cluster_port() for _ in range(6)]
    nodes: list[RedisProcess] = []
    try:
        for port in ports:
            nodes.append(
                await _start(
                    workdir / f"node-{port}",
                    port,
                    *NO_DISK,
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    str(CLUSTER_NODE_TIMEOUT_MS),
                )
            )
        for port in ports:
            await _wait_ping(port)
        create = await asyncio.create_subprocess_exec(
            "redis-cli",
            "--cluster",
            "create",
            *(f"127.0.0.1:{port}" for port in ports),
            "--cluster-replicas",
            "1",
            "--cluster-yes",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await create.communicate()
        assert create.returncode == 0, out.decode()
        await _wait_cluster_ok(ports)
        await _wait_replicas_synced(ports)
        hosts = ",".join(f"127.0.0.1:{port}" for port in ports[:3])
        yield Topology(url=f"redis+cluster://{hosts}", nodes=nodes)
    finally:
        await _stop(nodes)


async def _wait_cluster_ok(ports: list[int], limit_s: float = 20.0) -> None:
    """Every node says cluster_state:ok (its slots are all served)."""
    for _ in range(int(limit_s / 0.1)):
        states = []
        for port in ports:
            client = aioredis.Redis(port=port, socket_timeout=1)
            try:
                info = (await client.execute_command("CLUSTER", "INFO")).decode()
                states.append("ok" if "cluster_state:ok" in info else "fail")
            except (RedisError, OSError):
                states.append("down")
            finally:
                await client.aclose()
        if all(state == "ok" for state in states):
            return
        await asyncio.sleep(0.1)
    raise TimeoutError("the cluster did not reach cluster_state:ok")


async def _wait_replicas_synced(ports: list[int], limit_s: float = 30.0) -> None:
    """Every replica among ``ports`` has finished its first sync with its master.

    Until then it holds no data and refuses to take over (Redis Cluster: "Disconnected
    from master for longer than allowed"): a test that kills a master right after the
    topology came up would wait for a failover that never comes.
    """
    for _ in range(int(limit_s / 0.1)):
        waiting = []
        for port in ports:
            client = aioredis.Redis(port=port, socket_timeout=1)
            try:
                info = await client.info("replication")
                if info.get("role") == "slave" and info.get("master_link_status") != "up":
                    waiting.append(port)
            except (RedisError, OSError):
                waiting.append(port)
            finally:
                await client.aclose()
        if not waiting:
            return
        await asyncio.sleep(0.1)
    raise TimeoutError(f"replicas on {waiting} did not finish their first sync")


async def masters(topology: Topology) -> list[RedisProcess]:
    """The nodes that are masters now."""
    found = []
    for node in topology.nodes:
        if node.process.returncode is not None:
            continue
        client = aioredis.Redis(port=node.port, socket_timeout=1)
        try:
            if (await client.info("replication")).get("role") == "master":
                found.append(node)
        finally:
            await client.aclose()
    return found


@asynccontextmanager
async def redis_sentinel(workdir: Path, master_name: str = "mb") -> AsyncIterator[Topology]:
    """A primary, a replica and three sentinels watching them (quorum 2)."""
    require_redis_server()
    primary_port, replica_port = free_port(), free_port()
    processes: list[RedisProcess] = []
    try:
        primary = await _start(workdir / "primary", primary_port, *NO_DISK)
        processes.append(primary)
        await _wait_ping(primary_port)
        replica = await _start(
            workdir / "replica",
            replica_port,
            *NO_DISK,
            "--replicaof",
            "127.0.0.1",
            str(primary_port),
        )
        processes.append(replica)
        await _wait_ping(replica_port)
        await _wait_replicas_synced([replica_port])
        sentinels = []
        for n in range(3):
            port = free_port()
            directory = workdir / f"sentinel-{n}"
            directory.mkdir(parents=True)
            (directory / "sentinel.conf").write_text(
                "bind 127.0.0.1\n"
                f"sentinel monitor {master_name} 127.0.0.1 {primary_port} 2\n"
                f"sentinel down-after-milliseconds {master_name} {SENTINEL_DOWN_AFTER_MS}\n"
                f"sentinel failover-timeout {master_name} 5000\n"
            )
            sentinel = await _start(directory, port, str(directory / "sentinel.conf"), "--sentinel")
            processes.append(sentinel)
            sentinels.append(sentinel)
        for sentinel in sentinels:
            await _wait_ping(sentinel.port)
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in sentinels)
        yield Topology(
            url=f"redis+sentinel://{hosts}/{master_name}/0",
            nodes=[primary, replica],
            sentinels=sentinels,
        )
    finally:
        await _stop(processes)
