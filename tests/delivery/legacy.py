"""A port of the delivery logic the core replaced (hub.Feed + Connection, 2026-11), for the model.

The same rules as the old ``Realtime._arrive / notice / _fill / feed_start``
and ``Connection.deliver_event / _join``, written against the core's
interfaces so tests/delivery/test_legacy.py can show the model finds the
defects they had. Not used by the server.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Generic, TypeVar

from server.delivery.feed import ReadLog, Step
from server.delivery.stream import Release, Verdict

F = TypeVar("F")


class LegacyFeed(Generic[F]):
    def __init__(self) -> None:
        self.head: int | None = None
        self.pending: dict[int, F] = {}
        self.filling = False

    def arrived(self, seq: int, frame: F) -> Step[F]:
        if self.head is None:  # no join has finished its read: joiners buffer and sort
            return Step([(seq, frame)])
        if seq <= self.head:
            return Step()
        self.pending[seq] = frame
        step = self._drain()
        if self.pending:
            step.read = self._notice(max(self.pending))
        return step

    def announced(self, seq: int) -> Step[F]:
        return Step(read=self._notice(seq))

    def read_at(self, seq: int) -> Step[F]:
        if self.head is None:
            self.head = seq
            self.pending = {s: f for s, f in self.pending.items() if s > seq}
            return self._drain()
        return Step()

    def filled(self, events: Sequence[tuple[int, F]]) -> Step[F]:
        assert self.head is not None
        for seq, frame in events:
            if seq > self.head:
                self.pending.setdefault(seq, frame)
        step = self._drain()
        self.filling = False
        return step

    def fill_failed(self) -> Step[F]:
        self.filling = False
        return Step()

    def _notice(self, seq: int) -> ReadLog | None:
        if self.head is None or seq <= self.head or self.filling:
            return None
        self.filling = True
        return ReadLog(self.head, seq)

    def _drain(self) -> Step[F]:
        step: Step[F] = Step()
        assert self.head is not None
        while self.head + 1 in self.pending:
            self.head += 1
            step.dispatch.append((self.head, self.pending.pop(self.head)))
        return step


class LegacyStream(Generic[F]):
    def __init__(self, *, max_held: int) -> None:
        self.max_held = max_held
        self.buffer: list[tuple[int | None, F]] | None = []
        self.last = 0
        self.ended = False

    def event(self, seq: int, frame: F) -> Verdict:
        if self.ended:
            return Verdict.SKIP
        if self.buffer is not None:
            if len(self.buffer) >= self.max_held:
                return Verdict.OVERFLOW
            self.buffer.append((seq, frame))
            return Verdict.HELD
        if seq > self.last:
            self.last = seq
            return Verdict.SEND
        return Verdict.SKIP

    def presence(self, frame: F) -> Verdict:
        if self.ended:
            return Verdict.SKIP
        if self.buffer is None:
            return Verdict.SEND
        if len(self.buffer) >= self.max_held:
            return Verdict.OVERFLOW
        self.buffer.append((None, frame))
        return Verdict.HELD

    def read_done(self, seq: int, dispatched: int | None) -> Release[F]:
        self.last = seq
        buffered, self.buffer = self.buffer or [], None
        buffered.sort(key=lambda entry: -1 if entry[0] is None else entry[0])
        release: Release[F] = Release()
        for event_seq, frame in buffered:
            if event_seq is None:
                release.frames.append(frame)
            elif event_seq > self.last:
                self.last = event_seq
                release.frames.append(frame)
        return release

    def end(self) -> None:
        self.ended = True
