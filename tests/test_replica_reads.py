"""Which reads a replica may answer (server/events/reads.py, replica_serves): no I/O."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from server.events.reads import replica_serves

seqs = st.integers(min_value=0, max_value=10**9)


def test_the_replica_answers_only_when_it_has_replayed_what_the_reader_must_see() -> None:
    assert replica_serves(50, 50)  # caught up
    assert replica_serves(51, 50)  # ahead of the primary's seq read before it: newer still
    assert not replica_serves(49, 50)  # behind an acked edit: the primary reads
    assert not replica_serves(None, 1)  # it has not replayed the project's creation yet
    assert not replica_serves(None, None)  # nowhere: the primary says "no such project"
    assert not replica_serves(7, None)


@given(seqs, seqs)
def test_an_answer_from_the_replica_is_never_older_than_the_primary_was(
    replica: int, needed: int
) -> None:
    """Whatever the lag, a replica answer shows at least every seq acked before the read."""
    if replica_serves(replica, needed):
        assert replica >= needed
    else:
        assert replica < needed
