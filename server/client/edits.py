"""The client's edits (docs/protocol.md §3.3): sent now or queued while offline; acked, rebased.

``edit`` sends one edit and waits for its answer; ``create``, ``update`` and
``delete`` are its shorthands (``update`` and ``delete`` take the base
version from the local state). An unanswered edit waits in ``PendingEdits``
(pending.py) and is sent again, with the same ``op_id``, on every new socket
until it is answered; a conflicting update is rebased (rebase.py).
``Client`` (realtime.py) has these methods; the socket, the resume and the
answers are its.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from server.client.pending import EditResult, PendingEdits, new_op_id
from server.client.state import ProjectState
from server.realtime import protocol as p

Id = uuid.UUID | str


class EditMethods:
    """``Client``'s edit calls (see the module docstring)."""

    if TYPE_CHECKING:  # what they use of the Client they are part of
        states: dict[uuid.UUID, ProjectState]
        _joined: set[uuid.UUID]
        _edits: PendingEdits

        def _raise_if_failed(self) -> None: ...

        async def wait_for_seq(self, project_id: Id, seq: int, timeout_s: float = 30.0) -> None: ...

        async def _send(self, message: p.ClientFrame) -> bool: ...

    async def edit(
        self,
        project_id: Id,
        action: p.EditAction,
        entity: p.EditEntity,
        *,
        id: Id | None = None,
        base_version: int | None = None,
        room_id: Id | None = None,
        data: dict[str, Any] | None = None,
        op_id: str | None = None,
        rebase_conflicts: bool = True,
        sync: bool = True,
    ) -> EditResult:
        """Send an edit (queued while offline) and wait for its ack.

        A conflicting update is rebased: the same fields are sent again on the
        current version (``rebase.py``). ``sync`` also waits until the local
        state of a joined project holds the edit's event.

        Raises:
            EditConflict: the conflict could not be rebased (the entity is gone,
                or ``rebase_conflicts`` is False).
            ServerRefused: the server refused the edit (forbidden, bad_request, ...).
            QueueFull: ``max_pending`` edits are already waiting.
        """
        self._raise_if_failed()
        pid = uuid.UUID(str(project_id))
        op = op_id or new_op_id()
        message = p.Edit(
            project_id=pid,
            op_id=op,
            ref=op,
            action=action,
            entity=entity,
            id=None if id is None else uuid.UUID(str(id)),
            base_version=base_version,
            room_id=None if room_id is None else uuid.UUID(str(room_id)),
            data=data,
        )
        future = self._edits.add(message, rebase_conflicts=rebase_conflicts)
        await self._send_edit(message)
        result = await future
        if sync and pid in self._joined:
            await self.wait_for_seq(pid, result.seq)
        return result

    async def create(
        self,
        project_id: Id,
        entity: p.EditEntity,
        data: dict[str, Any],
        *,
        room_id: Id | None = None,
        id: Id | None = None,
        op_id: str | None = None,
    ) -> EditResult:
        """Create a room or an item (``room_id`` for an item); ``id`` defaults to a new UUID."""
        return await self.edit(
            project_id,
            "create",
            entity,
            id=id or uuid.uuid4(),
            room_id=room_id,
            data=data,
            op_id=op_id,
        )

    async def update(
        self,
        project_id: Id,
        entity: p.EditEntity,
        id: Id,
        data: dict[str, Any],
        *,
        base_version: int | None = None,
        op_id: str | None = None,
        rebase_conflicts: bool = True,
    ) -> EditResult:
        """Set fields; ``base_version`` defaults to the version in the local state."""
        return await self.edit(
            project_id,
            "update",
            entity,
            id=id,
            base_version=base_version or self._local_version(project_id, entity, id),
            data=data,
            op_id=op_id,
            rebase_conflicts=rebase_conflicts,
        )

    async def delete(
        self,
        project_id: Id,
        entity: p.EditEntity,
        id: Id,
        *,
        base_version: int | None = None,
        op_id: str | None = None,
    ) -> EditResult:
        """Delete; ``base_version`` defaults to the version in the local state."""
        return await self.edit(
            project_id,
            "delete",
            entity,
            id=id,
            base_version=base_version or self._local_version(project_id, entity, id),
            op_id=op_id,
        )

    @property
    def pending(self) -> int:
        """Edits sent or queued and not answered yet."""
        return len(self._edits)

    async def _send_edit(self, edit: p.Edit) -> None:
        if edit.op_id in self._edits:
            await self._send(edit)

    def _local_version(self, project_id: Id, entity: str, id: Id) -> int:
        state = self.states.get(uuid.UUID(str(project_id)))
        version = None if state is None else state.version_of(entity, uuid.UUID(str(id)))
        if version is None:
            raise ValueError(f"{entity} {id} is not in the local state; pass base_version")
        return version
