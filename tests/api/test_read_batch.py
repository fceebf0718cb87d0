"""Concurrent session and resume reads share statements (server/db/read_batch.py), on PostgreSQL.

Each test makes every call once alone (the single-caller statement, as
before batching), then all of them at once: the calls that arrive while one
is in flight go together in one statement, and each caller must get exactly
what its lone call got. ``moodboard_read_batch_size`` tells how the calls
were grouped.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from server import metrics
from server.access.sessions import TOUCH_INTERVAL, authenticate
from server.access.tables import AppUser, UserSession
from server.access.tokens import hash_token
from server.events.reads import ResumeAs, current_seq, read_resume_as
from server.events.retention import prune
from server.events.tables import Event
from tests.api.conftest import PASSWORD, Account, Api

pytestmark = pytest.mark.parametrize("database_url", ["postgres"], indirect=True)

TTL_S = 3600


@dataclass(frozen=True)
class Grouping:
    """What ``moodboard_read_batch_size{read=...}`` has seen so far."""

    calls: float  # database statements
    reads: float  # callers answered by them
    lone: float  # statements of one caller
    within_bound: float  # statements of at most 64 callers

    def since(self, before: Grouping) -> Grouping:
        return Grouping(
            self.calls - before.calls,
            self.reads - before.reads,
            self.lone - before.lone,
            self.within_bound - before.within_bound,
        )


def grouping(read: str) -> Grouping:
    samples = {
        (s.name, s.labels.get("le")): s.value
        for s in metrics.READ_BATCH.collect()[0].samples
        if s.labels["read"] == read
    }
    return Grouping(
        calls=samples[("moodboard_read_batch_size_count", None)],
        reads=samples[("moodboard_read_batch_size_sum", None)],
        lone=samples[("moodboard_read_batch_size_bucket", "1.0")],
        within_bound=samples[("moodboard_read_batch_size_bucket", "64.0")],
    )


async def login(api: Api, who: Account) -> str:
    """Another session of ``who``: its token."""
    response = await api.client.post(
        "/api/auth/login", json={"email": who.email, "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    api.client.cookies.clear()
    token: str = response.json()["token"]
    return token


def of_token(token: str) -> Any:
    return UserSession.token_hash == hash_token(token)


async def test_concurrent_authentications_share_statements_and_each_gets_its_own_answer(
    api: Api,
) -> None:
    """90 authenticate calls at once: 3 statements, each call answered as it would be alone.

    Valid sessions of several users (some users with two), a revoked and an
    expired session, a deleted user's live session, an unknown token, and
    each token sent more than once.
    """
    database = api.ctx.database
    users = [await api.register(f"u{n}") for n in range(4)]
    valid = [user.token for user in users] + [
        await login(api, users[0]),
        await login(api, users[1]),
    ]
    revoked, expired, erased = [await api.register(name) for name in ("rev", "exp", "gone")]
    now = datetime.now(UTC)
    await UserSession.update({UserSession.revoked_at: now}).where(of_token(revoked.token))
    await UserSession.update({UserSession.expires_at: now - timedelta(seconds=1)}).where(
        of_token(expired.token)
    )
    await AppUser.update({AppUser.deleted_at: now}).where(AppUser.id == uuid.UUID(erased.id))
    refused = [revoked.token, expired.token, erased.token, "mbs_" + "x" * 43]
    tokens = (valid + refused) * 6
    random.Random(7).shuffle(tokens)
    assert len(tokens) == 60

    before = grouping("session")
    alone = {t: await authenticate(database, t, ttl_s=TTL_S, via="bearer") for t in valid + refused}
    assert grouping("session").since(before) == Grouping(10, 10, 10, 10)  # one at a time
    assert [alone[token] is None for token in valid + refused] == [False] * 6 + [True] * 4
    owners = {token: str(alone[token].user_id) for token in valid}  # type: ignore[union-attr]
    assert owners == {token: users[[0, 1, 2, 3, 0, 1][n]].id for n, token in enumerate(valid)}

    # A session not seen for a while: each call still slides its expiry.
    old = now - 2 * TOUCH_INTERVAL
    await UserSession.update({UserSession.last_seen_at: old}).where(of_token(valid[2]))
    before = grouping("session")
    tokens = tokens + tokens[:30]  # 90: more than one statement may take
    together = await asyncio.gather(
        *(authenticate(database, t, ttl_s=TTL_S, via="bearer") for t in tokens)
    )
    seen = grouping("session").since(before)
    # The first call went alone; the 89 that came meanwhile went as 64, then 25.
    assert seen == Grouping(calls=3, reads=90, lone=1, within_bound=3)
    assert together == [alone[token] for token in tokens]
    touched = await UserSession.select(UserSession.last_seen_at).where(of_token(valid[2])).first()
    assert touched is not None
    assert touched["last_seen_at"] > old


async def _grant(api: Api, owner: Account, pid: str, role: str, *members: Account) -> None:
    """A team of ``members`` (and the owner), granted ``role`` on the project."""
    response = await api.client.post("/api/teams", json={"name": "Studio"}, headers=owner.auth)
    assert response.status_code == 201, response.text
    tid = response.json()["id"]
    for who in members:
        added = await api.client.post(
            f"/api/teams/{tid}/members", json={"email": who.email}, headers=owner.auth
        )
        assert added.status_code == 201, added.text
    granted = await api.client.post(
        f"/api/projects/{pid}/teams", json={"team_id": tid, "role": role}, headers=owner.auth
    )
    assert granted.status_code == 201, granted.text


async def _rooms(api: Api, owner: Account, pid: str, count: int) -> int:
    """Add ``count`` rooms (one event each); the project's seq after them."""
    for n in range(count):
        response = await api.client.post(
            f"/api/projects/{pid}/rooms", json={"name": f"r{n}"}, headers=owner.auth
        )
        assert response.status_code == 201, response.text
    seq = await current_seq(uuid.UUID(pid))
    assert seq is not None
    return seq


