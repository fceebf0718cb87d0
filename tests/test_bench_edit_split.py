"""The soak's split of an edit's time at the server's `at` (load_tests/bench/edit_split.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from load_tests.bench.edit_split import WALL_MINUS_PERF, EditSplit, perf_of


def at_of(perf: float) -> str:
    """The RFC 3339 text a server would send for the perf_counter reading ``perf``."""
    return datetime.fromtimestamp(perf + WALL_MINUS_PERF, UTC).isoformat()


def test_the_servers_time_is_read_on_the_generators_clock() -> None:
    assert perf_of(at_of(1234.5)) == pytest.approx(1234.5, abs=1e-5)
    assert perf_of(at_of(1234.5).replace("+00:00", "Z")) == pytest.approx(1234.5, abs=1e-5)
    assert perf_of("yesterday") is None


@pytest.mark.parametrize("ack_first", [True, False])
def test_an_edit_is_split_when_its_ack_and_event_are_both_in(ack_first: bool) -> None:
    """Sent at 100, taken by the server at 100.7, acked at 100.75: 700 ms waited before."""
    split = EditSplit()
    split.sending("op", 100.0)
    if ack_first:
        split.acked("op", 100.75)
        assert split.before_server == []
        split.event("op", at_of(100.7))
    else:
        split.event("op", at_of(100.7))
        assert split.commit == []
        split.acked("op", 100.75)
    assert split.before_server == [pytest.approx(0.7, abs=1e-4)]
    assert split.commit == [pytest.approx(0.05, abs=1e-4)]
    assert split.sent == {}


def test_other_clients_edits_and_cut_sockets_are_not_split() -> None:
    split = EditSplit()
    split.event("someone-elses", at_of(5.0))
    split.acked("someone-elses", 5.1)
    split.sending("cut", 1.0)
    split.event("cut", at_of(1.2))
    split.forget()  # the socket was cut before the ack
    split.acked("cut", 9.0)
    split.sending("unreadable", 2.0)
    split.event("unreadable", "not a time")
    split.acked("unreadable", 2.5)
    assert split.before_server == []
    assert split.commit == []
