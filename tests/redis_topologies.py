"""Throwaway Redis topologies for one test (load_tests/topologies/redis_topologies.py).

Without a ``redis-server`` able to run them the test skips loudly (fails under CI=true).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from load_tests.topologies import redis_topologies as topologies
from load_tests.topologies.redis_topologies import RedisProcess, Topology, masters
from tests.conftest import IN_CI

__all__ = ["RedisProcess", "Topology", "masters", "redis_cluster", "redis_sentinel"]


def require_redis_server() -> None:
    """Skip (loudly) without redis-server 7+ and redis-cli; fail instead under CI=true."""
    message = topologies.redis_server_missing()
    if message:
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


@asynccontextmanager
async def redis_cluster(workdir: Path) -> AsyncIterator[Topology]:
    """A Redis Cluster of 3 masters and 3 replicas."""
    require_redis_server()
    async with topologies.redis_cluster(workdir) as topology:
        yield topology


@asynccontextmanager
async def redis_sentinel(workdir: Path, master_name: str = "mb") -> AsyncIterator[Topology]:
    """A primary, a replica and three sentinels watching them (quorum 2)."""
    require_redis_server()
    async with topologies.redis_sentinel(workdir, master_name) as topology:
        yield topology
