"""Presence fan-out: who is in a project, told to everyone in it, coalesced (docs/protocol.md §3.4).

A socket's join, cursor/state change and leave go into the project's
``PresenceBatch``; the batch's sender stores the states in the shared map
(``PresenceStore``, Redis between instances) and publishes the batch as one
``presence_diff`` on the project's channel: the first change of a quiet
project at once, later ones at most once a ``period`` (longer for larger
projects). Every instance then hands the diff it receives to its local
members (``deliver``), each socket whose own join is in it without its own
entry. The entries of a dead instance, reaped by the store, go out as leaves.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any

import msgspec
from redis.exceptions import RedisError

from server import metrics
from server.log import get_logger
from server.realtime import envelope as env
from server.realtime import protocol as p
from server.realtime.bus import BrokerUnavailable
from server.realtime.presence import PresenceMap, PresenceStore
from server.realtime.presence_batch import Change, PresenceBatch, diff, period, without
from server.transport.wire import Outgoing

if TYPE_CHECKING:
    from server.realtime.connection import Connection
    from server.realtime.registry import Followers

log = get_logger(__name__)
PRESENCE_FLUSH_S = 0.05  # a project's presence changes go out at most this often (coalesced)


class PresenceFanout:
    """Presence changes of this instance's sockets out, and the diffs of every instance in."""

    def __init__(
        self,
        store: PresenceStore,
        followers: dict[uuid.UUID, Followers],
        *,
        publish: Callable[[str, bytes], Awaitable[None]],
        spawn: Callable[[Coroutine[Any, Any, Any]], None],
        flush_s: float = PRESENCE_FLUSH_S,
    ) -> None:
        self.store = store
        self.flush_s = flush_s
        self._followers = followers  # the registry's own map, by project (read, never written)
        self._publish = publish
        self._spawn = spawn
        self._batches: dict[uuid.UUID, PresenceBatch] = {}
        store.on_orphans = self._announce_leaves

    async def enter(
        self, connection: Connection, project_id: uuid.UUID, entry: p.PresenceEntry
    ) -> PresenceMap:
        """Add the socket to the project's presence; returns the full map (itself included).

        The others hear of it in the project's next coalesced ``presence_diff``.

        Raises:
            BrokerUnavailable: Redis did not answer (the join fails with an error frame).
        """
        try:
            members = await self.store.enter(project_id, connection.id, entry)
        except (RedisError, OSError) as exc:
            raise BrokerUnavailable(f"presence unavailable: {exc!r}") from exc
        self._batch(project_id).joined(connection.id, entry)
        return members

    def update(self, connection: Connection, project_id: uuid.UUID, state: dict[str, Any]) -> None:
        """Queue a state change; the project's next diff stores and sends the latest one."""
        user = connection.user
        if user is None:
            return
        entry = p.PresenceEntry(user_id=user.id, name=user.name, state=state)
        self._batch(project_id).state(connection.id, entry, connection)

    async def exit(self, connection: Connection, project_id: uuid.UUID) -> None:
        entry = await self.store.remove(project_id, connection.id)
        if entry is not None:  # a state change still queued is dropped: it left (_store)
            self._batch(project_id).left(connection.id, entry)

    async def flush(self) -> None:
        """Send every change still waiting for its batch (the instance is stopping).

        A leave never sent would stay in other instances' clients until they rejoin.
        """
        for project_id, batch in list(self._batches.items()):
            if batch:
                await self._publish_changes(project_id, batch.take())

    def _batch(self, project_id: uuid.UUID) -> PresenceBatch:
        """The project's batch of changes; the first change starts its sender."""
        batch = self._batches.get(project_id)
        if batch is None:
            batch = self._batches[project_id] = PresenceBatch()
            self._spawn(self._send(project_id, batch))
        return batch

    async def _send(self, project_id: uuid.UUID, batch: PresenceBatch) -> None:
        """Send the project's changes: the first at once, then at most once a period.

        A quiet project's join goes out in the next turn of the loop; under load
        the changes made meanwhile go out together (docs/protocol.md §3.4: coalesced,
        latest wins). Ends, dropping the batch, when a period passed with none.
        """
        try:
            await asyncio.sleep(0)  # the changes of this turn of the loop go together
            while batch:
                await self._publish_changes(project_id, batch.take())  # never raises
                members = len(self._followers.get(project_id, ()))
                await asyncio.sleep(period(members, self.flush_s))
        finally:
            if self._batches.get(project_id) is batch:
                del self._batches[project_id]

    async def _publish_changes(self, project_id: uuid.UUID, changes: dict[str, Change]) -> None:
        """Store the batch's state changes, then publish it as one ``presence_diff``."""
        for connection_id, change in list(changes.items()):
            if not change.store:
                continue
            try:
                stored = await self._store(project_id, connection_id, change)
            except Exception as exc:  # Redis hiccup: this state is lost, the rest goes out
                log.warning("presence.store_failed", error=repr(exc))
                stored = False
            if not stored:
                del changes[connection_id]
        made = diff(project_id, changes)
        if made is None:
            return
        frame, sources = made
        envelope = env.PresenceEnvelope(
            project_id=project_id, source=None, sources=sources, frame=msgspec.Raw(p.encode(frame))
        )
        await self._publish(env.project_channel(project_id), env.encode(envelope))

    async def _store(self, project_id: uuid.UUID, connection_id: str, change: Change) -> bool:
        """Write a state change to the shared map; False when its socket left meanwhile."""
        owner = change.owner
        if owner is None or project_id not in owner.streams:
            return False
        await self.store.put(project_id, connection_id, change.entry)
        if project_id not in owner.streams:  # it left while we wrote: take the entry out again
            await self.store.remove(project_id, connection_id)
            return False
        return True

    async def _announce_leaves(
        self, project_id: uuid.UUID, leaves: dict[str, p.PresenceEntry]
    ) -> None:
        """Entries of a dead instance, reaped: told to everyone (none of them is ours)."""
        frame = p.PresenceDiff(project_id=project_id, joins={}, leaves=leaves)
        envelope = env.PresenceEnvelope(
            project_id=project_id, source=None, frame=msgspec.Raw(p.encode(frame))
        )
        await self._publish(env.project_channel(project_id), env.encode(envelope))

    def deliver(self, message: env.PresenceEnvelope) -> None:
        """A presence diff to every local member, each source without its own entry."""
        project_id, shared, sent = message.project_id, Outgoing(bytes(message.frame)), 0
        sources = set(message.sources)
        frame: p.PresenceDiff | None = None
        for connection in tuple(self._followers.get(project_id, ())):
            connection_id = connection.id
            if connection_id == message.source:
                continue
            if connection_id not in sources:
                sent += connection.deliver_presence(project_id, shared)
                continue
            if frame is None:
                frame = msgspec.json.decode(bytes(message.frame), type=p.PresenceDiff)
            own = without(frame, connection_id)
            if own is not None:
                sent += connection.deliver_presence(project_id, Outgoing(p.encode(own)))
        metrics.PRESENCE_FRAMES_SENT.inc(sent)
