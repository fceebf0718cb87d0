"""The coalescing rules of a project's presence batch (server/realtime/presence_batch.py)."""

from __future__ import annotations

import uuid

import pytest

from server.realtime.presence_batch import (
    FRAMES_PER_S,
    LONGEST_PERIOD_S,
    PresenceBatch,
    diff,
    period,
    without,
)
from server.realtime.protocol import PresenceDiff, PresenceEntry

PID = uuid.uuid4()
ANN, BOB = uuid.uuid4(), uuid.uuid4()


def entry(user: uuid.UUID = ANN, **state: object) -> PresenceEntry:
    return PresenceEntry(user_id=user, name="Ann" if user == ANN else "Bob", state=dict(state))


def frame_of(batch: PresenceBatch) -> tuple[PresenceDiff, list[str]] | None:
    return diff(PID, batch.take())


def test_joins_and_leaves_of_several_sockets_go_out_in_one_frame() -> None:
    batch = PresenceBatch()
    batch.joined("i.1", entry())
    batch.joined("i.2", entry(BOB))
    batch.left("i.3", entry(BOB))
    made = frame_of(batch)
    assert made is not None
    frame, sources = made
    assert frame.joins == {"i.1": entry(), "i.2": entry(BOB)}
    assert frame.leaves == {"i.3": entry(BOB)}
    assert sorted(sources) == ["i.1", "i.2"]
    assert not batch  # taken: the next batch starts empty
    assert frame_of(batch) is None


def test_a_join_then_leave_in_one_batch_still_sends_the_leave() -> None:
    """Someone may have read the entry from the shared map meanwhile: it must hear it went."""
    batch = PresenceBatch()
    batch.joined("i.1", entry())
    batch.left("i.1", entry())
    made = frame_of(batch)
    assert made is not None
    frame, sources = made
    assert frame.joins == {}
    assert frame.leaves == {"i.1": entry()}
    assert sources == []


def test_a_leave_then_join_again_sends_only_the_new_entry() -> None:
    batch = PresenceBatch()
    batch.left("i.1", entry(cursor=1))
    batch.joined("i.1", entry())
    made = frame_of(batch)
    assert made is not None
    frame, sources = made
    assert frame.joins == {"i.1": entry()}
    assert frame.leaves == {}
    assert sources == ["i.1"]


def test_the_latest_state_wins_and_is_stored_when_the_batch_goes_out() -> None:
    batch = PresenceBatch()
    batch.joined("i.1", entry())
    batch.state("i.1", entry(cursor=1), owner="conn")
    batch.state("i.1", entry(cursor=2), owner="conn")
    changes = batch.take()
    assert changes["i.1"].store
    assert changes["i.1"].owner == "conn"
    made = diff(PID, changes)
    assert made is not None
    assert made[0].joins == {"i.1": entry(cursor=2)}


def test_a_state_change_then_leave_sends_the_leave_and_stores_nothing() -> None:
    batch = PresenceBatch()
    batch.state("i.1", entry(cursor=1), owner="conn")
    batch.left("i.1", entry(cursor=1))
    changes = batch.take()
    assert not changes["i.1"].store
    made = diff(PID, changes)
    assert made is not None
    assert (made[0].joins, made[0].leaves) == ({}, {"i.1": entry(cursor=1)})


def test_a_source_gets_the_frame_without_its_own_entry() -> None:
    frame = PresenceDiff(
        project_id=PID,
        joins={"i.1": entry(), "i.2": entry(BOB)},
        leaves={"i.3": entry(BOB)},
    )
    own = without(frame, "i.1")
    assert own is not None
    assert own.joins == {"i.2": entry(BOB)}
    assert own.leaves == {"i.3": entry(BOB)}
    assert frame.joins.keys() == {"i.1", "i.2"}  # the shared frame is untouched


def test_a_source_alone_in_its_frame_gets_nothing() -> None:
    frame = PresenceDiff(project_id=PID, joins={"i.1": entry()}, leaves={})
    assert without(frame, "i.1") is None


def test_a_large_projects_changes_gather_longer_so_its_presence_traffic_stays_bounded() -> None:
    """Up to 25 members: every flush_s; then in proportion (frames/s bounded); at most 1 s."""
    assert period(1, 0.05) == 0.05
    assert period(25, 0.05) == 0.05
    assert period(100, 0.05) == pytest.approx(0.2)
    assert 100 / period(100, 0.05) == pytest.approx(FRAMES_PER_S)  # frames a second, all members
    assert period(10_000, 0.05) == LONGEST_PERIOD_S
    assert period(10, 2.0) == 2.0  # a longer configured flush is kept, even past the cap
