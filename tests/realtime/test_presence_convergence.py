"""Coalesced presence converges (server/realtime/presence_batch.py, docs/protocol.md §3.4).

However joins, leaves and state changes interleave with the batches going
out, every member ends up with the true map: its ``joined.presence`` (the
shared map when it entered) with every later diff applied, as a client does.
A model of the fan-out's steps, no I/O: the shared map is a dict, a member's
view a dict, a flush what ``PresenceFanout._publish_changes`` and
``deliver`` do (store the states, one diff, each source without its own entry).
"""

from __future__ import annotations

import uuid

from hypothesis import given, settings
from hypothesis import strategies as st

from server.realtime.presence_batch import PresenceBatch, diff, without
from server.realtime.protocol import PresenceEntry

PID = uuid.uuid4()
USER = uuid.uuid4()
SOCKETS = [f"i.{n}" for n in range(5)]

Op = tuple[str, int, int]
ops = st.lists(
    st.tuples(
        st.sampled_from(["join", "leave", "state", "flush"]), st.integers(0, 4), st.integers()
    ),
    max_size=60,
)


class Room:
    """The shared map, the batch waiting to go out, and what each member has applied."""

    def __init__(self) -> None:
        self.shared: dict[str, PresenceEntry] = {}
        self.batch = PresenceBatch()
        self.views: dict[str, dict[str, PresenceEntry]] = {}

    def join(self, cid: str) -> None:
        entry = PresenceEntry(user_id=USER, name=cid, state={})
        self.shared[cid] = entry  # the enter: stored, then the whole map read
        self.views[cid] = dict(self.shared)  # joined.presence
        self.batch.joined(cid, entry)

    def leave(self, cid: str) -> None:
        entry = self.shared.pop(cid)
        del self.views[cid]  # it follows the project no more
        self.batch.left(cid, entry)

    def state(self, cid: str, value: int) -> None:
        entry = PresenceEntry(user_id=USER, name=cid, state={"cursor": value})
        self.views[cid][cid] = entry  # a client knows its own state: it sent it
        self.batch.state(cid, entry, owner=cid)

    def flush(self) -> None:
        changes = self.batch.take()
        for cid, change in list(changes.items()):
            if change.store:  # stored only while its socket is still in (latest change wins)
                if cid in self.shared:
                    self.shared[cid] = change.entry
                else:
                    del changes[cid]
        made = diff(PID, changes)
        if made is None:
            return
        frame, sources = made
        for cid, view in self.views.items():
            own = without(frame, cid) if cid in sources else frame
            if own is None:
                continue
            view.update(own.joins)
            for gone in own.leaves:
                view.pop(gone, None)


@settings(max_examples=300, deadline=None)
@given(ops)
def test_every_member_ends_with_the_true_map(steps: list[Op]) -> None:
    """After any joins, leaves, state changes and flushes, and a last flush: views == shared."""
    room = Room()
    for kind, index, value in steps:
        cid = SOCKETS[index]
        present = cid in room.shared
        if kind == "join" and not present:
            room.join(cid)
        elif kind == "leave" and present:
            room.leave(cid)
        elif kind == "state" and present:
            room.state(cid, value)
        elif kind == "flush":
            room.flush()
    room.flush()
    for cid, view in room.views.items():
        assert view == room.shared, cid


def test_a_join_and_leave_between_two_flushes_reach_a_member_who_read_the_entry() -> None:
    """The leave of an entry a newcomer read from the shared map still reaches it."""
    room = Room()
    room.join("i.0")
    room.join("i.1")  # reads i.0 from the shared map
    room.leave("i.0")
    room.flush()
    assert room.views == {"i.1": {"i.1": room.shared["i.1"]}}
