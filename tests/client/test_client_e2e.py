"""The Python client against a real server process: REST, joins, rebases, resume, offline queue."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from server.client import (
    ApiError,
    Backoff,
    Client,
    EditConflict,
    EventStream,
    RestClient,
    Unauthorized,
)
from server.realtime import protocol as p
from tests.client.proxy import Proxy
from tests.servers import ServerProcess, running_server, server_env

pytestmark = pytest.mark.e2e
PASSWORD = "correct horse battery"
TIMEOUT_S = 15.0
FAST = Backoff(base_s=0.02, cap_s=0.2)


@pytest.fixture(scope="module")
async def server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("client")
    env = server_env(f"sqlite:///{tmp / 'm.sqlite3'}", MOODBOARD_INPROCESS_WORKER="false")
    async with running_server(env, tmp) as process:
        yield process


@pytest.fixture
async def proxy(server: ServerProcess) -> AsyncIterator[Proxy]:
    async with Proxy(server.port).running() as running:
        yield running


@pytest.fixture
async def stack() -> AsyncIterator[AsyncExitStack]:
    """Closes what a test opened (REST clients) when it ends."""
    async with AsyncExitStack() as exits:
        yield exits


async def user(stack: AsyncExitStack, url: str, name: str) -> tuple[RestClient, str]:
    rest = await stack.enter_async_context(RestClient(url))
    email = f"{name}-{uuid.uuid4().hex[:8]}@example.com"
    await rest.register(email, PASSWORD, name)
    return rest, email


async def shared_project(
    stack: AsyncExitStack, url: str
) -> tuple[RestClient, RestClient, uuid.UUID, uuid.UUID]:
    """An owner and an editor on one project with one room: (owner, editor, project, room)."""
    owner, _ = await user(stack, url, "owner")
    editor, editor_email = await user(stack, url, "editor")
    project = await owner.create_project("Flat")
    await owner.add_member(project.id, editor_email, "editor")
    room = await owner.create_room(project.id, "Kitchen", "kitchen")
    return owner, editor, project.id, room.id


async def collect(stream: EventStream, upto: int) -> list[p.EventFrame]:
    """Events from ``stream`` until one with seq ``upto``."""
    seen: list[p.EventFrame] = []
    while not seen or seen[-1].seq < upto:
        seen.append(await stream.next(TIMEOUT_S))
    return seen


async def test_rest_calls_follow_the_contract(server: ServerProcess, stack: AsyncExitStack) -> None:
    """Every REST call of the client answers with typed entities, and failures are ApiErrors."""
    async with RestClient(server.url) as owner:
        email = f"rest-{uuid.uuid4().hex[:8]}@example.com"
        registered = await owner.register(email, PASSWORD, "Rest")
        assert (await owner.me()).id == registered.user.id
        project = await owner.create_project("Flat", description="two rooms")
        assert [listed.id for listed in await owner.projects()] == [project.id]
        assert (await owner.project(project.id)).description == "two rooms"
        room = await owner.create_room(project.id, "Kitchen", "kitchen", attributes={"m2": 9})
        item = await owner.create_item(project.id, room.id, "note", x=5, data={"t": "hi"})
        moved = await owner.update_item(project.id, item.id, item.version, x=7)
        assert (moved.x, moved.version) == (7.0, 2)
        with pytest.raises(ApiError) as stale:
            await owner.update_item(project.id, item.id, 1, x=8)
        assert (stale.value.status, stale.value.code) == (409, "conflict")
        assert stale.value.problem["current_version"] == 2
        assert [i.id for i in await owner.items(project.id, room.id)] == [item.id]
        renamed = await owner.update_room(project.id, room.id, room.version, name="Den")
        assert renamed.name == "Den"
        generation = await owner.request_generation(project.id, room.id, "a green sofa")
        assert generation.status == "queued"
        assert [g.id for g in await owner.generations(project.id)] == [generation.id]
        assert (await owner.cancel_generation(generation.id)).status == "canceled"
        assert (await owner.generation(generation.id)).status == "canceled"
        await owner.delete_item(project.id, item.id, moved.version)
        page = await owner.events(project.id, after=0, limit=1000)
        assert [e.seq for e in page.events] == list(range(1, page.seq + 1))
        assert page.events[-1].kind == "item.deleted"
        await owner.delete_room(project.id, room.id, renamed.version)
        assert await owner.rooms(project.id) == []
        await owner.logout()
        with pytest.raises(ApiError) as gone:
            await owner.me()
        assert gone.value.status == 401
    async with RestClient(server.url) as leaving:
        email = f"erase-{uuid.uuid4().hex[:8]}@example.com"
        await leaving.register(email, PASSWORD, "Leaving")
        await leaving.erase_account(PASSWORD)
        with pytest.raises(ApiError) as erased:
            await leaving.login(email, PASSWORD)
        assert erased.value.status == 401


async def test_cookie_login_opens_a_socket_and_bad_tokens_do_not(
    server: ServerProcess, stack: AsyncExitStack
) -> None:
    """A session cookie from login authenticates the socket; a bad token fails with Unauthorized."""
    _, email = await user(stack, server.url, "cookie")
    async with RestClient(server.url, auth="cookie") as browser:
        result = await browser.login(email, PASSWORD)
        assert browser.session_cookie is not None
        project = await browser.create_project("By cookie")  # same-origin Origin is sent
        async with Client(server.url, cookie=browser.session_cookie) as client:
            assert client.user is not None
            assert client.user.id == result.user.id
            state = await client.join(project.id)
            assert state.project is not None
            assert state.project["name"] == "By cookie"
    with pytest.raises(Unauthorized):
        async with Client(server.url, token="not-a-token", backoff=FAST):
            pass


async def test_concurrent_edits_of_one_item_converge_with_the_rebase(
    server: ServerProcess, stack: AsyncExitStack
) -> None:
    """Two users move the same item at once: the loser is rebased and both end at the DB state."""
    owner, editor, pid, room = await shared_project(stack, server.url)
    assert owner.token
    assert editor.token
    async with (
        Client(server.url, token=owner.token) as a,
        Client(server.url, token=editor.token) as b,
    ):
        await a.join(pid)
        await b.join(pid)
        created = await a.create(pid, "item", {"kind": "note", "x": 0, "y": 0}, room_id=room)
        await b.wait_for_seq(pid, created.seq)
        assert b.states[pid].items[created.id]["version"] == 1
        # Both from version 1, both setting x: one commits, the other conflicts on x.
        first, second = await asyncio.gather(
            a.update(pid, "item", created.id, {"x": 100, "w": 50}),
            b.update(pid, "item", created.id, {"x": 200, "h": 70}),
        )
        assert sorted([first.rebased, second.rebased]) == [0, 1]
        winner = 100 if first.rebased else 200  # the rebased intent is applied last
        last = max(first.seq, second.seq)
        await a.wait_for_seq(pid, last)
        await b.wait_for_seq(pid, last)
        [stored] = await owner.items(pid, room)
        assert (stored.x, stored.w, stored.h, stored.version) == (winner, 50.0, 70.0, 3)
        for client in (a, b):
            local = client.states[pid].items[created.id]
            assert (local["x"], local["w"], local["h"], local["version"]) == (winner, 50, 70, 3)


async def test_three_editors_racing_on_one_item_all_land_and_converge(
    server: ServerProcess, stack: AsyncExitStack
) -> None:
    """Many overlapping edits at once: each commits (rebased as needed); the last write wins."""
    owner, editor, pid, room = await shared_project(stack, server.url)
    third, third_email = await user(stack, server.url, "third")
    await owner.add_member(pid, third_email, "editor")
    item = await owner.create_item(pid, room, "note")
    own_field = {0: "w", 1: "h", 2: "rotation"}
    async with (
        Client(server.url, token=owner.token or "", max_rebases=50) as a,
        Client(server.url, token=editor.token or "", max_rebases=50) as b,
        Client(server.url, token=third.token or "", max_rebases=50) as c,
    ):
        clients = (a, b, c)
        for client in clients:
            await client.join(pid)

        rebases = 0

        async def burst(k: int) -> list[tuple[int, dict[str, float]]]:
            nonlocal rebases
            done = []
            for n in range(8):
                value = float(100 * (k + 1) + n + 1)
                fields = {"x": value, own_field[k]: value}
                result = await clients[k].update(pid, "item", item.id, fields)
                rebases += result.rebased
                done.append((result.seq, fields))
            return done

        writes = sorted(w for ws in await asyncio.gather(*(burst(k) for k in range(3))) for w in ws)
        assert len({seq for seq, _ in writes}) == 24  # every edit committed once
        assert rebases > 0  # all three start from version 1: at least one lost the race
        expected: dict[str, float] = {}
        for _, fields in writes:  # in commit order: the last write of a field wins
            expected.update(fields)
        end = writes[-1][0]
        [stored] = await owner.items(pid, room)
        assert {f: getattr(stored, f) for f in expected} == expected
        for client in clients:
            await client.wait_for_seq(pid, end)
            local = client.states[pid].items[item.id]
            assert {f: local[f] for f in expected} == expected
            assert local["version"] == stored.version == 25


async def test_a_conflict_on_a_deleted_item_reaches_the_caller(
    server: ServerProcess, stack: AsyncExitStack
) -> None:
    """An update whose item someone else deleted is not retried: EditConflict with current None."""
    owner, editor, pid, room = await shared_project(stack, server.url)
    assert owner.token
    assert editor.token
    item = await owner.create_item(pid, room, "note")
    async with Client(server.url, token=editor.token) as b:
        await b.join(pid)
        await owner.delete_item(pid, item.id, item.version)
        with pytest.raises(EditConflict) as refused:
            await b.update(pid, "item", item.id, {"x": 1}, base_version=1)
        assert refused.value.conflict.current is None


async def test_presence_is_throttled_and_the_latest_state_wins(
    server: ServerProcess, stack: AsyncExitStack
) -> None:
    """A burst of cursor moves reaches the others as presence, ending with the last one."""
    owner, editor, pid, _ = await shared_project(stack, server.url)
    assert owner.token
    assert editor.token
    async with (
        Client(server.url, token=owner.token, presence_interval_s=0.05) as a,
        Client(server.url, token=editor.token) as b,
    ):
        await a.join(pid)
        await b.join(pid)
        assert a.connection_id in b.presence[pid]
        for x in range(50):
            a.set_presence(pid, {"cursor": {"x": x, "y": 0}, "selection": []})

        def sees_last() -> bool:
            entry = b.presence[pid].get(a.connection_id or "")
            return entry is not None and entry.state.get("cursor") == {"x": 49, "y": 0}

        await b.wait_until(sees_last, TIMEOUT_S)
        await a.leave(pid)
        await b.wait_until(lambda: a.connection_id not in b.presence[pid], TIMEOUT_S)


async def test_leave_and_join_again_replays_and_revocation_is_reported(
    server: ServerProcess, stack: AsyncExitStack
) -> None:
    """A rejoin after leave replays what was missed; losing access ends the subscription."""
    owner, editor, pid, room = await shared_project(stack, server.url)
    assert editor.token
    me = await editor.me()
    async with Client(server.url, token=editor.token) as client:
        state = await client.join(pid)
        await client.leave(pid)
        item = await owner.create_item(pid, room, "note", x=4)
        with client.events(pid) as stream:
            await client.join(pid)
            assert client.join_modes[pid] == ["snapshot", "replay"]
            assert [e.kind for e in await collect(stream, state.seq)] == ["item.created"]
        assert state.items[item.id]["x"] == 4
        await owner.remove_member(pid, me.id)
        await client.wait_until(lambda: pid in client.revoked, TIMEOUT_S)


async def test_a_dropped_socket_resumes_and_sees_every_event_once(
    server: ServerProcess, proxy: Proxy, stack: AsyncExitStack
) -> None:
    """Cut mid-stream and kept offline while others edit: the client replays from last_seq."""
    owner, editor, pid, room = await shared_project(stack, server.url)
    assert owner.token
    assert editor.token
    async with Client(proxy.url, token=editor.token, backoff=FAST) as watcher:
        state = await watcher.join(pid)
        start = state.seq
        with watcher.events(pid) as stream:
            item = await owner.create_item(pid, room, "note")
            for x in range(3):
                item = await owner.update_item(pid, item.id, item.version, x=x)
            await collect(stream, start + 4)
            proxy.online = False
            proxy.cut()
            for y in range(5):  # committed while the watcher is away
                item = await owner.update_item(pid, item.id, item.version, y=y)
            proxy.online = True
            end = (await owner.project(pid)).seq
            after = await collect(stream, end)
            assert [e.seq for e in after] == list(range(start + 5, end + 1))
        assert watcher.connects >= 2
        assert watcher.join_modes[pid][-1] == "replay"
        assert watcher.gaps == 0
        local = state.items[item.id]
        assert (local["x"], local["y"], local["version"]) == (2, 4, item.version)


async def test_offline_edits_are_applied_once_after_reconnect(
    server: ServerProcess, proxy: Proxy, stack: AsyncExitStack
) -> None:
    """Edits made offline, and one whose ack was lost, each commit exactly once on reconnect."""
    owner, editor, pid, room = await shared_project(stack, server.url)
    assert owner.token
    assert editor.token
    async with (
        Client(server.url, token=owner.token) as observer,
        Client(proxy.url, token=editor.token, backoff=FAST) as author,
    ):
        await observer.join(pid)
        await author.join(pid)
        with observer.events(pid) as seen:
            # 1. The server applies the edit but its reply is lost on the way back.
            proxy.muted = True
            lost_ack = asyncio.create_task(
                author.create(pid, "item", {"kind": "note", "x": 1}, room_id=room)
            )
            applied = await seen.next(TIMEOUT_S)
            assert applied.kind == "item.created"
            # 2. The author goes offline and keeps editing.
            proxy.online = False
            proxy.cut()
            await author.wait_until(lambda: not author.connected, TIMEOUT_S)
            proxy.muted = False
            offline = [
                asyncio.create_task(
                    author.create(pid, "item", {"kind": "color", "x": float(n)}, room_id=room)
                )
                for n in range(3)
            ]
            await asyncio.sleep(0)  # let the three edits reach the queue
            assert author.pending == 4
            assert not author.connected
            proxy.online = True
            results = await asyncio.wait_for(asyncio.gather(lost_ack, *offline), TIMEOUT_S)
            assert results[0].id == applied.id
            assert results[0].seq == applied.seq
            end = max(r.seq for r in results)
            later = await collect(seen, end)
        events = [applied, *later]
        assert sorted(e.op_id or "" for e in events) == sorted(r.op_id for r in results)
        assert [e.seq for e in events] == list(range(applied.seq, end + 1))
        stored = await owner.items(pid, room)
        assert len(stored) == 4
        assert {i.id: i.version for i in stored} == {
            i: e["version"] for i, e in author.states[pid].items.items()
        }


async def test_a_server_restart_is_survived(tmp_path: Path, stack: AsyncExitStack) -> None:
    """After the server restarts (1012), the client reconnects to the new process and resumes."""
    env = server_env(f"sqlite:///{tmp_path / 'r.sqlite3'}", MOODBOARD_INPROCESS_WORKER="false")
    async with running_server(env, tmp_path) as first:
        owner, editor, pid, room = await shared_project(stack, first.url)
        assert owner.token
        assert editor.token
        async with Proxy(first.port).running() as proxy:
            client = Client(proxy.url, token=editor.token, backoff=FAST)
            async with client:
                state = await client.join(pid)
                await first.stop()
                assert client.last_close_code == 1012
                async with running_server(env, tmp_path) as second:
                    proxy.upstream_port = second.port
                    again = await stack.enter_async_context(
                        RestClient(second.url, token=owner.token)
                    )
                    item = await again.create_item(pid, room, "note", x=3)
                    await client.wait_for_seq(pid, (await again.project(pid)).seq, TIMEOUT_S)
                    assert state.items[item.id]["x"] == 3
                    assert client.join_modes[pid] == ["snapshot", "replay"]