async def test_concurrent_resumes_share_statements_and_each_gets_its_own_answer(
    api: Api,
) -> None:
    """81 read_resume_as calls at once: 3 statements, each call answered as it would be alone.

    A member, a user with access only through a team, one with both (the
    higher role counts), an outsider; a live project read from the start,
    from behind, at its head and from ahead of it; a project whose old
    events are gone (a snapshot is needed); a deleted project; no project.
    """
    database = api.ctx.database
    owner, editor, teamed, both, outsider = [
        await api.register(name) for name in ("owner", "editor", "teamed", "both", "outsider")
    ]
    live = (await api.project(owner, "Live"))["id"]
    await api.add_member(owner, live, editor, "editor")
    await api.add_member(owner, live, both, "viewer")
    await _grant(api, owner, live, "editor", teamed, both)
    head = await _rooms(api, owner, live, 4)

    pruned = (await api.project(owner, "Pruned"))["id"]
    pruned_head = await _rooms(api, owner, pruned, 6)
    old = datetime.now(UTC) - timedelta(days=5)
    await Event.update({Event.at: old}).where(Event.project_id == uuid.UUID(pruned))
    await prune(keep_events=2, keep_days=1)  # only the pruned project's events are old

    deleted = (await api.project(owner, "Deleted"))["id"]
    deleted_head = await _rooms(api, owner, deleted, 2)
    gone = await api.client.delete(f"/api/projects/{deleted}", headers=owner.auth)
    assert gone.status_code == 204

    cases: list[tuple[Account, str, int]] = [
        (who, live, last_seq)
        for who in (owner, editor, teamed, both, outsider)
        for last_seq in (0, head - 2, head, head + 5)
    ]
    cases += [(owner, pruned, last_seq) for last_seq in (pruned_head - 4, pruned_head - 1)]
    cases += [(owner, pruned, pruned_head), (owner, deleted, 0), (owner, deleted, deleted_head)]
    nowhere = str(uuid.uuid4())  # no such project
    cases += [(who, nowhere, 0) for who in (owner, outsider)]
    calls = [(uuid.UUID(who.id), uuid.UUID(pid), seq) for who, pid, seq in cases * 3]
    random.Random(11).shuffle(calls)
    assert len(calls) == 81

    before = grouping("resume")
    alone = {call: await read_resume_as(database, *call) for call in dict.fromkeys(calls)}
    assert grouping("resume").since(before) == Grouping(27, 27, 27, 27)  # one at a time

    def answer(who: Account, pid: str, last_seq: int) -> ResumeAs | None:
        return alone[(uuid.UUID(who.id), uuid.UUID(pid), last_seq)]

    def replayed(found: ResumeAs | None) -> tuple[str | None, int | None, list[int] | None]:
        assert found is not None
        if found.resumed is None:
            return found.role, None, None
        seq, frames = found.resumed
        return found.role, seq, None if frames is None else [frame.seq for frame in frames]

    # What the lone calls answered is right in itself, not only the same as the batch's:
    assert replayed(answer(owner, live, head - 2)) == ("owner", head, [head - 1, head])
    assert replayed(answer(editor, live, 0)) == ("editor", head, list(range(1, head + 1)))
    assert replayed(answer(teamed, live, head)) == ("editor", head, [])
    assert replayed(answer(both, live, head + 5)) == ("editor", head, None)  # ahead: snapshot
    assert replayed(answer(outsider, live, 0)) == (None, None, None)
    assert replayed(answer(owner, pruned, pruned_head - 1)) == ("owner", pruned_head, [pruned_head])
    assert replayed(answer(owner, pruned, pruned_head - 4)) == ("owner", pruned_head, None)
    assert replayed(answer(owner, deleted, deleted_head)) == (None, None, None)
    assert answer(owner, nowhere, 0) == ResumeAs(role=None, resumed=None)

    before = grouping("resume")
    together = await asyncio.gather(*(read_resume_as(database, *call) for call in calls))
    seen = grouping("resume").since(before)
    # The first call went alone; the 80 that came meanwhile went as 64, then 16.
    assert seen == Grouping(calls=3, reads=81, lone=1, within_bound=3)
    assert together == [alone[call] for call in calls]


