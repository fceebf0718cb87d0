"""Which Redis the instance talks to: one server, a Sentinel-managed primary, or a Cluster.

``REDIS_URL`` takes three forms (docs/operations.md "Redis topologies"):

- ``redis://host:port/db`` (or ``rediss://``, ``unix://``): one server;
- ``redis+sentinel://[user:password@]host:port[,host:port...]/<master-name>[/db]``:
  the primary is asked of the sentinels and followed through a failover
  (redis-py's ``Sentinel``);
- ``redis+cluster://[user:password@]host:port[,host:port...]``: a Redis Cluster
  (7+), through redis-py's ``RedisCluster``; a project's fan-out goes on a
  sharded channel (``SSUBSCRIBE``/``SPUBLISH``) keyed by the project.

Every key and channel the server uses starts with ``MOODBOARD_REDIS_PREFIX``
(default derived from the database's name), so two deployments (production
and a restore rehearsal) can share a Redis without seeing each other. What
must share a hash slot carries the project id as a hash tag (``{...}``), which
is why the prefix may not contain braces.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote, urlsplit

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.sentinel import Sentinel

RedisKind = Literal["single", "sentinel", "cluster"]
REDIS_POOL_WAIT_S = 10.0
SENTINEL_SOCKET_TIMEOUT_S = 2.0
_PREFIX = re.compile(r"^[A-Za-z0-9_.:\-]{1,64}$")


class RedisUrlError(ValueError):
    """``REDIS_URL`` cannot be used; the message says why."""


@dataclass(frozen=True, slots=True)
class RedisTopology:
    """A parsed ``REDIS_URL``."""

    kind: RedisKind
    url: str
    hosts: tuple[tuple[str, int], ...] = ()
    master_name: str | None = None
    db: int = 0
    username: str | None = None
    password: str | None = None

    @property
    def sharded(self) -> bool:
        """Fan-out on sharded channels (SSUBSCRIBE/SPUBLISH): a Redis Cluster."""
        return self.kind == "cluster"


def _hosts(netloc: str) -> tuple[str | None, str | None, tuple[tuple[str, int], ...]]:
    """``[user:password@]h:p[,h:p...]``: (user, password, hosts)."""
    userinfo, _, hostlist = netloc.rpartition("@")
    username = password = None
    if userinfo:
        user, _, secret = userinfo.partition(":")
        username, password = unquote(user) or None, unquote(secret) or None
    hosts: list[tuple[str, int]] = []
    for item in hostlist.split(","):
        host, _, port = item.strip().rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise RedisUrlError(f"expected host:port, got {item.strip()!r}")
        hosts.append((host.strip("[]"), int(port)))
    return username, password, tuple(hosts)


def parse_redis_url(value: str) -> RedisTopology:
    """Parse and check a ``REDIS_URL``.

    Raises:
        RedisUrlError: the URL is malformed or of an unknown form.
    """
    scheme = value.partition("://")[0].lower()
    if scheme in ("redis", "rediss", "unix"):
        try:
            parts = urlsplit(value)
            _ = parts.port
        except ValueError as exc:
            raise RedisUrlError(f"malformed URL ({exc})") from None
        if scheme != "unix" and not parts.hostname:
            raise RedisUrlError("needs a host, e.g. redis://127.0.0.1:6379/0")
        return RedisTopology(kind="single", url=value)
    if scheme not in ("redis+sentinel", "redis+cluster"):
        raise RedisUrlError(
            f"unsupported scheme {scheme!r}: expected redis://, rediss://, "
            "redis+sentinel:// or redis+cluster://"
        )
    rest = value.partition("://")[2]
    netloc, _, path = rest.partition("/")
    path = path.partition("?")[0].strip("/")
    username, password, hosts = _hosts(netloc)
    if scheme == "redis+cluster":
        if path:
            raise RedisUrlError("a Redis Cluster has one database: no /path after the hosts")
        return RedisTopology(
            kind="cluster", url=value, hosts=hosts, username=username, password=password
        )
    name, _, db = path.partition("/")
    if not name:
        raise RedisUrlError(
            "needs the master's name: redis+sentinel://host:26379[,host:port...]/<master-name>[/db]"
        )
    if db and not db.isdigit():
        raise RedisUrlError(f"database must be a number, got {db!r}")
    return RedisTopology(
        kind="sentinel",
        url=value,
        hosts=hosts,
        master_name=unquote(name),
        db=int(db or 0),
        username=username,
        password=password,
    )


def check_prefix(value: str) -> str:
    """A ``MOODBOARD_REDIS_PREFIX``: a few safe characters, no hash-tag braces.

    Raises:
        ValueError: the prefix is empty, too long, or has other characters.
    """
    if not _PREFIX.match(value):
        raise ValueError(
            "1 to 64 of letters, digits, '_', '-', '.', ':' (no braces: "
            "the project id is the hash tag of a Redis Cluster's keys)"
        )
    return value if value.endswith(":") else value + ":"


def default_prefix(database_name: str) -> str:
    """``mb:<database name>:``: two databases on one Redis never share a key."""
    name = re.sub(r"[^A-Za-z0-9_.\-]", "_", database_name)[:48] or "default"
    return f"mb:{name}:"


def redis_client(topology: RedisTopology | None, pool_size: int) -> aioredis.Redis | None:
    """The instance's Redis client (a ``RedisCluster`` for a cluster), or None without one.

    A single server gets a bounded pool where a command waits for a free
    connection: a burst of joins or publishes queues for a moment instead of
    failing with ``MaxConnectionsError``. A Sentinel-managed primary and a
    cluster's nodes get redis-py's own pools bounded at ``pool_size``
    connections (per node on a cluster): there a command beyond the bound
    fails at once instead of waiting (docs/operations.md "Redis topologies").
    The cluster client is typed as ``aioredis.Redis``: the server calls only
    the commands both have.
    """
    if topology is None:
        return None
    if topology.kind == "single":
        pool = aioredis.BlockingConnectionPool.from_url(
            topology.url, max_connections=pool_size, timeout=REDIS_POOL_WAIT_S
        )
        return aioredis.Redis.from_pool(pool)
    if topology.kind == "sentinel":
        assert topology.master_name is not None
        sentinel = Sentinel(  # type: ignore[no-untyped-call]
            list(topology.hosts),
            socket_timeout=SENTINEL_SOCKET_TIMEOUT_S,
            sentinel_kwargs={"socket_timeout": SENTINEL_SOCKET_TIMEOUT_S},
            username=topology.username,
            password=topology.password,
            db=topology.db,
            max_connections=pool_size,
        )
        client: aioredis.Redis = sentinel.master_for(topology.master_name)
        return client
    cluster = RedisCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in topology.hosts],
        username=topology.username,
        password=topology.password,
        max_connections=pool_size,
    )
    return cluster  # type: ignore[return-value]  # same commands, see the docstring
