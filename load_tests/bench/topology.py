"""A deployment for the capacity mode: one topology of Redis and PostgreSQL, N instances on it.

Topologies (``--topology``), each started on loopback ports and stopped by pid
(load_tests/topologies):

- ``standalone``: one Redis, one PostgreSQL;
- ``cluster``: a Redis Cluster of 3 masters and 3 replicas (sharded pub/sub);
- ``sentinel``: a Redis primary, its replica and three sentinels;
- ``pgbouncer``: one Redis; the pool through a transaction-mode PgBouncer,
  LISTEN direct;
- ``replica``: one Redis; a PostgreSQL primary with a synchronous streaming
  standby that is also the read replica.

Every Redis and PostgreSQL is our own, even in ``standalone`` (a throwaway
PostgreSQL from initdb, fsync off): their counters and CPU time then hold
only our instances' work, and the shared servers' connections (100 on the
development machine, used by every other job) are not ours to take.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from load_tests.bench.harness import Target, _stop, our_env, register, spawn_ours
from load_tests.topologies.pg_topology import (
    PgNode,
    pg_binaries_missing,
    pgbouncer,
    postgres_workdir,
    primary_and_standby,
)
from load_tests.topologies.redis_topologies import (
    MissingBinary,
    RedisProcess,
    Topology,
    redis_cluster,
    redis_sentinel,
    redis_standalone,
)
from server.client import RestClient

TOPOLOGIES = ("standalone", "cluster", "sentinel", "pgbouncer", "replica")
# redis-py's cluster and Sentinel pools refuse a command at once when every connection is
# busy (docs/operations.md "Redis topologies"): the joins of a workload need a larger pool.
LARGE_REDIS_POOL = "200"
# Two instances with the single-server bench's pool of 20 (plus LISTEN) would take 42 of
# a shared PostgreSQL's 100 connections; 10 each is plenty for these workloads.
DB_POOL_SIZE = "10"


@dataclass
class Deployment:
    """What a capacity run measures: the instances, the Redis data nodes, the database."""

    topology: str
    instances: list[Target]
    redis_nodes: list[RedisProcess]
    pg_admin_url: str  # a connection to read pg_stat_database / pg_stat_activity from
    database: str
    pg_server_pid: int | None  # the postmaster: its CPU and its children's
    pgbouncer_pid: int | None = None
    notes: list[str] = field(default_factory=list)


def _require(topology: str) -> None:
    needs = {"pgbouncer": ("pgbouncer",), "replica": ("pg_basebackup",)}
    missing = pg_binaries_missing("initdb", *needs.get(topology, ()))
    if missing:
        raise MissingBinary(missing)


async def _redis(topology: str, workdir: Path, stack: contextlib.AsyncExitStack) -> Topology:
    if topology == "cluster":
        return await stack.enter_async_context(redis_cluster(workdir / "redis"))
    if topology == "sentinel":
        return await stack.enter_async_context(redis_sentinel(workdir / "redis"))
    return await stack.enter_async_context(redis_standalone(workdir / "redis"))


async def _primary(stack: contextlib.AsyncExitStack) -> PgNode:
    """A throwaway PostgreSQL with a ``moodboard`` database; stopped (by pid) at the end."""
    workdir = stack.enter_context(postgres_workdir())
    primary = PgNode(workdir, "primary")
    stack.push_async_callback(primary.stop)
    await primary.init_primary()
    return primary


@contextlib.asynccontextmanager
async def deployment(
    topology: str,
    count: int,
    workdir: Path,
    settings: dict[str, str] | None = None,
) -> AsyncIterator[Deployment]:
    """``count`` instances of ``moodboard serve`` on ``topology``; everything stopped after."""
    if topology not in TOPOLOGIES:
        raise ValueError(f"unknown topology {topology!r}; one of {', '.join(TOPOLOGIES)}")
    _require(topology)
    async with contextlib.AsyncExitStack() as stack:
        redis = await _redis(topology, workdir, stack)
        extra = {"MOODBOARD_DB_POOL_SIZE": DB_POOL_SIZE}
        if topology in ("cluster", "sentinel"):
            extra["MOODBOARD_REDIS_POOL_SIZE"] = LARGE_REDIS_POOL
        bouncer_pid = None
        if topology == "replica":
            primary, standby = await stack.enter_async_context(primary_and_standby())
            extra["MOODBOARD_DATABASE_REPLICA_URL"] = standby.url()
        else:
            primary = await _primary(stack)
        db, database_url = "moodboard", primary.url()
        if topology == "pgbouncer":
            where = urlsplit(database_url)
            target = f"host={where.hostname} port={where.port or 5432} dbname={db}"
            bouncer = await stack.enter_async_context(pgbouncer({"moodboard": (target, True)}))
            assert bouncer.process is not None
            bouncer_pid = bouncer.process.pid
            extra["MOODBOARD_DATABASE_LISTEN_URL"] = database_url
            extra["MOODBOARD_DATABASE_STATEMENT_CACHE"] = "0"  # Debian's PgBouncer is < 1.21
            database_url = bouncer.url("moodboard")
        env = our_env(database_url, redis.url, {**extra, **(settings or {})})
        started = await asyncio.gather(
            # Not pinned: N instances on one CPU would fight over it; each may take any.
            *(spawn_ours(env, workdir / f"instance-{n}.log", pinned=False) for n in range(count)),
            return_exceptions=True,
        )
        for result in started:
            if not isinstance(result, BaseException):
                stack.callback(_stop, result[1])
        for result in started:
            if isinstance(result, BaseException):
                raise result
        servers = [r for r in started if not isinstance(r, BaseException)]
        rest = await stack.enter_async_context(
            RestClient(f"http://127.0.0.1:{servers[0][0]}", timeout_s=60)
        )
        token = await register(rest, f"{topology}-{db}")
        instances = [
            Target(f"instance {n}", port, process, token=token, rest=rest)
            for n, (port, process) in enumerate(servers)
        ]
        yield Deployment(
            topology=topology,
            instances=instances,
            redis_nodes=redis.nodes,
            pg_admin_url=primary.url("postgres"),
            database=db,
            pg_server_pid=primary.pid(),
            pgbouncer_pid=bouncer_pid,
        )