COUNT_UPDATES = (
    "CREATE TABLE touch_statements (n int)",
    "CREATE FUNCTION count_touch() RETURNS trigger LANGUAGE plpgsql AS"
    " $$ BEGIN INSERT INTO touch_statements VALUES (1); RETURN NULL; END $$",
    "CREATE TRIGGER count_touch AFTER UPDATE ON user_session"
    " FOR EACH STATEMENT EXECUTE FUNCTION count_touch()",
)
# The touches waiting for the session row's lock.
WAITING_TOUCHES = (
    "SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
    " AND query LIKE '%UPDATE user_session SET last_seen_at%' AND pid <> pg_backend_pid()"
)
STOP_COUNTING = (
    "DROP TRIGGER count_touch ON user_session",
    "DROP FUNCTION count_touch()",
    "DROP TABLE touch_statements",
)


async def test_a_storm_of_one_stale_session_slides_its_expiry_with_one_update(
    api: Api, pg_url: str
) -> None:
    """50 sockets of one session, not seen for two minutes, authenticate at once.

    Another transaction holds the session's row, so the first call's touch is
    still waiting when the others read the session, stale, in their batch.
    They must not queue behind it on the row's lock (each holding a
    statement connection) to update nothing: one UPDATE statement in all, counted by a
    statement-level trigger.
    """
    database = api.ctx.database
    user = await api.register("tabs")
    old = datetime.now(UTC) - 2 * TOUCH_INTERVAL
    await UserSession.update({UserSession.last_seen_at: old}).where(of_token(user.token))
    for sql in COUNT_UPDATES:
        await UserSession.raw(sql)
    holder = await asyncpg.connect(pg_url)
    try:
        held = holder.transaction()
        await held.start()
        await holder.execute(
            "SELECT 1 FROM user_session WHERE token_hash = $1 FOR UPDATE", hash_token(user.token)
        )
        storm = asyncio.gather(
            *(authenticate(database, user.token, ttl_s=TTL_S, via="bearer") for _ in range(50))
        )
        async with asyncio.timeout(10):
            # Asked outside the holder's transaction, whose view of the activity stays as it began.
            while not (await UserSession.raw(WAITING_TOUCHES))[0]["n"]:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)  # the others have read the session meanwhile
        await held.commit()
        answers = await storm
        counted = await UserSession.raw("SELECT count(*) AS n FROM touch_statements")
    finally:
        await holder.close()
        for sql in STOP_COUNTING:
            await UserSession.raw(sql)
    assert all(answer is not None and str(answer.user_id) == user.id for answer in answers)
    assert counted[0]["n"] == 1
    touched = await UserSession.select(UserSession.last_seen_at).where(of_token(user.token)).first()
    assert touched is not None
    assert touched["last_seen_at"] > old
