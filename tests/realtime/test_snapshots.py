"""Joins of one project share a snapshot read (server/realtime/snapshots.py). No database:
the read is replaced by one that counts and waits."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import msgspec
import pytest

from server.events.reads import Snapshot
from server.realtime import snapshots
from server.realtime.snapshots import Snapshots

PID = uuid.uuid4()


class Reads:
    """A snapshot read that waits to be let go, and tells what was asked."""

    def __init__(self) -> None:
        self.asked: list[tuple[uuid.UUID, bool]] = []
        self.gate = asyncio.Event()

    async def __call__(
        self, database: Any, project_id: uuid.UUID, *, with_emails: bool
    ) -> Snapshot:
        self.asked.append((project_id, with_emails))
        seq = len(self.asked)
        await self.gate.wait()
        return Snapshot(seq=seq, state={"read": seq, "emails": with_emails})


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> Reads:
    fake = Reads()
    monkeypatch.setattr(snapshots, "read_snapshot_as", fake)
    return fake


async def test_joins_arriving_during_a_read_share_the_next_one(reads: Reads) -> None:
    """The first join reads alone; the ten that came meanwhile get one read, begun after them."""
    shared = Snapshots()
    first = asyncio.create_task(shared.read(None, PID, with_emails=False))  # type: ignore[arg-type]
    await asyncio.sleep(0)
    later = [
        asyncio.create_task(shared.read(None, PID, with_emails=False))  # type: ignore[arg-type]
        for _ in range(10)
    ]
    await asyncio.sleep(0)
    reads.gate.set()
    assert (await first).seq == 1
    answers = await asyncio.gather(*later)
    assert {a.seq for a in answers} == {2}  # not the read in flight when they asked
    assert len(reads.asked) == 2
    assert msgspec.json.decode(answers[0].state) == {"read": 2, "emails": False}


async def test_owners_and_others_never_share_a_snapshot(reads: Reads) -> None:
    """The members' e-mails go only to those who may manage members: a read of each kind."""
    shared = Snapshots()
    reads.gate.set()
    owner, editor = await asyncio.gather(
        shared.read(None, PID, with_emails=True),  # type: ignore[arg-type]
        shared.read(None, PID, with_emails=False),  # type: ignore[arg-type]
    )
    assert msgspec.json.decode(owner.state)["emails"] is True
    assert msgspec.json.decode(editor.state)["emails"] is False
    assert sorted(reads.asked) == [(PID, False), (PID, True)]
