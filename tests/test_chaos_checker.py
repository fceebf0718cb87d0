"""The chaos run's checker (load_tests/chaos/checker.py) on hand-made journals."""

from __future__ import annotations

from typing import Any

from load_tests.chaos.checker import check
from load_tests.chaos.records import (
    AccessChange,
    DatabaseState,
    Journal,
    LoggedEvent,
    Received,
    SessionEnd,
)

P = "11111111-1111-1111-1111-111111111111"
U = "22222222-2222-2222-2222-222222222222"
ITEM = "33333333-3333-3333-3333-333333333333"
ROW: dict[str, Any] = {
    "id": ITEM,
    "room_id": "r",
    "kind": "note",
    "x": 0.0,
    "y": 0.0,
    "w": 200.0,
    "h": 200.0,
    "rotation": 0.0,
    "z": 0.0,
    "data": {},
    "version": 1,
}


def got(t: float, kind: str, conn: int = 1, **fields: Any) -> Received:
    return Received(t, "c", U, conn, 1, kind, project_id=None if kind == "closed" else P, **fields)  # type: ignore[arg-type]


def moved(t: float, seq: int, conn: int = 1) -> Received:
    """An item.updated event moving ITEM to x = seq, version seq + 1."""
    return got(
        t, "event", conn, seq=seq, event_kind="item.updated", entity="item", id=ITEM,
        version=seq + 1, data={"x": float(seq)},
    )  # fmt: skip


def db_at(head: int, events: list[LoggedEvent] | None = None) -> DatabaseState:
    row = {**ROW, "x": float(head), "version": head + 1}
    return DatabaseState({P: head}, {P: {ITEM: row}}, events or [])


def kinds(journal: Journal, db: DatabaseState, end: int | None) -> list[str]:
    return [v.kind for v in check(journal, db, {("c", P): end})]


def test_a_resume_with_last_seq_that_continues_the_run_passes() -> None:
    """Snapshot at 0, events 1-2, a cut, a replay from 2 with 3-4: no violation, state equal."""
    journal = Journal(
        received=[
            got(0.0, "joined", seq=0, mode="snapshot", snapshot_items=[ROW]),
            moved(0.1, 1),
            moved(0.2, 2),
            got(0.3, "closed", code=1006),
            got(0.5, "joined", 2, seq=4, mode="replay", last_seq=2),
            moved(0.6, 3, 2),
            moved(0.7, 4, 2),
        ]
    )
    assert kinds(journal, db_at(4), 4) == []


def test_a_skipped_and_a_repeated_seq_are_a_gap_and_a_duplicate() -> None:
    """Seq 2 never comes, seq 3 comes twice: one gap, one duplicate."""
    journal = Journal(
        received=[
            got(0.0, "joined", seq=0, mode="snapshot", snapshot_items=[ROW]),
            moved(0.1, 1),
            moved(0.2, 3),
            moved(0.3, 3),
        ]
    )
    assert sorted(kinds(journal, db_at(3), 3)) == ["duplicate", "gap"]


def test_a_client_short_of_the_head_or_with_other_rows_is_reported() -> None:
    """Ending at seq 1 of 2 is not_caught_up; at the head with a stale x, state_mismatch."""
    journal = Journal(
        received=[got(0.0, "joined", seq=0, mode="snapshot", snapshot_items=[ROW]), moved(0.1, 1)]
    )
    assert kinds(journal, db_at(2), 1) == ["not_caught_up"]
    stale = DatabaseState({P: 1}, {P: {ITEM: {**ROW, "x": 9.0, "version": 2}}}, [])
    assert kinds(journal, stale, 1) == ["state_mismatch"]


def test_events_after_a_removal_and_writes_after_it_are_reported() -> None:
    """Removed at seq 5 (204 at t=1): seq 6 at t=3 is late; the member's write at seq 6 too."""
    events = [
        LoggedEvent(P, 5, "member.deleted", "member", U, "owner", {}),
        LoggedEvent(P, 6, "item.updated", "item", ITEM, U, {"x": 6.0}),
    ]
    journal = Journal(
        received=[
            got(0.0, "joined", seq=4, mode="snapshot", snapshot_items=[ROW]),
            got(0.9, "event", seq=5, event_kind="member.deleted", entity="member", id=U, data={}),
            moved(3.0, 6),
        ],
        access_changes=[AccessChange(U, P, "removed", answered_at=1.0)],
    )
    found = kinds(journal, db_at(6, events), 6)
    assert "delivered_after_access_end" in found
    assert "write_after_access_end" in found


def test_after_a_logout_only_events_committed_after_it_count() -> None:
    """Logged out at t=1 (wall 1000): seq 6, committed before, arriving at t=3 is the member's
    (a loaded machine delivers late); seq 7, committed after, arriving at t=3 is reported."""
    events = [
        LoggedEvent(P, 6, "item.updated", "item", ITEM, U, {"x": 6.0}, at=999.5),
        LoggedEvent(P, 7, "item.updated", "item", ITEM, U, {"x": 7.0}, at=1000.5),
    ]
    before = Journal(
        received=[got(0.0, "joined", seq=5, mode="snapshot", snapshot_items=[ROW]), moved(3.0, 6)],
        session_ends=[SessionEnd("c", 1, answered_at=1.0, answered_wall=1000.0)],
    )
    assert "delivered_after_access_end" not in kinds(before, db_at(6, events[:1]), 6)
    after = Journal(received=[*before.received, moved(3.1, 7)], session_ends=before.session_ends)
    assert "delivered_after_access_end" in kinds(after, db_at(7, events), 7)
