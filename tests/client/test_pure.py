"""The client's pure logic: applying events exactly once, rebase decisions, the backoff schedule."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.client import rebase
from server.client.state import Applied, ProjectState
from server.concurrency.backoff import Backoff
from server.realtime import protocol as p

PID = uuid.uuid4()
ROOM = uuid.uuid4()


def event(seq: int, kind: str, entity_id: uuid.UUID, data: dict[str, Any], version: int | None = 1):
    return p.EventFrame(
        project_id=PID,
        seq=seq,
        kind=kind,
        entity=kind.split(".")[0],
        id=entity_id,
        version=version,
        data=data,
        actor_id=None,
        op_id=None,
        at="2026-01-01T00:00:00Z",
    )


def snapshot_state(seq: int = 3) -> ProjectState:
    state = ProjectState(PID)
    state.load_snapshot(
        seq,
        {
            "project": {"id": str(PID), "name": "Flat", "version": 1, "seq": seq},
            "rooms": [{"id": str(ROOM), "name": "Kitchen", "version": 2}],
            "items": [],
            "generations": [],
            "members": [{"user_id": str(uuid.uuid4()), "role": "owner"}],
        },
    )
    return state


def test_snapshot_then_events_build_the_state() -> None:
    """Created, updated and deleted events change the snapshot's entities, versions included."""
    state = snapshot_state()
    item = uuid.uuid4()
    assert state.apply(event(4, "item.created", item, {"id": str(item), "x": 1.0, "y": 0.0})) is (
        Applied.APPLIED
    )
    assert state.apply(event(5, "item.updated", item, {"x": 9.0}, version=2)) is Applied.APPLIED
    assert state.items[item] == {"id": str(item), "x": 9.0, "y": 0.0, "version": 2}
    assert state.apply(event(6, "room.updated", ROOM, {"name": "Den"}, version=3)) is (
        Applied.APPLIED
    )
    assert (state.rooms[ROOM]["name"], state.version_of("room", ROOM)) == ("Den", 3)
    assert state.apply(event(7, "item.deleted", item, {}, version=3)) is Applied.APPLIED
    assert item not in state.items
    assert (state.seq, state.project and state.project["seq"]) == (7, 7)


def test_events_at_or_below_the_applied_seq_are_duplicates() -> None:
    """A replayed event the snapshot already holds is dropped and changes nothing."""
    state = snapshot_state(seq=3)
    assert state.apply(event(3, "room.updated", ROOM, {"name": "Old"}, version=9)) is (
        Applied.DUPLICATE
    )
    assert state.rooms[ROOM]["name"] == "Kitchen"


def test_a_gap_is_reported_and_not_applied() -> None:
    """An event past seq + 1 is a gap: the state stays at its seq so the client can resume."""
    state = snapshot_state(seq=3)
    assert state.apply(event(5, "room.updated", ROOM, {"name": "Far"}, version=3)) is Applied.GAP
    assert (state.seq, state.rooms[ROOM]["name"]) == (3, "Kitchen")


def test_generation_and_member_events_carry_whole_entities() -> None:
    """Generation kinds replace the generation; members are keyed by user id."""
    state = snapshot_state(seq=0)
    gen, user = uuid.uuid4(), uuid.uuid4()
    state.apply(event(1, "generation.queued", gen, {"id": str(gen), "status": "queued"}))
    state.apply(event(2, "generation.progress", gen, {"id": str(gen), "status": "running"}, 2))
    state.apply(event(3, "member.created", user, {"user_id": str(user), "role": "editor"}, None))
    assert state.generations[gen] == {"id": str(gen), "status": "running", "version": 2}
    assert state.members[user] == {"user_id": str(user), "role": "editor"}


@given(st.permutations(list(range(1, 21))), st.integers(min_value=0, max_value=3))
def test_any_delivery_order_applies_each_event_once_in_order(order: list[int], dupes: int) -> None:
    """Whatever order and duplicates arrive in, only the next seq applies, each exactly once."""
    state = ProjectState(PID)
    state.load_snapshot(0, {"project": {"id": str(PID), "seq": 0}})
    item = uuid.uuid4()
    applied: list[int] = []
    frames = {n: event(n, "item.updated", item, {"x": float(n)}, version=n) for n in order}
    # Redeliver everything (dupes + 1) times, as reconnects with replay would.
    for _ in range(dupes + 1):
        for n in order:
            if state.apply(frames[n]) is Applied.APPLIED:
                applied.append(n)
        # A resume re-sends every event after the applied seq, in order.
        for n in range(state.seq + 1, 21):
            assert state.apply(frames[n]) is Applied.APPLIED
            applied.append(n)
    assert applied == list(range(1, 21))
    assert state.items[item]["x"] == 20.0


