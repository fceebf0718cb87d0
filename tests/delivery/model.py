"""A model of one project on one instance: the world around the delivery core.

The world is the event log (seqs 1..``log``), the bus (events published and
not yet heard: heard in any order, twice, or never), NOTIFYs in flight (the
same), reads of the log that answer late or fail, and sockets that join
(subscribe, read at S, go live), leave, are revoked or overflow. The glue
between the feed and the streams is the hub's, rule for rule
(``Instance.carry_out``); the state machines under test are given as
factories, so the same model drives today's core and, in
tests/delivery/test_legacy.py, a port of the one it replaced.

Invariants checked after every step: each socket's events are gap-free, in
order, once, after its join's read seq, never past the log, and none after
it ended; the feed never has two reads in flight. ``settle`` then stops all
loss, lets every message and read through and checks that every live socket
caught up with the log.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    precondition,
    rule,
)

from server.delivery.feed import ReadLog
from server.delivery.stream import Release, Verdict

MAX_HELD = 8  # small, so overflow (close 4503) happens in the model too
# A read of the log may answer only its first events (the server reads a long gap in pieces,
# server/events/reads.py ``read_fill``): the core must ask on for the rest.
READ_MOST = st.none() | st.integers(1, 3)


def first_part(read: ReadLog, most: int | None) -> int:
    """The last seq a read answers: all it asked for, or only its first ``most`` events."""
    return read.upto if most is None else min(read.upto, read.after + most)


def event(seq: int) -> str:
    return f"e{seq}"


def seq_of(frame: str) -> int:
    return int(frame[1:])


@dataclass
class Client:
    """A socket joined to the project, and what it received."""

    stream: Any
    start: int | None = None  # the join's read seq, once it answered
    read_seq: int | None = None  # a join read that ran and has not answered yet
    received: list[int] = field(default_factory=list)
    presence: int = 0
    gap_read: ReadLog | None = None
    ended: bool = False  # left or revoked
    received_at_end: int = 0
    overflowed: bool = False  # closed 4503

    @property
    def open(self) -> bool:
        return not self.ended and not self.overflowed


class DeliveryModel(RuleBasedStateMachine):
    """Subclasses set ``make_feed`` and ``make_stream``."""

    make_feed: Callable[[], Any]
    make_stream: Callable[[int], Any]
    feed_first: bool | None = None  # who hears of a join's read first; None: either

    clients = Bundle("clients")

    def __init__(self) -> None:
        super().__init__()
        self.log = 0
        self.bus: list[int] = []
        self.notifies: list[int] = []
        self.feed = self.make_feed()
        self.feed_read: ReadLog | None = None
        self.all: list[Client] = []
        self.subscribed: list[Client] = []

    # --- the glue the hub runs -----------------------------------------------------------------

    def carry_out(self, step: Any) -> None:
        for seq, frame in step.dispatch:
            for client in list(self.subscribed):
                verdict = client.stream.event(seq, frame)
                if verdict is Verdict.SEND:
                    client.received.append(seq)
                else:
                    self.hand(client, verdict)
        if step.read is not None:
            assert self.feed_read is None, "the feed asked for a second read while one ran"
            self.feed_read = step.read

    def hand(self, client: Client, verdict: Verdict) -> None:
        """What a socket does with a verdict other than SEND."""
        if verdict is Verdict.READ:
            assert client.gap_read is None, "a stream asked for a second read while one ran"
            client.gap_read = client.stream.missing()
        elif verdict is Verdict.RELEASE:
            self.release(client, client.stream.take())
        elif verdict is Verdict.OVERFLOW:
            client.overflowed = True
            client.stream.end()
            self.unsubscribe(client)

    def release(self, client: Client, release: Release[str]) -> None:
        for frame in release.frames:
            if frame.startswith("p"):
                client.presence += 1
            else:
                client.received.append(seq_of(frame))
        if release.read is not None:
            assert client.gap_read is None, "a stream asked for a second read while one ran"
            client.gap_read = release.read

    def unsubscribe(self, client: Client) -> None:
        if client in self.subscribed:
            self.subscribed.remove(client)
        if not self.subscribed:  # the last local follower: the hub drops the feed
            self.feed = self.make_feed()
            self.feed_read = None  # its answer, when it comes, is for a feed that is gone

    # --- writers -------------------------------------------------------------------------

    @rule()
    def server_commits(self) -> None:
        """A server edit commits and is published on the bus."""
        self.log += 1
        self.bus.append(self.log)

    @rule(rows=st.integers(1, 5))
    def outside_writer_commits(self, rows: int) -> None:
        """An outside writer's statement commits ``rows`` events; each is a NOTIFY."""
        for _ in range(rows):
            self.log += 1
            self.notifies.append(self.log)

    # --- the bus and NOTIFY ----------------------------------------------------------------

    @precondition(lambda self: self.bus)
    @rule(data=st.data(), twice=st.booleans())
    def bus_delivers(self, data: st.DataObject, twice: bool) -> None:
        """The bus hands the instance one published event, in any order, maybe again later."""
        index = data.draw(st.integers(0, len(self.bus) - 1))
        seq = self.bus[index] if twice else self.bus.pop(index)
        self.carry_out(self.feed.arrived(seq, event(seq)))

    @precondition(lambda self: self.bus)
    @rule(data=st.data())
    def bus_loses(self, data: st.DataObject) -> None:
        """Redis was down: a published event never arrives."""
        self.bus.pop(data.draw(st.integers(0, len(self.bus) - 1)))

    @precondition(lambda self: self.notifies)
    @rule(data=st.data(), lost=st.booleans())
    def notify_arrives(self, data: st.DataObject, lost: bool) -> None:
        """A NOTIFY arrives (or was lost while LISTEN reconnected)."""
        seq = self.notifies.pop(data.draw(st.integers(0, len(self.notifies) - 1)))
        if not lost:
            self.carry_out(self.feed.announced(seq))

    @rule(data=st.data())
    def periodic_check(self, data: st.DataObject) -> None:
        """The periodic comparison (or a bus reconnect): the log held up to some recent seq."""
        self.carry_out(self.feed.announced(data.draw(st.integers(0, self.log))))

    # --- the feed's reads ----------------------------------------------------------------------

    @precondition(lambda self: self.feed_read is not None)
    @rule(fails=st.booleans(), most=READ_MOST)
    def feed_read_answers(self, fails: bool, most: int | None = None) -> None:
        """The feed's read of the log answers (or fails); a long one answers its first part."""
        read, self.feed_read = self.feed_read, None
        assert read is not None
        if fails:
            self.carry_out(self.feed.fill_failed())
            return
        assert read.upto <= self.log, "the feed asked for events nobody announced"
        found = [(s, event(s)) for s in range(read.after + 1, first_part(read, most) + 1)]
        self.carry_out(self.feed.filled(found))

    # --- sockets -----------------------------------------------------------------------------

    @rule(target=clients)
    def join(self) -> Client:
        """A socket joins: it subscribes to the feed first, then reads."""
        client = Client(stream=self.make_stream(MAX_HELD))
        self.all.append(client)
        self.subscribed.append(client)
        return client

    @precondition(lambda self: any(c.start is None and c.read_seq is None for c in self.all))
    @rule(client=clients)
    def join_read_runs(self, client: Client) -> None:
        """The join's snapshot or replay read runs: it sees the log as it is now."""
        if client.start is None and client.read_seq is None and client.open:
            client.read_seq = self.log

    @rule(client=clients, feed_first=st.booleans())
    def join_read_answers(self, client: Client, feed_first: bool) -> None:
        """The join's read answers at seq S: the stream goes live, the feed learns of S."""
        if client.read_seq is None or not client.open:
            return
        seq, client.read_seq = client.read_seq, None
        client.start = seq
        if self.feed_first is not None:
            feed_first = self.feed_first
        if feed_first:
            self.carry_out(self.feed.read_at(seq))
            self.release(client, client.stream.read_done(seq, self.feed.head))
        else:
            self.release(client, client.stream.read_done(seq, self.feed.head))
            self.carry_out(self.feed.read_at(seq))

    @rule(client=clients, fails=st.booleans(), most=READ_MOST)
    def gap_read_answers(self, client: Client, fails: bool, most: int | None = None) -> None:
        """A socket's own gap read answers (or fails and is asked again), maybe in part."""
        read, client.gap_read = client.gap_read, None
        if read is None:
            return
        assert read.upto <= self.log, "a stream asked for events that are not in the log"
        if fails:
            retry = client.stream.fill_failed()
            if retry is not None:
                client.gap_read = retry
            return
        found = [(s, event(s)) for s in range(read.after + 1, first_part(read, most) + 1)]
        self.release(client, client.stream.filled(found))

    @rule()
    def presence_diff(self) -> None:
        """Someone's presence changed: every subscribed socket is handed the diff."""
        for client in list(self.subscribed):
            verdict = client.stream.presence("p")
            if verdict is Verdict.SEND:
                client.presence += 1
            else:
                self.hand(client, verdict)

    @rule(client=clients)
    def leave_or_revoke(self, client: Client) -> None:
        """The socket leaves, or its access is revoked: nothing more reaches it from now on.

        The hub unsubscribes it a moment later (``unsubscribe_ended``): events
        the feed dispatches meanwhile still reach the stream, which must drop them.
        """
        if client.ended:
            return
        client.ended = True
        client.received_at_end = len(client.received)
        client.stream.end()

    @rule(client=consumes(clients))
    def unsubscribe_ended(self, client: Client) -> None:
        """An ended socket's subscription goes (the last one's takes the feed with it)."""
        if client.ended or client.overflowed:
            self.unsubscribe(client)

    # --- invariants ----------------------------------------------------------------------------

    @invariant()
    def nothing_reaches_a_socket_after_it_ended(self) -> None:
        for client in self.all:
            if client.ended:
                assert len(client.received) == client.received_at_end

    @invariant()
    def each_socket_gets_a_gap_free_run_after_its_read(self) -> None:
        for client in self.all:
            if client.start is None:
                assert client.received == [], "an event went out before the join's read"
                continue
            first = client.start + 1
            expected = list(range(first, first + len(client.received)))
            assert client.received == expected, (
                f"read at {client.start}, received {client.received}"
            )
            assert not client.received or client.received[-1] <= self.log

    # --- settling ------------------------------------------------------------------------------

    @rule()
    def settle(self) -> None:
        """Loss stops: every message, read and check goes through; live sockets catch up."""
        for seq in sorted(self.bus):
            self.carry_out(self.feed.arrived(seq, event(seq)))
        self.bus = []
        for seq in self.notifies:
            self.carry_out(self.feed.announced(seq))
        self.notifies = []
        for client in self.all:
            if client.open and client.start is None:
                if client.read_seq is None:
                    client.read_seq = self.log
                self.join_read_answers(client, feed_first=False)
        for _ in range(self.log + 10):
            if self.feed_read is not None:
                self.feed_read_answers(fails=False, most=2)
            for client in self.all:
                if client.gap_read is not None and client.open:
                    self.gap_read_answers(client, fails=False, most=2)
            self.periodic_check_at(self.log)
            if self.feed_read is None and not any(c.gap_read for c in self.all if c.open):
                break
        for client in self.all:
            if client.open:
                assert client.start is not None
                last = client.received[-1] if client.received else client.start
                assert last == self.log, (
                    f"a live socket is stuck at {last} while the log is at {self.log}"
                )

    def periodic_check_at(self, seq: int) -> None:
        self.carry_out(self.feed.announced(seq))

    def teardown(self) -> None:
        self.settle()
