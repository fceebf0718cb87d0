"""The project feed's rules, one by one (pure)."""

from __future__ import annotations

from server.delivery.feed import ProjectFeed, ReadLog


def seqs(step: object) -> list[int]:
    return [seq for seq, _ in step.dispatch]  # type: ignore[attr-defined]


def started(at: int = 0) -> ProjectFeed[str]:
    feed = ProjectFeed[str]()
    feed.read_at(at)
    return feed


def test_events_wait_for_the_first_joins_read() -> None:
    """Before any join's read nothing is dispatched; the read starts the run after its seq."""
    feed = ProjectFeed[str]()
    assert seqs(feed.arrived(2, "e2")) == []
    assert seqs(feed.arrived(3, "e3")) == []
    step = feed.read_at(1)
    assert seqs(step) == [2, 3]
    assert step.read is None


def test_an_announcement_before_the_first_read_is_remembered() -> None:
    """A NOTIFY heard while the feed had no head still leads to a read once it has one."""
    feed = ProjectFeed[str]()
    assert feed.announced(5).read is None
    assert feed.read_at(3).read == ReadLog(after=3, upto=5)


def test_next_in_line_goes_out_and_duplicates_are_dropped() -> None:
    """Event head+1 is dispatched at once; one at or below the head is dropped."""
    feed = started()
    assert seqs(feed.arrived(1, "e1")) == [1]
    assert seqs(feed.arrived(1, "e1")) == []
    assert feed.head == 1


def test_a_gap_is_read_and_what_was_held_follows_it() -> None:
    """An event ahead of a gap is held; the read fills the gap and both go out in order."""
    feed = started()
    step = feed.arrived(3, "e3")
    assert seqs(step) == []
    assert step.read == ReadLog(after=0, upto=3)
    assert seqs(feed.filled([(1, "e1"), (2, "e2"), (3, "e3")])) == [1, 2, 3]


def test_one_read_at_a_time_then_the_next_at_once() -> None:
    """Announcements during a read are remembered; its answer is followed by the next read."""
    feed = started()
    first = feed.announced(1).read
    assert first == ReadLog(after=0, upto=1)
    for seq in range(2, 11):
        assert feed.announced(seq).read is None
    step = feed.filled([(1, "e1")])
    assert seqs(step) == [1]
    assert step.read == ReadLog(after=1, upto=10)


def test_a_failed_read_waits_for_the_next_announcement() -> None:
    """A read that failed is not retried at once; the periodic check asks again."""
    feed = started()
    assert feed.announced(2).read is not None
    assert feed.fill_failed().read is None
    assert feed.announced(2).read == ReadLog(after=0, upto=2)


def test_held_events_are_bounded() -> None:
    """Past max_held, an event is not kept; it is read from the log with the rest."""
    feed = ProjectFeed[str](max_held=2)
    feed.read_at(0)
    for seq in (3, 4, 5):
        feed.arrived(seq, f"e{seq}")
    assert feed.held == 2
    assert feed.logged == 5
