"""Falsifying examples the model found, kept as plain tests (on the core, and on the old logic)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis.strategies import DataObject

from tests.delivery.model import DeliveryModel
from tests.delivery.test_legacy import LegacyDelivery
from tests.delivery.test_model import Delivery


class Pick:
    """Stands in for Hypothesis's ``data``: draws the given indexes in turn."""

    def __init__(self, *values: int) -> None:
        self.values = list(values)

    def draw(self, _strategy: object) -> int:
        return self.values.pop(0)


def pick(*values: int) -> DataObject:
    return Pick(*values)  # type: ignore[return-value]


def first_joiner_misses_an_outside_write(state: DeliveryModel) -> None:
    """Issue 18 case 1: NOTIFY k, then bus k+1, both while the first join reads at k-1."""
    client = state.join()
    state.server_commits()
    state.bus_delivers(pick(0), twice=False)  # seq 1; the feed has no head yet
    state.join_read_runs(client)  # reads at 1
    state.outside_writer_commits(1)  # seq 2: only a NOTIFY tells of it
    state.server_commits()  # seq 3: over the bus
    state.notify_arrives(pick(0), lost=False)
    state.bus_delivers(pick(0), twice=False)
    state.join_read_answers(client, feed_first=True)
    state.each_socket_gets_a_gap_free_run_after_its_read()
    state.settle()


def second_joiner_behind_the_feed(state: DeliveryModel) -> None:
    """A join whose read ran earlier answers after another join started the feed later."""
    early, late = state.join(), state.join()
    state.join_read_runs(early)  # reads at 0
    state.server_commits()
    state.bus_delivers(pick(0), twice=False)
    state.join_read_runs(late)  # reads at 1
    state.join_read_answers(late, feed_first=True)  # the feed starts at 1
    state.join_read_answers(early, feed_first=True)  # at 0: seq 1 must still reach it
    state.each_socket_gets_a_gap_free_run_after_its_read()
    state.settle()


def burst_announced_during_a_read(state: DeliveryModel) -> None:
    """Issue 18 case 4: one statement's ten rows; nine NOTIFYs arrive while the first is read."""
    client = state.join()
    state.join_read_runs(client)
    state.join_read_answers(client, feed_first=True)
    state.outside_writer_commits(5)
    state.outside_writer_commits(5)
    for _ in range(10):
        state.notify_arrives(pick(0), lost=False)
        if state.feed_read is not None and state.log == 10 and not state.notifies:
            break
    while state.feed_read is not None:  # no periodic check: the reads must chain by themselves
        state.feed_read_answers(fails=False)
    assert client.received == list(range(1, 11))


def ended_socket_keeps_getting_events(state: DeliveryModel) -> None:
    """Found on the core itself: a live stream that ended still took the next event."""
    client = state.join()
    state.server_commits()
    state.settle()
    state.server_commits()
    state.leave_or_revoke(client)
    state.settle()
    state.nothing_reaches_a_socket_after_it_ended()


CASES: list[Callable[[DeliveryModel], None]] = [
    first_joiner_misses_an_outside_write,
    second_joiner_behind_the_feed,
    burst_announced_during_a_read,
    ended_socket_keeps_getting_events,
]
OLD_LOGIC_FAILS = [first_joiner_misses_an_outside_write, burst_announced_during_a_read]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.__name__)
def test_the_core_delivers_every_event_once_in_order(
    case: Callable[[DeliveryModel], None],
) -> None:
    """Each case ends with every live socket holding exactly the log after its read."""
    case(Delivery())


@pytest.mark.parametrize("case", OLD_LOGIC_FAILS, ids=lambda case: case.__name__)
def test_the_old_logic_failed_each_case(case: Callable[[DeliveryModel], None]) -> None:
    """The same cases on the logic the core replaced: each one breaks it."""
    with pytest.raises(AssertionError):
        case(LegacyDelivery())
