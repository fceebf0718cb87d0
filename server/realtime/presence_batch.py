"""One project's presence changes on this instance, coalesced into one ``presence_diff``.

docs/protocol.md §3.4 lets updates be coalesced (latest wins) under load. Every
join, leave and state change of a local socket is told to every member of
the project; in a reconnect storm of a 100-member project that is 100 frames
per join. The presence fan-out (server/realtime/presence_fanout.py) collects
a project's changes for a short while and sends them as one frame with
several joins and leaves. Pure logic, no I/O: the fan-out writes to Redis
and publishes.

The rules, per connection id, the latest change wins:

- present at the end (joined, changed state, or left and joined again):
  in ``joins`` with its latest entry (a join of a known id replaces it);
- absent at the end (left, or joined and left within the batch): in
  ``leaves``. A join and leave inside one batch still sends the leave:
  a socket that joined meanwhile may have read the entry from the shared
  map (``joined.presence``), and must be told it went. A leave of an id a
  client never knew is a no-op for it.

How long a batch gathers: ``flush_s`` (MOODBOARD_PRESENCE_FLUSH_MS) in most
projects, longer in large ones (:func:`period`).

An id is never in both ``joins`` and ``leaves`` of one frame. The sockets
whose own entries are in ``joins`` are the frame's ``sources``: each of them
gets the frame without its own entry (it is never told about itself as if it
were another; ``joined.presence`` already had it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from server.realtime.protocol import PresenceDiff, PresenceEntry

# A large project's diffs cost an instance about this many frames a second (see period).
FRAMES_PER_S = 500
LONGEST_PERIOD_S = 1.0


def period(members: int, flush_s: float) -> float:
    """How long a project's presence changes gather before its next diff goes out.

    ``flush_s`` for most projects. Every diff goes to every member, and in a
    busy project every member makes changes, so presence traffic grows with
    the square of the members. Past ``FRAMES_PER_S`` x ``flush_s`` members
    (25 by default), the period grows with them (100 members: 200 ms), up to
    ``LONGEST_PERIOD_S``: a large project's presence costs an instance a
    bounded number of frames a second, and a join storm (everyone reconnecting
    at once) does not spend its time telling everyone about everyone else.
    """
    return min(max(flush_s, members / FRAMES_PER_S), max(flush_s, LONGEST_PERIOD_S))


@dataclass(slots=True)
class Change:
    """The latest presence change of one connection in a batch."""

    entry: PresenceEntry  # its entry now, or the one that left
    present: bool
    store: bool = False  # a state change: written to the shared map when the batch goes out
    owner: Any = None  # the local Connection of a state change (to check it is still joined)


@dataclass(slots=True)
class PresenceBatch:
    """The changes of one project waiting to go out together."""

    changes: dict[str, Change] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.changes)

    def joined(self, connection_id: str, entry: PresenceEntry) -> None:
        """The connection entered the shared map (it is stored already)."""
        self.changes[connection_id] = Change(entry, present=True)

    def state(self, connection_id: str, entry: PresenceEntry, owner: Any) -> None:
        """A new state: stored in the shared map when the batch goes out (latest wins)."""
        self.changes[connection_id] = Change(entry, present=True, store=True, owner=owner)

    def left(self, connection_id: str, entry: PresenceEntry) -> None:
        """The connection's entry was removed from the shared map."""
        self.changes[connection_id] = Change(entry, present=False)

    def take(self) -> dict[str, Change]:
        """Every change so far; the batch is empty after."""
        changes, self.changes = self.changes, {}
        return changes


def diff(project_id: Any, changes: dict[str, Change]) -> tuple[PresenceDiff, list[str]] | None:
    """The frame for these changes and its sources; None when there is nothing to say."""
    joins = {cid: c.entry for cid, c in changes.items() if c.present}
    leaves = {cid: c.entry for cid, c in changes.items() if not c.present}
    if not joins and not leaves:
        return None
    return PresenceDiff(project_id=project_id, joins=joins, leaves=leaves), list(joins)


def without(frame: PresenceDiff, connection_id: str) -> PresenceDiff | None:
    """``frame`` as its source ``connection_id`` receives it: without its own entry.

    None when nothing else is left in it.
    """
    joins = {cid: e for cid, e in frame.joins.items() if cid != connection_id}
    if not joins and not frame.leaves:
        return None
    return PresenceDiff(project_id=frame.project_id, joins=joins, leaves=frame.leaves)
