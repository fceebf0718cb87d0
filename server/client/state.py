"""A project's state as a client sees it: the snapshot, then every event in seq order (sans I/O).

docs/protocol.md §3.2 promises every event exactly once, in order, with no gap,
end to end across reconnects. The state checks that promise rather than
trusting it: an event at or below the last applied seq is a duplicate and is
dropped; one beyond the next seq is a gap, reported so the connection can
resume with ``last_seq`` and never applies a change on top of a hole.
"""

from __future__ import annotations

import copy
import enum
import uuid
from dataclasses import dataclass, field
from typing import Any

from server.realtime import protocol as p

Entity = dict[str, Any]
# The snapshot's lists and the event ``entity`` names they hold (docs/protocol.md §3.2).
COLLECTIONS = {"room": "rooms", "item": "items", "generation": "generations", "member": "members"}


class Applied(enum.Enum):
    """What ``ProjectState.apply`` did with an event."""

    APPLIED = "applied"
    DUPLICATE = "duplicate"  # seq <= the last applied one: already in the state
    GAP = "gap"  # seq > last + 1: events are missing, resume with last_seq


@dataclass(slots=True)
class ProjectState:
    """The materialised project: entities by id, each with its ``version``, as of ``seq``.

    ``complete`` is False when the state was started from a ``last_seq`` the
    caller supplied without a snapshot: it then holds only what events told it.
    """

    project_id: uuid.UUID
    seq: int = 0
    complete: bool = False
    project: Entity | None = None
    rooms: dict[uuid.UUID, Entity] = field(default_factory=dict)
    items: dict[uuid.UUID, Entity] = field(default_factory=dict)
    generations: dict[uuid.UUID, Entity] = field(default_factory=dict)
    members: dict[uuid.UUID, Entity] = field(default_factory=dict)

    def load_snapshot(self, seq: int, snapshot: dict[str, Any]) -> None:
        """Replace everything with a ``joined`` snapshot taken at ``seq``."""
        self.seq = seq
        self.complete = True
        self.project = dict(snapshot.get("project") or {}) or None
        self.rooms = _by_id(snapshot.get("rooms", []), "id")
        self.items = _by_id(snapshot.get("items", []), "id")
        self.generations = _by_id(snapshot.get("generations", []), "id")
        self.members = _by_id(snapshot.get("members", []), "user_id")

    def apply(self, event: p.EventFrame) -> Applied:
        """Apply one event frame if it is the next one (see the module docstring)."""
        if event.seq <= self.seq:
            return Applied.DUPLICATE
        if event.seq != self.seq + 1:
            return Applied.GAP
        self.seq = event.seq
        if self.project is not None:
            self.project["seq"] = event.seq
        self._change(event)
        return Applied.APPLIED

    def collection(self, entity: str) -> dict[uuid.UUID, Entity] | None:
        """The dict holding entities of this kind (None for ``project`` and unknown kinds)."""
        name = COLLECTIONS.get(entity)
        return None if name is None else getattr(self, name)

    def get(self, entity: str, entity_id: uuid.UUID) -> Entity | None:
        """The current entity (a project, room, item, generation or member), or None."""
        if entity == "project":
            if self.project is not None and str(self.project.get("id")) == str(entity_id):
                return self.project
            return None
        found = self.collection(entity)
        return None if found is None else found.get(entity_id)

    def version_of(self, entity: str, entity_id: uuid.UUID) -> int | None:
        current = self.get(entity, entity_id)
        return (
            None if current is None or current.get("version") is None else int(current["version"])
        )

    def _change(self, event: p.EventFrame) -> None:
        _, _, change = event.kind.partition(".")
        if event.entity == "project":
            if change == "deleted":
                self.project = None
            else:
                self.project = _merged(self.project, event, whole=change == "created")
            return
        found = self.collection(event.entity)
        if found is None:
            return  # an entity this client does not materialise; the seq still counts
        if change == "deleted":
            found.pop(event.id, None)
        else:
            # ``created`` and the generation kinds carry the whole entity; ``updated``
            # the changed fields only (docs/protocol.md §3.2).
            whole = change != "updated" or event.id not in found
            found[event.id] = _merged(found.get(event.id), event, whole=whole)


def _by_id(rows: list[Entity], key: str) -> dict[uuid.UUID, Entity]:
    return {uuid.UUID(str(row[key])): copy.deepcopy(row) for row in rows}


def _merged(current: Entity | None, event: p.EventFrame, *, whole: bool) -> Entity:
    entity = {} if whole or current is None else current
    entity.update(copy.deepcopy(event.data))
    if event.version is not None:
        entity["version"] = event.version
    return entity
