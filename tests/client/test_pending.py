"""Unanswered edits by op_id: acks, rebases, refusals and the bound (no socket involved)."""

from __future__ import annotations

import uuid

import pytest

from server.client import EditConflict, QueueFull, ServerRefused
from server.client.pending import PendingEdits
from server.realtime import protocol as p

PID, ITEM = uuid.uuid4(), uuid.uuid4()


def update(op_id: str, x: int = 10) -> p.Edit:
    return p.Edit(
        ref=op_id,
        project_id=PID,
        op_id=op_id,
        action="update",
        entity="item",
        id=ITEM,
        base_version=1,
        data={"x": x},
    )


def conflict(op_id: str, current: dict[str, object] | None = None) -> p.Conflict:
    return p.Conflict(
        ref=op_id,
        op_id=op_id,
        entity="item",
        id=ITEM,
        base_version=1,
        current_version=None if current is None else 3,
        current=current,
        fields=["x"],
    )


def ack(op_id: str, seq: int) -> p.Ack:
    return p.Ack(ref=op_id, op_id=op_id, id=ITEM, version=4, seq=seq, merged=False)


async def test_a_conflict_becomes_a_rebased_attempt_that_the_ack_completes() -> None:
    """The retry carries a new op_id and the current version; its ack resolves the caller."""
    edits = PendingEdits(max_pending=10)
    future = edits.add(update("a"), rebase_conflicts=True)
    retry = edits.conflicted(conflict("a", {"x": 1}))
    assert retry is not None
    assert (retry.op_id != "a", retry.ref, retry.base_version, retry.data) == (
        True,
        retry.op_id,
        3,
        {"x": 10},
    )
    assert edits.unanswered() == [retry]
    edits.acked(ack(retry.op_id, 7))
    result = future.result()
    assert (result.op_id, result.seq, result.rebased) == (retry.op_id, 7, 1)
    assert len(edits) == 0


async def test_a_conflict_on_a_deleted_entity_fails_the_caller() -> None:
    """No rebase when current is null: EditConflict, and nothing is left waiting."""
    edits = PendingEdits(max_pending=10)
    future = edits.add(update("a"), rebase_conflicts=True)
    assert edits.conflicted(conflict("a")) is None
    with pytest.raises(EditConflict):
        future.result()
    assert len(edits) == 0


async def test_rebase_can_be_turned_off() -> None:
    """With rebase_conflicts=False the first conflict goes to the caller."""
    edits = PendingEdits(max_pending=10)
    future = edits.add(update("a"), rebase_conflicts=False)
    assert edits.conflicted(conflict("a", {"x": 1})) is None
    with pytest.raises(EditConflict, match="not asked"):
        future.result()


async def test_rate_limited_keeps_the_edit_and_other_errors_fail_it() -> None:
    """rate_limited hands the same edit back to resend; forbidden raises ServerRefused."""
    edits = PendingEdits(max_pending=10)
    slow = edits.add(update("a"), rebase_conflicts=True)
    denied = edits.add(update("b"), rebase_conflicts=True)
    again = edits.refused(p.Error(ref="a", code="rate_limited", message="slow down"))
    assert again == update("a")
    assert not slow.done()
    assert edits.refused(p.Error(ref="b", code="forbidden", message="no")) is None
    with pytest.raises(ServerRefused):
        denied.result()
    assert [e.op_id for e in edits.unanswered()] == ["a"]


async def test_the_queue_is_bounded_and_keeps_order() -> None:
    """At most max_pending edits wait, resent oldest first; one more is QueueFull."""
    edits = PendingEdits(max_pending=3)
    for n in range(3):
        edits.add(update(f"op{n}", n), rebase_conflicts=True)
    with pytest.raises(QueueFull):
        edits.add(update("op3"), rebase_conflicts=True)
    assert [e.op_id for e in edits.unanswered()] == ["op0", "op1", "op2"]
