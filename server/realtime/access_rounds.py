"""Which sessions and (project, user) pairs an access-check round must read: pure, no I/O.

Reading every held session and pair each second costs the database one
statement per round that grows with the sockets (10,000 pairs: about 50 ms
of its time). Most rounds find nothing changed, so a round reads them all
only when something could have ended access since the last full round:

- the database's access-change counter moved (``access_change.n``: bumped,
  in the same transaction, by every change that can end access: a
  membership, team membership or team grant removed, a project deleted, a
  session revoked or cut short; triggers, so outside writers count too);
- the earliest expiry among the sessions held has passed (expiry is time,
  not a change);
- the last full round is ``full_every_s`` old (a backstop: triggers can be
  switched off, e.g. by a restore with ``session_replication_role``);
- it is forced (the bus reconnected), or the counter cannot be read
  (SQLite: the embedded server checks everything every round).

Otherwise it reads only what is new since the last round: sessions and
pairs that were not held then (a socket that joined after that round's
read is judged by a statement that sees every change committed before it).
The counter is read before the sockets are listed and before the check's
statements run, so a change that commits after the read moves the counter
for the next round, and one that committed before it is seen by this one.
"""

from __future__ import annotations

import uuid
from collections.abc import Set
from dataclasses import dataclass, field
from datetime import datetime

Pair = tuple[uuid.UUID, uuid.UUID]  # (project, user)
FULL_EVERY_S = 30.0


@dataclass(frozen=True, slots=True)
class RoundPlan:
    """What one round reads: these sessions and pairs (``full``: all that are held)."""

    full: bool
    sessions: frozenset[uuid.UUID]
    pairs: frozenset[Pair]


@dataclass(slots=True)
class AccessRounds:
    """The memory of earlier rounds that lets a round read only what it must."""

    full_every_s: float = FULL_EVERY_S
    counter: int | None = None  # the access-change counter at the last full round
    full_at: float | None = None  # the monotonic time of the last full round
    earliest_expiry: datetime | None = None  # of the live sessions the last reads found
    sessions: frozenset[uuid.UUID] = field(default_factory=frozenset)  # held at the last round
    pairs: frozenset[Pair] = field(default_factory=frozenset)

    def plan(
        self,
        *,
        counter: int | None,
        now: float,
        wall: datetime,
        sessions: Set[uuid.UUID],
        pairs: Set[Pair],
        forced: bool = False,
    ) -> RoundPlan:
        """The reads of a round; the sockets' sessions and pairs as listed after ``counter``."""
        full = (
            forced
            or counter is None
            or counter != self.counter
            or self.full_at is None
            or now - self.full_at >= self.full_every_s
            or (self.earliest_expiry is not None and wall >= self.earliest_expiry)
        )
        held_sessions, held_pairs = frozenset(sessions), frozenset(pairs)
        if full:
            self.counter, self.full_at, self.earliest_expiry = counter, now, None
            plan = RoundPlan(True, held_sessions, held_pairs)
        else:
            plan = RoundPlan(False, held_sessions - self.sessions, held_pairs - self.pairs)
        self.sessions, self.pairs = held_sessions, held_pairs
        return plan

    def sessions_expire(self, expiries: Set[datetime] | list[datetime]) -> None:
        """The expiry times of live sessions a round read: the earliest is remembered."""
        if expiries:
            first = min(expiries)
            if self.earliest_expiry is None or first < self.earliest_expiry:
                self.earliest_expiry = first

    def failed(self) -> None:
        """A round's reads failed: the next one reads everything."""
        self.counter = self.full_at = None
        self.sessions, self.pairs = frozenset(), frozenset()
