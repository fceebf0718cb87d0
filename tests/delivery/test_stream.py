"""A joined stream's handover and delivery rules, one by one (pure)."""

from __future__ import annotations

from server.delivery.feed import ReadLog
from server.delivery.stream import JoinedStream, Verdict


def live(at: int = 0, max_held: int = 16) -> JoinedStream[str]:
    stream = JoinedStream[str](max_held=max_held)
    stream.read_done(at, None)
    return stream


def test_events_and_presence_are_held_until_the_read_then_presence_goes_first() -> None:
    """During the join's read everything is held; then presence, then the events after S."""
    stream = JoinedStream[str](max_held=16)
    assert stream.event(3, "e3") is Verdict.HELD
    assert stream.presence("p") is Verdict.HELD
    assert stream.event(4, "e4") is Verdict.HELD
    release = stream.read_done(3, 4)
    assert release.frames == ["p", "e4"]
    assert release.read is None
    assert stream.last == 4


def test_a_gap_after_the_read_is_read_from_the_log() -> None:
    """Held events that do not follow the read's seq ask for the range between."""
    stream = JoinedStream[str](max_held=16)
    stream.event(6, "e6")
    release = stream.read_done(3, 6)
    assert release.frames == []
    assert release.read == ReadLog(after=3, upto=5)
    assert stream.filled([(4, "e4"), (5, "e5")]).frames == ["e4", "e5", "e6"]


def test_a_feed_ahead_of_the_read_is_caught_up_from_the_log() -> None:
    """Another join started the feed later: the events up to its head are read."""
    stream = JoinedStream[str](max_held=16)
    release = stream.read_done(0, 2)
    assert release.read == ReadLog(after=0, upto=2)
    assert stream.event(3, "e3") is Verdict.HELD
    assert stream.filled([(1, "e1"), (2, "e2")]).frames == ["e1", "e2", "e3"]


def test_live_stream_sends_next_skips_old_and_reads_gaps() -> None:
    """Live: next in line is sent, old is skipped, a jump is held and its gap read."""
    stream = live()
    assert stream.event(1, "e1") is Verdict.SEND
    assert stream.event(1, "e1") is Verdict.SKIP
    assert stream.event(3, "e3") is Verdict.READ
    assert stream.missing() == ReadLog(after=1, upto=2)
    assert stream.event(4, "e4") is Verdict.HELD
    assert stream.filled([(2, "e2")]).frames == ["e2", "e3", "e4"]


def test_a_failed_gap_read_is_asked_again() -> None:
    """A gap read that failed returns the range to try again."""
    stream = live()
    stream.event(3, "e3")
    assert stream.fill_failed() == ReadLog(after=0, upto=2)


def test_nothing_goes_out_after_the_end_at_any_point() -> None:
    """Ended during the read or live, a stream sends nothing more."""
    joining = JoinedStream[str](max_held=16)
    joining.event(1, "e1")
    joining.end()
    assert joining.read_done(0, 1).frames == []
    assert joining.event(2, "e2") is Verdict.SKIP
    stream = live()
    stream.end()
    assert stream.event(1, "e1") is Verdict.SKIP
    assert stream.presence("p") is Verdict.SKIP


def test_too_much_held_asks_for_a_close() -> None:
    """A stream holding max_held frames answers OVERFLOW (the socket closes 4503)."""
    stream = JoinedStream[str](max_held=2)
    stream.event(1, "e1")
    stream.presence("p")
    assert stream.event(2, "e2") is Verdict.OVERFLOW
