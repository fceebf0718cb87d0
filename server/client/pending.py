"""Edits waiting for an answer, keyed by ``op_id`` (docs/protocol.md §3.3), sans I/O.

Each entry is the caller's intent, the attempt now on the wire and the future
the caller awaits. An edit stays here until the server answers it, so after a
reconnect every unanswered one is sent again with the same ``op_id`` (the
server applies it once) and edits made offline go out in the order they were
made. A conflict becomes a rebased attempt (``rebase.py``) under a new
``op_id``, or the caller's :class:`EditConflict`.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field

import msgspec

from server.client import rebase
from server.client.errors import ClientError, EditConflict, QueueFull, ServerRefused
from server.realtime import protocol as p


@dataclass(frozen=True, slots=True)
class EditResult:
    """A committed edit: the server's ack, plus how many rebases it took."""

    op_id: str
    id: uuid.UUID
    version: int | None
    seq: int
    merged: bool
    rebased: int = 0


@dataclass(slots=True)
class _Pending:
    edit: p.Edit  # the attempt on the wire; its ``data`` is the caller's intent
    future: asyncio.Future[EditResult]
    rebase: bool = True
    conflicts: list[p.Conflict] = field(default_factory=list)


def new_op_id() -> str:
    """A fresh client operation id (docs/protocol.md §3.3: at most 64 characters)."""
    return f"c-{uuid.uuid4().hex}"


class PendingEdits:
    """The bounded set of unanswered edits (``max_pending``; no unbounded queue)."""

    def __init__(self, max_pending: int, *, max_rebases: int = rebase.MAX_REBASES) -> None:
        self.max_pending = max_pending
        self.max_rebases = max_rebases
        self._ops: dict[str, _Pending] = {}

    def __len__(self) -> int:
        return len(self._ops)

    def __contains__(self, op_id: object) -> bool:
        return op_id in self._ops

    def add(self, edit: p.Edit, *, rebase_conflicts: bool) -> asyncio.Future[EditResult]:
        """Keep ``edit`` until answered; the future completes with its outcome.

        Raises:
            QueueFull: ``max_pending`` edits are already waiting.
        """
        if len(self._ops) >= self.max_pending:
            raise QueueFull(f"{self.max_pending} edits are waiting for an answer")
        if edit.op_id in self._ops:
            raise ValueError(f"op_id {edit.op_id} is already waiting")
        future: asyncio.Future[EditResult] = asyncio.get_running_loop().create_future()
        self._ops[edit.op_id] = _Pending(edit, future, rebase=rebase_conflicts)
        return future

    def unanswered(self) -> list[p.Edit]:
        """Every waiting attempt, oldest first (what a resume sends again)."""
        return [pending.edit for pending in self._ops.values()]

    def acked(self, frame: p.Ack) -> None:
        pending = self._ops.pop(frame.op_id, None)
        if pending is not None and not pending.future.done():
            pending.future.set_result(
                EditResult(
                    op_id=frame.op_id,
                    id=frame.id,
                    version=frame.version,
                    seq=frame.seq,
                    merged=frame.merged,
                    rebased=len(pending.conflicts),
                )
            )

    def conflicted(self, frame: p.Conflict) -> p.Edit | None:
        """The rebased attempt to send now, or None (surfaced to the caller, or not ours)."""
        pending = self._ops.pop(frame.op_id, None)
        if pending is None or pending.future.done():
            return None
        decision: rebase.Decision = rebase.Surface("rebasing was not asked for")
        if pending.rebase:
            decision = rebase.decide(
                pending.edit,
                frame,
                attempt=len(pending.conflicts),
                new_op_id=new_op_id(),
                max_rebases=self.max_rebases,
            )
        if isinstance(decision, rebase.Surface):
            pending.future.set_exception(EditConflict(frame, decision.reason))
            return None
        retry = msgspec.structs.replace(decision.edit, ref=decision.edit.op_id)
        pending.edit = retry
        pending.conflicts.append(frame)
        self._ops[retry.op_id] = pending
        return retry

    def refused(self, frame: p.Error) -> p.Edit | None:
        """An error answering an edit: the edit to send again later, or None.

        ``rate_limited`` means the edit was not applied: it goes again later
        with the same ``op_id``. Any other code fails the caller's future with
        :class:`ServerRefused`.
        """
        pending = self._ops.get(frame.ref or "")
        if pending is None:
            return None
        if frame.code == "rate_limited":
            return pending.edit
        del self._ops[frame.ref or ""]
        if not pending.future.done():
            pending.future.set_exception(ServerRefused(frame))
        return None

    def fail_all(self, error: ClientError) -> None:
        """The client stopped: every waiting caller gets ``error``."""
        for pending in self._ops.values():
            if not pending.future.done():
                pending.future.set_exception(error)
        self._ops.clear()