def conflict(current: dict[str, Any] | None, current_version: int | None = 8) -> p.Conflict:
    return p.Conflict(
        ref="e1",
        op_id="c-1",
        entity="item",
        id=ROOM,
        base_version=6,
        current_version=current_version,
        current=current,
        fields=["x"],
    )


def edit(action: p.EditAction = "update") -> p.Edit:
    return p.Edit(
        ref="c-1",
        project_id=PID,
        op_id="c-1",
        action=action,
        entity="item",
        id=ROOM,
        base_version=6,
        data={"x": 10} if action == "update" else None,
    )


def test_an_update_is_rebased_on_the_current_version() -> None:
    """The same fields go again on the current version, under a fresh op_id."""
    decision = rebase.decide(edit(), conflict({"x": 3}), attempt=0, new_op_id="c-2")
    assert isinstance(decision, rebase.Retry)
    assert (decision.edit.base_version, decision.edit.data, decision.edit.op_id) == (
        8,
        {"x": 10},
        "c-2",
    )


def test_a_delete_is_rebased_when_the_entity_still_exists() -> None:
    """A stale delete still means 'gone': it is sent again on the current version."""
    decision = rebase.decide(edit("delete"), conflict({"x": 3}), attempt=0, new_op_id="c-2")
    assert isinstance(decision, rebase.Retry)
    assert decision.edit.base_version == 8


def test_a_deleted_entity_is_surfaced() -> None:
    """When someone else deleted the entity, the caller decides."""
    decision = rebase.decide(edit(), conflict(None, None), attempt=0, new_op_id="c-2")
    assert isinstance(decision, rebase.Surface)
    assert "deleted" in decision.reason


def test_rebasing_gives_up_after_the_limit() -> None:
    """An edit that keeps losing races goes back to the caller instead of looping."""
    decision = rebase.decide(
        edit(), conflict({"x": 3}), attempt=rebase.MAX_REBASES, new_op_id="c-9"
    )
    assert isinstance(decision, rebase.Surface)


@given(st.integers(min_value=0, max_value=10_000), st.floats(min_value=0, max_value=0.999))
def test_backoff_is_full_jitter_under_an_exponential_cap(attempt: int, draw: float) -> None:
    """Delays lie in [0, min(cap, base * 2**attempt)] and the ceiling never exceeds the cap."""
    backoff = Backoff(base_s=0.1, cap_s=10.0)
    ceiling = backoff.ceiling(attempt)
    assert ceiling == pytest.approx(min(10.0, 0.1 * 2.0 ** min(attempt, 100)))
    assert 0 <= backoff.delay(attempt, lambda: draw) <= ceiling


def test_backoff_grows_then_caps() -> None:
    """The ceiling doubles per attempt until the cap."""
    backoff = Backoff(base_s=1.0, cap_s=5.0)
    assert [backoff.ceiling(n) for n in range(5)] == [1.0, 2.0, 4.0, 5.0, 5.0]


def test_backoff_refuses_nonsense_settings() -> None:
    """A cap below the base or a shrinking factor is a ValueError."""
    with pytest.raises(ValueError, match="cap_s"):
        Backoff(base_s=2.0, cap_s=1.0)
    with pytest.raises(ValueError, match="factor"):
        Backoff(factor=0.5)


def test_server_frames_decode_into_the_shared_structs() -> None:
    """What the server encodes, the client decodes into the same Struct (unknown fields ignored)."""
    ack = p.Ack(ref="e1", op_id="c-1", id=ROOM, version=2, seq=5, merged=True)
    assert p.decode_server(p.encode(ack)) == ack
    assert p.decode_server(b'{"type":"pong","ref":"p","later":1}') == p.Pong(ref="p")
    join = p.Join(project_id=PID, last_seq=4, ref="j")
    assert p.decode(p.encode_client(join)) == join
