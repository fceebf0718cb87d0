"""The seam between access/content changes and live sockets (DESIGN.md "Access and sessions").

Services call a ``Notifier`` after they commit: sessions revoked, a user's
access to a project changed, events appended. The realtime layer implements
it with control messages through the broker so every instance closes or
unsubscribes the affected sockets; until then ``LocalNotifier`` just keeps the
latest calls so callers are testable.
"""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import Sequence
from typing import Protocol

from server.events.log import EventRecord
from server.types import ProjectId, UserId

RECENT = 1000


class Notifier(Protocol):
    """What services tell the live side after a commit."""

    async def sessions_revoked(self, session_ids: Sequence[uuid.UUID]) -> None:
        """These sessions are dead: close their sockets (4401)."""

    async def access_changed(
        self, project_id: ProjectId, user_ids: Sequence[UserId] | None
    ) -> None:
        """Re-check these users' access to the project (None: everyone's, e.g. deleted)."""

    async def events_committed(self, events: Sequence[EventRecord]) -> None:
        """Deliver these committed events to the project's subscribers."""


class LocalNotifier:
    """Remembers the most recent notifications (bounded); no sockets to tell yet."""

    def __init__(self) -> None:
        self.revoked: deque[uuid.UUID] = deque(maxlen=RECENT)
        self.access: deque[tuple[ProjectId, tuple[UserId, ...] | None]] = deque(maxlen=RECENT)
        self.events: deque[EventRecord] = deque(maxlen=RECENT)

    async def sessions_revoked(self, session_ids: Sequence[uuid.UUID]) -> None:
        self.revoked.extend(session_ids)

    async def access_changed(
        self, project_id: ProjectId, user_ids: Sequence[UserId] | None
    ) -> None:
        self.access.append((project_id, None if user_ids is None else tuple(user_ids)))

    async def events_committed(self, events: Sequence[EventRecord]) -> None:
        self.events.extend(events)
