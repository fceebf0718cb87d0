"""A presence map as joins send it (server/realtime/presence.py, PresenceMap), and the
in-memory store's encoded copy: built once, never stale. No I/O."""

from __future__ import annotations

import uuid

import msgspec

from server.realtime.presence import MemoryPresence, PresenceMap
from server.realtime.protocol import PresenceEntry

PID = uuid.uuid4()
ANN, BOB = uuid.uuid4(), uuid.uuid4()


def entry(user: uuid.UUID, **state: object) -> PresenceEntry:
    return PresenceEntry(user_id=user, name="Ann" if user == ANN else "Bob", state=dict(state))


def as_sent(presence: PresenceMap) -> dict[str, PresenceEntry]:
    """What a client decodes from ``joined.presence``."""
    return msgspec.json.decode(presence.encoded, type=dict[str, PresenceEntry])


def test_a_map_built_from_the_stored_json_is_the_map_of_the_entries() -> None:
    """A Redis hash reply (keys and JSON values, bytes or str) becomes the same JSON object."""
    ann, bob = entry(ANN, cursor=[1, 2]), entry(BOB)
    flat: list[bytes | str] = [
        b"one.1",
        msgspec.json.encode(ann),
        "two.7",
        msgspec.json.encode(bob).decode(),
    ]
    made = PresenceMap.from_hash(flat)
    assert as_sent(made) == {"one.1": ann, "two.7": bob}
    assert made == {"one.1": ann, "two.7": bob}  # read as a mapping too


def test_a_key_that_needs_escaping_is_escaped() -> None:
    """Connection ids are plain, but a key with a quote still gives valid JSON."""
    made = PresenceMap.from_hash([b'we"ird\\id', msgspec.json.encode(entry(ANN))])
    assert as_sent(made) == {'we"ird\\id': entry(ANN)}


def test_an_empty_hash_is_an_empty_object() -> None:
    assert bytes(PresenceMap.from_hash([]).encoded) == b"{}"


async def test_the_memory_store_sends_every_change_made_before_a_join() -> None:
    """Embedded mode encodes a project's map once per change: a join never sees a stale copy."""
    store = MemoryPresence()
    assert as_sent(await store.enter(PID, "i.1", entry(ANN))) == {"i.1": entry(ANN)}
    await store.put(PID, "i.1", entry(ANN, cursor=[3, 4]))
    seen = await store.enter(PID, "i.2", entry(BOB))
    assert as_sent(seen) == {"i.1": entry(ANN, cursor=[3, 4]), "i.2": entry(BOB)}
    await store.remove(PID, "i.1")
    assert as_sent(await store.enter(PID, "i.3", entry(BOB))) == {
        "i.2": entry(BOB),
        "i.3": entry(BOB),
    }
    assert await store.enter(uuid.uuid4(), "i.9", entry(ANN)) == {"i.9": entry(ANN)}
