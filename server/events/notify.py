"""The seam between access/content changes and live sockets (docs/architecture.md §5).

Services call a ``Notifier`` after they commit: sessions revoked, a user's
access to a project changed, events appended. The realtime layer
(``Realtime`` in ``server/realtime/hub.py``) implements it with messages on the bus, so every
instance delivers the events and closes or unsubscribes the affected sockets.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Protocol

from server.events.log import EventRecord
from server.types import ProjectId, UserId


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
