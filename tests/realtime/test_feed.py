"""The per-project feed's ordering: each event once, in seq order, gaps sent to the log to fill."""

from __future__ import annotations

import json
import uuid
from collections.abc import Coroutine
from typing import Any

import pytest

from server.delivery.stream import SEND, Verdict
from server.events import reads
from server.realtime import protocol as p
from server.realtime.feed import Feeds
from server.transport.wire import Outgoing

PROJECT = uuid.uuid4()


class Follower:
    """What the feed needs of a socket: taking an event's frame."""

    def __init__(self) -> None:
        self.seqs: list[int] = []

    def send(self, frame: Outgoing) -> bool:
        self.seqs.append(json.loads(frame.payload)["seq"])
        return True


class OpenStream:
    """A socket's stream that lets every event through (the feed's order is what is tested)."""

    def event(self, _seq: int, _frame: Outgoing) -> Verdict:
        return SEND


def feeds_with(follower: Follower) -> tuple[Feeds, list[str]]:
    """A feed of PROJECT with one follower; fills are recorded, not run (no database here)."""
    fills: list[str] = []

    def spawn(coro: Coroutine[Any, Any, Any]) -> None:
        fills.append(coro.__qualname__)
        coro.close()

    feeds = Feeds({PROJECT: {follower: OpenStream()}}, spawn)  # type: ignore[dict-item]  # fakes
    feeds.open(PROJECT)
    return feeds, fills


def frame(seq: int) -> Outgoing:
    return Outgoing(f'{{"type":"event","seq":{seq}}}'.encode())


def test_events_wait_for_the_gap_before_them_and_duplicates_are_dropped() -> None:
    """After a join read at seq 5: 7 waits for 6, then both go in order; 6 again goes nowhere."""
    follower = Follower()
    feeds, fills = feeds_with(follower)
    feeds.start(PROJECT, 5)
    feeds.arrive(PROJECT, 7, frame(7))
    assert follower.seqs == []
    assert fills == ["Feeds._fill"]  # the log is asked for the gap
    feeds.arrive(PROJECT, 6, frame(6))
    feeds.arrive(PROJECT, 6, frame(6))
    feeds.arrive(PROJECT, 5, frame(5))
    assert follower.seqs == [6, 7]


def test_before_any_join_has_read_events_wait_in_the_feed() -> None:
    """With no head yet, events wait in the feed; the first join's read starts the run after it."""
    follower = Follower()
    feeds, fills = feeds_with(follower)
    feeds.arrive(PROJECT, 3, frame(3))
    feeds.arrive(PROJECT, 2, frame(2))
    assert follower.seqs == []
    feeds.start(PROJECT, 2)
    assert follower.seqs == [3]
    feeds.arrive(PROJECT, 3, frame(3))
    feeds.arrive(PROJECT, 4, frame(4))
    assert follower.seqs == [3, 4]
    assert fills == []


def test_a_notify_before_the_first_read_is_not_forgotten() -> None:
    """Issue 18 case 1: a NOTIFY heard while no join had read yet is filled once one has."""
    follower = Follower()
    feeds, fills = feeds_with(follower)
    feeds.catch_up(PROJECT, 6)  # an outside writer's event 6, told only by NOTIFY
    feeds.arrive(PROJECT, 7, frame(7))  # a server edit, over the bus
    assert fills == []
    feeds.start(PROJECT, 5)  # the join read at 5
    assert follower.seqs == []
    assert fills == ["Feeds._fill"]  # 6 and 7 are read from the log, then go out in order


def test_catch_up_fills_only_when_the_log_is_ahead() -> None:
    """A NOTIFY or heal at or below the head asks nothing of the log; one above it does, once."""
    feeds, fills = feeds_with(Follower())
    feeds.start(PROJECT, 5)
    feeds.catch_up(PROJECT, 5)
    assert fills == []
    feeds.catch_up(PROJECT, 9)
    assert fills == ["Feeds._fill"]


async def test_a_long_gap_is_read_in_bounded_pieces_and_delivered_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An outage left 2,500 events to fill: read in pieces of FILL_MOST at most, sent in order."""
    asked: list[tuple[int, int]] = []

    async def log_reads(project_id: uuid.UUID, after: int, upto: int) -> list[p.EventFrame]:
        asked.append((after, upto))
        return [logged(project_id, seq) for seq in range(after + 1, upto + 1)]

    monkeypatch.setattr(reads, "read_events", log_reads)
    follower = Follower()
    spawned: list[Coroutine[Any, Any, Any]] = []
    feeds = Feeds({PROJECT: {follower: OpenStream()}}, spawned.append)  # type: ignore[dict-item]
    feeds.open(PROJECT)
    feeds.start(PROJECT, 0)
    feeds.catch_up(PROJECT, 2500)  # the heal after the outage: the log is at 2,500
    while spawned:
        await spawned.pop(0)

    assert follower.seqs == list(range(1, 2501))
    assert asked == [(0, 1000), (1000, 2000), (2000, 2500)]
    assert max(upto - after for after, upto in asked) <= reads.FILL_MOST


def logged(project_id: uuid.UUID, seq: int) -> p.EventFrame:
    return p.EventFrame(
        project_id=project_id,
        seq=seq,
        kind="item.updated",
        entity="item",
        id=uuid.uuid4(),
        version=seq,
        data={},
        actor_id=None,
        op_id=None,
        at="2026-12-07T00:00:00Z",
    )
