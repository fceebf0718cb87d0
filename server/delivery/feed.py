"""One project's event feed on one instance, as a pure state machine.

An instance hears of a project's events in three ways, none of them reliable
on its own: the event itself over the bus (any order, duplicated, or lost
while Redis is down); an announcement that the log holds events up to a seq
(a NOTIFY from an outside writer, the periodic comparison with the log, a
join's read); and the answer to a read of the log it asked for. The feed
turns all of it into one run of events 1, 2, 3 ... for the project's local
sockets: each event dispatched once, in seq order, none skipped. Whatever it
cannot dispatch yet (an earlier event is missing), it holds and asks for the
missing range to be read from the log.

Rules (the hub carries out each ``Step``: dispatch its events in order, then
start its read, at most one read at a time):

- Until a join has read the project at some seq S, the feed does not know
  where its run starts: it holds what arrives and remembers announcements,
  and the first read sets the head to S (``read_at``).
- An event at head + 1 is dispatched, then whatever held events follow it.
  An event further ahead is held and the gap read from the log. An event at
  or below the head is a duplicate: dropped.
- An announcement beyond the head asks for a read up to it. One arriving
  while a read is in flight is remembered (``logged``); the read's answer is
  followed at once by another read when more is known to be logged, so a
  burst of announcements (one statement writing many rows) never waits for
  the periodic check.
- A read that fails, or that makes no progress, is not retried at once: the
  next announcement (the hub's periodic check sends one every round) asks
  again, so a database that is down is not hammered.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

F = TypeVar("F")

MAX_HELD = 4096  # events held ahead of a gap; past it, they are read from the log later


@dataclass(frozen=True, slots=True)
class ReadLog:
    """Read the log's events with ``after < seq <= upto``; answer ``filled`` or ``fill_failed``."""

    after: int
    upto: int


@dataclass(slots=True)
class Step(Generic[F]):
    """What the hub does after an input: dispatch these events in order, then start the read."""

    dispatch: list[tuple[int, F]] = field(default_factory=list)
    read: ReadLog | None = None


class ProjectFeed(Generic[F]):
    """One project's events on this instance: dispatched up to ``head``, in order, once.

    Args:
        max_held: events held ahead of a gap at most; an event past it is
            dropped and read from the log once the gap is filled.
    """

    __slots__ = ("_held", "head", "logged", "max_held", "reading")

    def __init__(self, *, max_held: int = MAX_HELD) -> None:
        self.head: int | None = None  # dispatched up to here; None before the first join's read
        self.logged = 0  # the highest seq known to be in the log
        self.reading = False  # a ReadLog is in flight
        self.max_held = max_held
        self._held: dict[int, F] = {}

    @property
    def held(self) -> int:
        """How many events wait for an earlier one."""
        return len(self._held)

    # --- inputs ---------------------------------------------------------------------------

    def arrived(self, seq: int, frame: F) -> Step[F]:
        """An event from the bus (or anywhere else that is not the feed's own read)."""
        head = self.head
        if head is not None and seq <= head:
            return Step()  # a duplicate: dispatched already
        if seq > self.logged:
            self.logged = seq
        if head is not None and seq == head + 1 and not self._held:
            self.head = seq  # the common case: next in line, nothing waiting
            return Step([(seq, frame)])
        self._hold(seq, frame)
        return self._advance()

    def announced(self, seq: int) -> Step[F]:
        """The log holds the project's events up to ``seq`` (NOTIFY, the periodic check)."""
        if seq > self.logged:
            self.logged = seq
        return self._advance()

    def read_at(self, seq: int) -> Step[F]:
        """A join read the project at ``seq``: the first one starts the feed's run there."""
        if self.head is None:
            self.head = seq
            self._held = {s: f for s, f in self._held.items() if s > seq}
        return self.announced(seq)

    def filled(self, events: Sequence[tuple[int, F]]) -> Step[F]:
        """The answer to the feed's ``ReadLog``: the events found, in any order."""
        self.reading = False
        before = self.head
        for seq, frame in events:
            self._hold(seq, frame)
        step = self._advance(read=False)
        if self.head != before and self.head is not None and self.logged > self.head:
            # more was announced while reading: read on now, not at the next check
            step.read = self._read()
        return step

    def fill_failed(self) -> Step[F]:
        """The read failed; the next announcement asks again."""
        self.reading = False
        return Step()

    # --- inside ---------------------------------------------------------------------------

    def _hold(self, seq: int, frame: F) -> None:
        head = self.head
        if head is not None and seq <= head:
            return
        if seq > self.logged:
            self.logged = seq
        if seq in self._held or len(self._held) < self.max_held:
            self._held.setdefault(seq, frame)

    def _advance(self, *, read: bool = True) -> Step[F]:
        """Dispatch what follows the head; ask for a read when more is logged."""
        step: Step[F] = Step()
        head = self.head
        if head is None:
            return step
        held = self._held
        while held:
            frame = held.pop(head + 1, None)
            if frame is None:
                break
            head += 1
            step.dispatch.append((head, frame))
        self.head = head
        if read and self.logged > head and not self.reading:
            step.read = self._read()
        return step

    def _read(self) -> ReadLog:
        assert self.head is not None
        self.reading = True
        return ReadLog(after=self.head, upto=self.logged)
