"""What the sharded bus (server/realtime/bus_sharded.py) takes from redis-py beyond its docs.

redis-py is pinned (pyproject.toml: >=8.1,<9); these break first if a release
changes what the bus relies on. The bus itself is tested on a real cluster in
tests/e2e/test_redis_topologies.py.
"""

from __future__ import annotations

import inspect

import pytest
import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterPubSub, RedisCluster


async def test_the_cluster_client_reads_its_slot_map_again_on_request() -> None:
    """``nodes_manager.initialize()``: how the bus refreshes the map before subscribing again."""
    cluster = RedisCluster(host="127.0.0.1", port=1)  # never connected
    try:
        assert inspect.iscoroutinefunction(cluster.nodes_manager.initialize)
    finally:
        await cluster.aclose()


def test_the_cluster_pubsub_has_sharded_subscriptions() -> None:
    for name in ("ssubscribe", "sunsubscribe", "get_sharded_message", "aclose"):
        assert inspect.iscoroutinefunction(getattr(ClusterPubSub, name)), name


async def test_a_pubsub_read_before_its_connection_raises_the_error_the_bus_waits_out() -> None:
    """A shard's pub/sub read while its subscribe is connecting: the bus matches this message."""
    client = aioredis.Redis(host="127.0.0.1", port=1)
    pubsub = client.pubsub()
    try:
        with pytest.raises(RuntimeError, match="connection not set"):
            await pubsub.get_message(timeout=0.0)
    finally:
        await pubsub.aclose()
        await client.aclose()
