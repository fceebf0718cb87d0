"""Control messages between instances: sessions revoked, a project's access changed.

Services publish them after they commit (through the hub, which is their
``Notifier``) on the bus's control channel, which every instance follows.
Each instance acts on them for its own sockets: a socket of a revoked
(login) session closes with 4401; a socket that lost access to a project it
follows gets ``left`` with reason ``access_revoked`` (docs/architecture.md "Access and
sessions").
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any

from server.log import get_logger
from server.realtime import envelope as env
from server.realtime.access_check import pairs_with_access
from server.realtime.bus import Broker, BrokerUnavailable
from server.realtime.registry import SocketRegistry
from server.types import ProjectId, UserId

log = get_logger(__name__)


class Control:
    """This instance's side of the control channel: publishing, and acting on what arrives."""

    def __init__(
        self,
        sockets: SocketRegistry,
        broker: Broker,
        *,
        publish: Callable[[str, bytes], Awaitable[None]],
        spawn: Callable[[Coroutine[Any, Any, Any]], None],
    ) -> None:
        self._sockets = sockets
        self._broker = broker
        self._publish = publish
        self._spawn = spawn

    async def subscribe(self) -> None:
        """Follow the control channel, retrying until the broker answers."""
        while True:
            try:
                await self._broker.subscribe(env.CONTROL_CHANNEL)
                return
            except BrokerUnavailable:
                log.warning("realtime.control_subscription_pending")

    async def sessions_revoked(self, session_ids: Sequence[uuid.UUID]) -> None:
        if session_ids:
            envelope = env.SessionsRevoked(session_ids=list(session_ids))
            await self._publish(env.CONTROL_CHANNEL, env.encode(envelope))

    async def access_changed(
        self, project_id: ProjectId, user_ids: Sequence[UserId] | None
    ) -> None:
        envelope = env.AccessChanged(
            project_id=project_id, user_ids=None if user_ids is None else list(user_ids)
        )
        await self._publish(env.CONTROL_CHANNEL, env.encode(envelope))

    def received(self, message: env.SessionsRevoked | env.AccessChanged) -> None:
        """A control message from the bus: act on this instance's sockets."""
        if isinstance(message, env.SessionsRevoked):
            revoked = set(message.session_ids)
            for connection in tuple(self._sockets.connections.values()):
                if connection.session_id in revoked:
                    self._spawn(connection.session_ended(revoked))
        else:
            self._spawn(self._recheck(message.project_id, message.user_ids))

    async def _recheck(self, project_id: uuid.UUID, user_ids: list[uuid.UUID] | None) -> None:
        """Access changed: sockets that lost it get ``left`` (access_revoked).

        One statement for all of the project's sockets concerned (a project-wide
        change, a deletion, concerns every one), not a role read per socket.
        """
        wanted = None if user_ids is None else set(user_ids)
        checked = [
            (connection, connection.user_id)
            for connection in tuple(self._sockets.followers.get(project_id, ()))
            if connection.user_id is not None and (wanted is None or connection.user_id in wanted)
        ]
        allowed = await pairs_with_access((project_id, user_id) for _, user_id in checked)
        for connection, user_id in checked:
            if (project_id, user_id) not in allowed:
                await connection.revoke(project_id)
