"""The access check's rounds against a fake database: what each round reads, and acts on."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from server.realtime import access_check
from server.realtime.access_check import AccessCheck
from server.realtime.registry import SocketRegistry

P = uuid.uuid4()


class Socket:
    """What the check needs of a connection."""

    def __init__(self) -> None:
        self.id = uuid.uuid4().hex
        self.user_id = uuid.uuid4()
        self.session_id = uuid.uuid4()
        self.closed = False
        self.revoked: list[uuid.UUID] = []

    async def revoke(self, project_id: uuid.UUID) -> None:
        self.revoked.append(project_id)

    async def session_ended(self, _ended: set[uuid.UUID]) -> None:
        self.closed = True


class Database:
    """The three reads of a round, recorded; access is what the test says it is."""

    def __init__(self) -> None:
        self.counter = 1
        self.live: set[uuid.UUID] = set()
        self.allowed: set[tuple[uuid.UUID, uuid.UUID]] = set()
        self.reads: list[tuple[str, int]] = []  # (what, how many asked)

    async def access_changes(self) -> int:
        return self.counter

    async def live_sessions(self, ids: Any) -> dict[uuid.UUID, datetime]:
        ids = set(ids)
        self.reads.append(("sessions", len(ids)))
        later = datetime.now(UTC) + timedelta(days=1)
        return {i: later for i in ids & self.live}

    async def pairs_with_access(self, pairs: Any) -> set[tuple[uuid.UUID, uuid.UUID]]:
        pairs = set(pairs)
        self.reads.append(("pairs", len(pairs)))
        return pairs & self.allowed


class CountedRegistry(SocketRegistry):
    """A registry that counts how often the check lists its sockets."""

    def __init__(self) -> None:
        super().__init__()
        self.listed = 0

    @property  # type: ignore[override]  # the same map, counted
    def connections(self) -> dict[str, Any]:
        self.listed += 1
        return self._connections

    @connections.setter
    def connections(self, value: dict[str, Any]) -> None:
        self._connections = value


@pytest.fixture
def db(monkeypatch: pytest.MonkeyPatch) -> Database:
    fake = Database()
    for name in ("access_changes", "live_sessions", "pairs_with_access"):
        monkeypatch.setattr(access_check, name, getattr(fake, name))
    return fake


def joined(registry: SocketRegistry, db: Database) -> Socket:
    socket = Socket()
    registry.register(socket, socket.user_id)  # type: ignore[arg-type]  # a fake connection
    registry.follow(socket, P, object())  # type: ignore[arg-type]
    db.live.add(socket.session_id)
    db.allowed.add((P, socket.user_id))
    return socket


async def test_quiet_rounds_read_only_the_counter_and_new_sockets_only_themselves(
    db: Database,
) -> None:
    registry = CountedRegistry()
    check = AccessCheck(registry)
    for _ in range(3):
        joined(registry, db)
    await check.check(forced=False)
    assert db.reads == [("sessions", 3), ("pairs", 3)]
    db.reads.clear()
    listed = registry.listed
    await check.check(forced=False)
    await check.check(forced=False)
    assert db.reads == []  # nothing changed: the counter alone was read...
    assert registry.listed == listed  # ...and the sockets were not even walked
    joined(registry, db)
    await check.check(forced=False)
    assert db.reads == [("sessions", 1), ("pairs", 1)]  # the newcomer only


async def test_a_moved_counter_reads_everything_and_acts_on_what_it_finds(db: Database) -> None:
    registry = SocketRegistry()
    check = AccessCheck(registry)
    ann, ben, cy = (joined(registry, db) for _ in range(3))
    await check.check(forced=False)
    db.reads.clear()
    db.allowed.discard((P, ann.user_id))  # removed by an outside writer...
    db.live.discard(ben.session_id)  # ...and a session revoked: both bump the counter
    await check.check(forced=False)
    assert db.reads == []  # the counter had not moved: not seen yet (as designed)
    db.counter += 1
    await check.check(forced=False)
    assert db.reads == [("sessions", 3), ("pairs", 3)]
    assert ann.revoked == [P]
    assert ben.closed
    assert not cy.revoked
    assert not cy.closed


async def test_a_forced_round_reads_everything(db: Database) -> None:
    registry = SocketRegistry()
    check = AccessCheck(registry)
    joined(registry, db)
    await check.check(forced=False)
    db.reads.clear()
    await check.check()  # a bus reconnect
    assert db.reads == [("sessions", 1), ("pairs", 1)]


async def test_a_failed_round_is_retried_soon_not_a_period_later() -> None:
    """The database restarting: the next rounds come 0.1, 0.2 s after, not the whole period."""
    check = AccessCheck(SocketRegistry(), period_s=1.0)
    started, attempts = time.monotonic(), []

    async def flaky(*, forced: bool = True) -> None:
        attempts.append(time.monotonic() - started)
        if len(attempts) <= 2:
            raise ConnectionError("the database system is shutting down")
        if len(attempts) == 4:
            raise asyncio.CancelledError

    check.check = flaky  # type: ignore[method-assign]
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(check.run_forever(), 10)
    gaps = [b - a for a, b in itertools.pairwise(attempts)]
    assert gaps[0] < 0.5  # after the first failure: soon (the old loop waited the whole 1 s)
    assert gaps[1] < 0.6  # after the second: twice as long, still under the period
    assert gaps[2] >= 0.9  # after a round that worked: the period again
