"""Which sessions and pairs an access-check round reads (server/realtime/access_rounds.py)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from server.realtime.access_rounds import AccessRounds

S1, S2 = uuid.uuid4(), uuid.uuid4()
P, U1, U2 = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
NOON = datetime(2026, 12, 7, 12, tzinfo=UTC)


def test_a_quiet_round_reads_nothing_and_a_moved_counter_reads_everything() -> None:
    rounds = AccessRounds()
    first = rounds.plan(counter=5, now=0, wall=NOON, sessions={S1}, pairs={(P, U1)})
    assert first.full
    assert (first.sessions, first.pairs) == ({S1}, {(P, U1)})
    quiet = rounds.plan(counter=5, now=1, wall=NOON, sessions={S1}, pairs={(P, U1)})
    assert not quiet.full
    assert (quiet.sessions, quiet.pairs) == (set(), set())
    moved = rounds.plan(counter=6, now=2, wall=NOON, sessions={S1}, pairs={(P, U1)})
    assert moved.full
    assert (moved.sessions, moved.pairs) == ({S1}, {(P, U1)})


def test_what_is_new_since_the_last_round_is_read_even_when_quiet() -> None:
    """A socket that joined after a round's listing is judged by the next round's statement."""
    rounds = AccessRounds()
    rounds.plan(counter=1, now=0, wall=NOON, sessions={S1}, pairs={(P, U1)})
    new = rounds.plan(counter=1, now=1, wall=NOON, sessions={S1, S2}, pairs={(P, U1), (P, U2)})
    assert not new.full
    assert (new.sessions, new.pairs) == ({S2}, {(P, U2)})
    # A pair that left and came back is new again.
    rounds.plan(counter=1, now=2, wall=NOON, sessions={S1}, pairs={(P, U1)})
    back = rounds.plan(counter=1, now=3, wall=NOON, sessions={S1, S2}, pairs={(P, U1), (P, U2)})
    assert back.pairs == {(P, U2)}


def test_a_session_expiring_by_time_makes_a_full_round() -> None:
    rounds = AccessRounds()
    rounds.plan(counter=1, now=0, wall=NOON, sessions={S1}, pairs=set())
    rounds.sessions_expire([NOON + timedelta(seconds=10), NOON + timedelta(hours=1)])
    later = NOON + timedelta(seconds=9)
    assert not rounds.plan(counter=1, now=1, wall=later, sessions={S1}, pairs=set()).full
    expired = NOON + timedelta(seconds=10)
    assert rounds.plan(counter=1, now=2, wall=expired, sessions={S1}, pairs=set()).full


def test_forced_unknown_counter_backstop_and_failure_read_everything() -> None:
    rounds = AccessRounds(full_every_s=30)
    rounds.plan(counter=1, now=0, wall=NOON, sessions={S1}, pairs=set())
    assert rounds.plan(counter=1, now=1, wall=NOON, sessions={S1}, pairs=set(), forced=True).full
    assert rounds.plan(counter=None, now=2, wall=NOON, sessions={S1}, pairs=set()).full
    assert rounds.plan(counter=None, now=3, wall=NOON, sessions={S1}, pairs=set()).full
    rounds.plan(counter=1, now=4, wall=NOON, sessions={S1}, pairs=set())
    assert not rounds.plan(counter=1, now=33, wall=NOON, sessions={S1}, pairs=set()).full
    assert rounds.plan(counter=1, now=34, wall=NOON, sessions={S1}, pairs=set()).full
    rounds.failed()
    assert rounds.plan(counter=1, now=35, wall=NOON, sessions={S1}, pairs=set()).full
