"""What the capacity mode counts: CPU seconds of each process, Redis commands, PostgreSQL work.

Counters, not rates: CPU time of the instances and the Redis data nodes (schedstat), of
PostgreSQL (its whole tree) and PgBouncer (psutil), ``INFO commandstats`` calls on every
Redis data node, and ``pg_stat_database`` of our database. Divided by the
work done (deliveries, edits) they give a cost per unit, which other jobs on
a shared machine barely move (they slow the run down; they do not add CPU
time to our processes or commands to our Redis).

``pg_stat_database`` lags: a PostgreSQL backend publishes its counters at
most once a second, and an idle one up to 10 s later (PostgreSQL 15's
PGSTAT_IDLE_INTERVAL), so a PostgreSQL reading is taken ``pg_flush_s`` after
the work, and the idle rate measured before is subtracted for that time.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import psutil  # type: ignore[import-untyped]
import redis.asyncio as aioredis

from load_tests.bench.harness import settle
from load_tests.bench.topology import Deployment

PG_COUNTERS = ("xact_commit", "xact_rollback", "tup_inserted", "tup_updated", "tup_deleted")
NOT_OURS = frozenset({"info"})  # the meter's own INFO calls


def cpu_seconds(pid: int | None) -> float:
    """CPU seconds of a process so far, all its threads (0 when it is gone).

    From /proc/<pid>/task/*/schedstat (nanoseconds) where the kernel has it:
    psutil's user + system time counts in clock ticks of 10 ms, too coarse for a
    Redis that works 20 ms in a step. psutil's otherwise.
    """
    if pid is None:
        return 0.0
    with contextlib.suppress(OSError, ValueError):
        total = 0
        for task in Path(f"/proc/{pid}/task").iterdir():
            total += int((task / "schedstat").read_text().split()[0])
        return total / 1e9
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return 0.0
    return float(times.user + times.system)


def tree_cpu_seconds(pid: int | None) -> float:
    """CPU seconds of a server and all its processes, live or ended (a postmaster's tree).

    Ended children count once their parent has reaped them (children_user/system),
    as a postmaster does for its autovacuum workers and backends.
    """
    if pid is None:
        return 0.0
    try:
        parent = psutil.Process(pid)
        times = parent.cpu_times()
        total = times.user + times.system + times.children_user + times.children_system
        for child in parent.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                child_times = child.cpu_times()
                total += child_times.user + child_times.system
    except psutil.Error:
        return 0.0
    return float(total)


@dataclass
class Reading:
    """The counters at one moment."""

    at: float
    instances: list[float]
    redis_cpu: float
    redis_calls: dict[int, dict[str, int]]  # node port -> command -> calls
    masters: set[int]
    pgbouncer_cpu: float
    pg: dict[str, int] = field(default_factory=dict)
    pg_backends: dict[int, float] = field(default_factory=dict)  # pid -> CPU seconds
    pg_server_cpu: float = 0.0


class Meter:
    """Readings of a deployment's counters, and the differences between two of them."""

    def __init__(self, deployment: Deployment) -> None:
        self.deployment = deployment
        # One connection per node for every reading: its handshake is counted once, before
        # the first reading; after it, the meter only adds INFO (left out of the counts).
        self.clients = {
            node.port: aioredis.Redis(port=node.port, socket_timeout=5)
            for node in deployment.redis_nodes
        }
        self.pg: asyncpg.Connection | None = None  # one, kept: the shared server's are few

    async def aclose(self) -> None:
        for client in self.clients.values():
            await client.aclose()
        if self.pg is not None:
            await self.pg.close()

    async def _redis(self) -> tuple[dict[int, dict[str, int]], set[int]]:
        calls: dict[int, dict[str, int]] = {}
        masters: set[int] = set()
        for node in self.deployment.redis_nodes:
            if node.process.returncode is not None:
                continue
            client = self.clients[node.port]
            stats = await client.info("commandstats")
            calls[node.port] = {
                name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()
            }
            if (await client.info("replication")).get("role") == "master":
                masters.add(node.port)
        return calls, masters

    async def _pg(self) -> tuple[dict[str, int], dict[int, float]]:
        if self.pg is None:
            self.pg = await asyncpg.connect(self.deployment.pg_admin_url)
        row = await self.pg.fetchrow(
            f"SELECT {', '.join(PG_COUNTERS)} FROM pg_stat_database WHERE datname = $1",
            self.deployment.database,
        )
        pids = await self.pg.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = $1", self.deployment.database
        )
        counters = {name: int(row[name]) for name in PG_COUNTERS} if row else {}
        return counters, {r["pid"]: cpu_seconds(r["pid"]) for r in pids}

    async def read(self, postgres: bool = True) -> Reading:
        """Every counter now (PostgreSQL's only with ``postgres``: they lag, see above)."""
        calls, masters = await self._redis()
        reading = Reading(
            at=time.monotonic(),
            instances=[cpu_seconds(t.process.pid) for t in self.deployment.instances],
            redis_cpu=sum(cpu_seconds(n.process.pid) for n in self.deployment.redis_nodes),
            redis_calls=calls,
            masters=masters,
            pgbouncer_cpu=cpu_seconds(self.deployment.pgbouncer_pid),
        )
        if postgres:
            reading.pg, reading.pg_backends = await self._pg()
            reading.pg_server_cpu = tree_cpu_seconds(self.deployment.pg_server_pid)
        return reading


def redis_delta(before: Reading, after: Reading) -> dict[str, Any]:
    """Commands run between two readings: in all, on masters, and the most frequent."""
    total = masters = 0
    by_command: dict[str, int] = {}
    for port, calls in after.redis_calls.items():
        old = before.redis_calls.get(port, {})
        for name, count in calls.items():
            if name in NOT_OURS:
                continue
            delta = count - old.get(name, 0)
            if delta <= 0:
                continue
            total += delta
            if port in after.masters:
                masters += delta
            by_command[name] = by_command.get(name, 0) + delta
    top = dict(sorted(by_command.items(), key=lambda kv: -kv[1])[:8])
    return {"commands": total, "on_masters": masters, "by_command": top}


def delta(before: Reading, after: Reading) -> dict[str, Any]:
    """Seconds, CPU seconds per instance and of Redis and PgBouncer, Redis commands."""
    return {
        "seconds": after.at - before.at,
        "instance_cpu_s": [b - a for a, b in zip(before.instances, after.instances, strict=True)],
        "redis_cpu_s": after.redis_cpu - before.redis_cpu,
        "pgbouncer_cpu_s": after.pgbouncer_cpu - before.pgbouncer_cpu,
        "redis": redis_delta(before, after),
    }


def pg_delta(before: Reading, after: Reading) -> dict[str, Any]:
    """PostgreSQL counters of our database and CPU seconds of the backends alive at both."""
    common = before.pg_backends.keys() & after.pg_backends.keys()
    return {
        "seconds": after.at - before.at,
        **{name: after.pg.get(name, 0) - before.pg.get(name, 0) for name in PG_COUNTERS},
        "backend_cpu_s": sum(after.pg_backends[p] - before.pg_backends[p] for p in common),
        "server_cpu_s": after.pg_server_cpu - before.pg_server_cpu,
    }


async def settle_all(deployment: Deployment, idle: float = 0.05, limit_s: float = 15.0) -> None:
    """Wait until every instance is idle (as the single-server bench does before a workload)."""
    with contextlib.suppress(psutil.Error):
        await asyncio.gather(*(settle(t.ps, idle, limit_s) for t in deployment.instances))
