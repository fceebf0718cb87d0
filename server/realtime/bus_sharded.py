"""The bus on a Redis Cluster: sharded pub/sub (``SSUBSCRIBE``/``SPUBLISH``, Redis 7+).

A sharded channel lives on the shard that owns its hash slot: a publish goes
to that shard alone (its cost does not grow with the number of nodes, as a
classic ``PUBLISH`` does, which every node forwards to every other), and an
instance holds subscriptions only on the shards of the projects it has
sockets for. The project id is the channel's hash tag
(server/realtime/envelope.py).

Everything else is :class:`RedisBroker`'s: confirmed subscriptions, batched
publishes, reconnecting after a backoff and then ``on_reconnect`` (the feeds
heal from the event log). A shard that fails over, or a slot that moves
(Redis then ends our subscription with an ``sunsubscribe`` we did not ask
for), is handled the same way: the slot map is read again, every channel
subscribed again where it now lives, and the feeds heal.

redis-py's ``ClusterPubSub`` (pinned >= 8.1: asyncio ``ssubscribe``) holds one
connection per shard and reads them round robin: a read first takes whatever
is waiting on any shard, and only when none has anything waits a few
milliseconds on each in turn (``IDLE_WAIT_S``), so a busy shard is drained at
full speed and an idle instance wakes ``1 / IDLE_WAIT_S`` times a second.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from redis.asyncio.cluster import RedisCluster
from redis.exceptions import ClusterDownError, RedisClusterException

from server.realtime.bus import RedisBroker

IDLE_WAIT_S = 0.01  # per shard, when no shard had a message waiting


class ShardedRedisBroker(RedisBroker):
    """:class:`RedisBroker` on a Redis Cluster's sharded channels."""

    MESSAGE, SUBSCRIBED = "smessage", "ssubscribe"
    RECOVERABLE = (*RedisBroker.RECOVERABLE, RedisClusterException, ClusterDownError)

    @property
    def _cluster(self) -> RedisCluster:
        return cast("RedisCluster", self._client)  # app.py gives it a RedisCluster

    async def start(self) -> None:
        # The pub/sub routes by the client's slot map: read it before the first subscribe.
        await self._cluster.initialize()
        await super().start()

    async def _subscribe(self, *channels: str) -> None:
        for channel in channels:  # one command each: they hash to different slots
            await self._pubsub.ssubscribe(channel)

    async def _unsubscribe(self, channel: str) -> None:
        await self._pubsub.sunsubscribe(channel)

    async def _next_message(self) -> dict[str, Any] | None:
        try:
            message: dict[str, Any] | None = await self._pubsub.get_sharded_message(timeout=0.0)
            if message is None:
                message = await self._pubsub.get_sharded_message(timeout=IDLE_WAIT_S)
        except RuntimeError as exc:
            # A shard's pub/sub is being set up by a subscribe (its connection not yet
            # made): redis-py raises rather than waits. Read again in a moment.
            if "connection not set" not in str(exc):
                raise
            await asyncio.sleep(IDLE_WAIT_S)
            return None
        return message

    def _queue_publish(self, pipeline: Any, channel: str, payload: bytes) -> None:
        pipeline.spublish(channel, payload)

    def _other(self, kind: str, channel: str) -> None:
        if kind == "sunsubscribe" and channel in self._channels:
            # Not ours: the slot moved (or its shard changed hands). Subscribe again, heal.
            raise RedisClusterException(f"shard channel {channel} moved")

    async def _reconnecting(self) -> None:
        # The slot map may be stale (a master died, a slot moved): read it again.
        await self._cluster.nodes_manager.initialize()
