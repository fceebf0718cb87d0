"""The instance's local sockets: whose each one is, and which projects each follows.

Bookkeeping only, no I/O. The hub subscribes this instance upstream when a
project gets its first local follower and unsubscribes it after the last
(``follow``/``unfollow`` say when); fan-out reads ``followers`` to find a
project's sockets and each one's ``JoinedStream`` of it; a user's sockets are counted against
``max_sockets_per_user`` (docs/protocol.md §3.5).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from server.delivery.stream import JoinedStream
    from server.realtime.connection import Connection
    from server.transport.wire import Outgoing

    Followers = dict[Connection, JoinedStream[Outgoing]]  # a project's sockets, each one's stream


class SocketRegistry:
    """Every open socket of this instance, by id, by user and by followed project."""

    def __init__(self, max_sockets_per_user: int = 50) -> None:
        self.max_sockets_per_user = max_sockets_per_user
        self.connections: dict[str, Connection] = {}
        self.followers: dict[uuid.UUID, Followers] = {}  # by project
        self._by_user: dict[uuid.UUID, set[Connection]] = {}
        # Counts every change of the maps: the access check walks the sockets only when
        # this moved or the database's access changed (server/realtime/access_check.py).
        self.changes = 0

    def register(self, connection: Connection, user_id: uuid.UUID) -> bool:
        """Count a socket against its user's limit; False when the user has too many."""
        sockets = self._by_user.setdefault(user_id, set())
        if connection not in sockets and len(sockets) >= self.max_sockets_per_user:
            return False
        sockets.add(connection)
        self.connections[connection.id] = connection
        self.changes += 1
        return True

    def buffered_bytes(self) -> int:
        """Bytes sent to this instance's sockets, not yet taken by the kernel (slow readers')."""
        return sum(connection.buffered_bytes for connection in self.connections.values())

    def unregister(self, connection: Connection) -> None:
        self.connections.pop(connection.id, None)
        self.changes += 1
        if connection.user_id is not None:
            sockets = self._by_user.get(connection.user_id)
            if sockets is not None:
                sockets.discard(connection)
                if not sockets:
                    del self._by_user[connection.user_id]

    def follow(
        self, connection: Connection, project_id: uuid.UUID, stream: JoinedStream[Outgoing]
    ) -> bool:
        """Add a follower of the project, with its stream; True when it is the project's first here.

        The feed hands each event to the stream straight from this map: per
        socket and event that is one call less than through the connection
        (the fan-out's hot loop, docs/performance.md).
        """
        followers = self.followers.setdefault(project_id, {})
        first = not followers
        followers[connection] = stream
        self.changes += 1
        return first

    def unfollow(self, connection: Connection, project_id: uuid.UUID) -> bool:
        """Remove a follower of the project; True when it was the project's last here."""
        followers = self.followers.get(project_id)
        if followers is None or connection not in followers:
            return False
        del followers[connection]
        self.changes += 1
        if followers:
            return False
        del self.followers[project_id]
        return True
