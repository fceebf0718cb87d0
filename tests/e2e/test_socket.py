"""The /ws endpoint against a real server process: auth, joins, limits, fuzzing, presence."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.servers import ServerProcess, running_server, server_env
from tests.wsclient import PASSWORD, signup, ws

pytestmark = pytest.mark.e2e
_n = iter(range(10**6))


@pytest.fixture(scope="module")
async def server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ServerProcess]:
    """One embedded-mode server with small limits, shared by this module's tests."""
    tmp = tmp_path_factory.mktemp("socket")
    env = server_env(
        f"sqlite:///{tmp / 'm.sqlite3'}",
        MOODBOARD_AUTH_TIMEOUT_MS="1000",
        MOODBOARD_MAX_JOINS_PER_SOCKET="2",
        MOODBOARD_SOCKET_RATE="20",
        MOODBOARD_SOCKET_BURST="20",
        MOODBOARD_ALLOWED_ORIGINS="https://app.example.com",
        MOODBOARD_MAX_SOCKETS_PER_USER="3",
    )
    async with running_server(env, tmp) as process:
        yield process


async def user(server: ServerProcess, name: str = "u") -> tuple[str, str]:
    return await signup(server.url, name, f"{name}-{next(_n)}-{uuid.uuid4().hex[:6]}@example.com")


async def project(server: ServerProcess, token: str, name: str = "Flat") -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=server.url) as client:
        response = await client.post(
            "/api/projects", json={"name": name}, headers={"Authorization": f"Bearer {token}"}
        )
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body


async def rest(server: ServerProcess, method: str, path: str, token: str, **kw: Any) -> Any:
    async with httpx.AsyncClient(base_url=server.url) as client:
        return await client.request(
            method, path, headers={"Authorization": f"Bearer {token}"}, **kw
        )


async def rename(
    server: ServerProcess, token: str, pid: str, times: int, prefix: str = "n"
) -> None:
    """``times`` renames of a new project (n0, n1, ...): as many events after its creation."""
    for i in range(times):
        await rest(
            server,
            "PATCH",
            f"/api/projects/{pid}",
            token,
            json={"base_version": 1 + i, "name": f"{prefix}{i}"},
        )


async def test_bearer_handshake_and_auth_frame_give_ready(server: ServerProcess) -> None:
    """A Bearer header authenticates at the handshake; an auth frame does too, echoing its ref."""
    user_id, token = await user(server)
    async with ws(server.url, token) as sock:
        ready = await sock.recv()
        assert ready["type"] == "ready"
        assert ready["protocol"] == 1
        assert ready["user"]["id"] == user_id
        assert ready["connection_id"]
    async with ws(server.url) as sock:
        reply = await sock.request({"type": "auth", "ref": "a1", "token": token})
        assert reply["type"] == "ready"
        assert reply["user"]["id"] == user_id
        assert (await sock.request({"type": "ping", "ref": "p"})) == {"type": "pong", "ref": "p"}


async def test_bad_token_and_silence_close_4401(server: ServerProcess) -> None:
    """A bad token upgrades then closes 4401; a socket that never authenticates closes 4401."""
    async with ws(server.url, "mbs_not-a-real-token") as sock:
        assert await sock.closed() == 4401
    async with ws(server.url) as sock:
        reply = await sock.request({"type": "join", "ref": "j", "project_id": str(uuid.uuid4())})
        assert (reply["type"], reply["code"]) == ("error", "unauthorized")
        assert await sock.closed(timeout=5) == 4401  # the test server's auth timeout is 1 s
    async with ws(server.url) as sock:
        await sock.send({"type": "auth", "token": "mbs_wrong"})
        assert await sock.closed() == 4401


async def test_origin_is_checked_before_the_upgrade(server: ServerProcess) -> None:
    """A foreign Origin gets HTTP 403 before the upgrade; allowed, own and missing ones connect."""
    _, token = await user(server)
    with pytest.raises(InvalidStatus) as refused:
        async with ws(server.url, token, origin="https://evil.example"):
            pass
    assert refused.value.response.status_code == 403
    for origin in ("https://app.example.com", f"http://127.0.0.1:{server.port}", None):
        async with ws(server.url, token, origin=origin) as sock:
            assert (await sock.recv())["type"] == "ready"


async def test_join_gives_a_snapshot_with_presence(server: ServerProcess) -> None:
    """Joining sends the snapshot at the project's seq, with the joiner in the presence map."""
    owner_id, token = await user(server, "owner")
    created = await project(server, token)
    async with ws(server.url, token) as sock:
        ready = await sock.recv()
        joined = await sock.request({"type": "join", "ref": "j1", "project_id": created["id"]})
        assert joined["type"] == "joined"
        assert (joined["mode"], joined["seq"]) == ("snapshot", created["seq"])
        snapshot = joined["snapshot"]
        assert snapshot["project"]["id"] == created["id"]
        assert (snapshot["rooms"], snapshot["items"], snapshot["generations"]) == ([], [], [])
        assert [(m["user_id"], m["role"]) for m in snapshot["members"]] == [(owner_id, "owner")]
        me = joined["presence"][ready["connection_id"]]
        assert me["user_id"] == owner_id
        assert me["state"] == {}


async def test_non_members_are_refused_and_viewers_may_join(server: ServerProcess) -> None:
    """A non-member's join is forbidden (like an unknown project); a viewer's succeeds."""
    _, owner = await user(server, "owner")
    _, viewer = await user(server, "viewer")
    created = await project(server, owner)
    async with ws(server.url, viewer) as sock:
        await sock.expect("ready")
        for pid in (created["id"], str(uuid.uuid4())):
            reply = await sock.request({"type": "join", "ref": "j", "project_id": pid})
            assert (reply["type"], reply["code"]) == ("error", "forbidden")
        async with httpx.AsyncClient(base_url=server.url) as client:
            me = await client.get("/api/me", headers={"Authorization": f"Bearer {viewer}"})
            added = await client.post(
                f"/api/projects/{created['id']}/members",
                json={"email": me.json()["email"], "role": "viewer"},
                headers={"Authorization": f"Bearer {owner}"},
            )
            assert added.status_code == 201
        reply = await sock.request({"type": "join", "ref": "j2", "project_id": created["id"]})
        assert reply["type"] == "joined"


async def test_joins_per_socket_are_limited(server: ServerProcess) -> None:
    """The third join on a socket limited to two is refused with too_large."""
    _, token = await user(server)
    projects = [await project(server, token, f"p{i}") for i in range(3)]
    async with ws(server.url, token) as sock:
        await sock.expect("ready")
        for i, created in enumerate(projects):
            reply = await sock.request(
                {"type": "join", "ref": f"j{i}", "project_id": created["id"]}
            )
            expected = "joined" if i < 2 else "error"
            assert reply["type"] == expected
        assert reply["code"] == "too_large"


async def flood(sock: Any, pings: int = 150) -> list[str]:
    """Send ``pings`` pings as fast as possible; each answer's code or type, until the close."""
    for i in range(pings):
        try:
            await sock.send({"type": "ping", "ref": str(i)})
        except ConnectionClosed:
            break
    kinds: list[str] = []
    while True:
        try:
            frame = await sock.recv()
        except ConnectionClosed:
            return kinds
        kinds.append(frame.get("code", frame["type"]))


async def test_message_rate_is_limited_then_closes_4429(server: ServerProcess) -> None:
    """Past the burst a flood gets rate_limited errors, then the socket closes with 4429."""
    _, token = await user(server)
    async with ws(server.url, token) as sock:
        await sock.expect("ready")
        kinds = await flood(sock)
        assert sock.connection.close_code == 4429
        assert kinds.count("pong") <= 21
        assert "rate_limited" in kinds


async def test_oversized_frame_closes_1009(server: ServerProcess) -> None:
    """A frame over 64 KiB closes the socket with 1009."""
    _, token = await user(server)
    async with ws(server.url, token, max_size=None) as sock:
        await sock.expect("ready")
        await sock.connection.send(json.dumps({"type": "ping", "pad": "x" * 70_000}))
        assert await sock.closed() == 1009


async def test_binary_frames_are_bad_requests(server: ServerProcess) -> None:
    """A binary frame gets a bad_request error and the socket keeps answering."""
    _, token = await user(server)
    async with ws(server.url, token) as sock:
        await sock.expect("ready")
        await sock.connection.send(b"\x00\x01binary")
        error = await sock.expect("error")
        assert error["code"] == "bad_request"
        assert "binary" in error["message"]
        assert await sock.request({"type": "ping", "ref": "alive"}) == {
            "type": "pong",
            "ref": "alive",
        }


frames = st.one_of(
    st.text(max_size=200),
    st.dictionaries(
        st.sampled_from(
            [
                "type",
                "ref",
                "project_id",
                "token",
                "last_seq",
                "state",
                "op_id",
                "action",
                "entity",
                "data",
                "extra",
            ]
        ),
        st.one_of(
            st.none(),
            st.integers(),
            st.text(max_size=80),
            st.booleans(),
            st.sampled_from(["join", "leave", "ping", "presence", "auth", "edit"]),
            st.lists(st.integers(), max_size=3),
            st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
        ),
        max_size=6,
    ).map(json.dumps),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(frame=frames)
def test_fuzzed_frames_never_break_the_socket(server: ServerProcess, frame: str) -> None:
    """Arbitrary frames get an error frame or a reply, never a crash: ping still answers."""
    asyncio.run(_fuzz_once(server, frame))


_fuzz_token: dict[str, str] = {}


async def _fuzz_once(server: ServerProcess, frame: str) -> None:
    if "token" not in _fuzz_token:
        _fuzz_token["token"] = (await user(server, "fuzz"))[1]
    async with ws(server.url, _fuzz_token["token"]) as sock:
        await sock.expect("ready")
        await sock.connection.send(frame)
        reply = await sock.request({"type": "ping", "ref": "after-fuzz"})
        assert reply == {"type": "pong", "ref": "after-fuzz"}
        assert sock.connection.close_code is None


async def test_events_and_presence_reach_every_subscriber(server: ServerProcess) -> None:
    """A REST change arrives as the next-seq event at both sockets; presence diffs go to others."""
    owner_id, owner = await user(server, "owner")
    editor_id, editor = await user(server, "editor")
    created = await project(server, owner)
    pid = created["id"]
    me = (await rest(server, "GET", "/api/me", editor)).json()
    await rest(
        server,
        "POST",
        f"/api/projects/{pid}/members",
        owner,
        json={"email": me["email"], "role": "editor"},
    )
    async with ws(server.url, owner) as a, ws(server.url, editor) as b:
        await a.expect("ready")
        b_ready = await b.expect("ready")
        joined_a = await a.request({"type": "join", "ref": "ja", "project_id": pid})
        seq = joined_a["seq"]
        await b.request({"type": "join", "ref": "jb", "project_id": pid})
        diff = await a.expect("presence_diff")
        assert list(diff["joins"]) == [b_ready["connection_id"]]
        assert diff["joins"][b_ready["connection_id"]]["user_id"] == editor_id

        await b.send({"type": "presence", "project_id": pid, "state": {"cursor": {"x": 1}}})
        moved = await a.expect("presence_diff")
        assert moved["joins"][b_ready["connection_id"]]["state"] == {"cursor": {"x": 1}}

        patched = await rest(
            server,
            "PATCH",
            f"/api/projects/{pid}",
            editor,
            json={"base_version": 1, "name": "Renamed"},
        )
        assert patched.status_code == 200
        for sock in (a, b):
            event = await sock.expect("event")
            assert (event["seq"], event["kind"], event["id"]) == (seq + 1, "project.updated", pid)
            assert event["data"] == {"name": "Renamed"}
            assert (event["actor_id"], event["version"]) == (editor_id, 2)

        await b.request({"type": "leave", "ref": "lb", "project_id": pid})
        gone = await a.expect("presence_diff")
        assert list(gone["leaves"]) == [b_ready["connection_id"]]
        assert owner_id != editor_id


async def test_resume_with_last_seq_replays_exactly_the_missing_events(
    server: ServerProcess,
) -> None:
    """join with last_seq gets the events after it (replay); a last_seq ahead gets a snapshot."""
    _, token = await user(server)
    created = await project(server, token)
    pid = created["id"]
    await rename(server, token, pid, 3)
    async with ws(server.url, token) as sock:
        await sock.expect("ready")
        joined = await sock.request(
            {"type": "join", "ref": "j", "project_id": pid, "last_seq": created["seq"]}
        )
        assert (joined["mode"], joined["seq"]) == ("replay", created["seq"] + 3)
        assert "snapshot" not in joined
        replayed = [await sock.expect("event") for _ in range(3)]
        assert [e["seq"] for e in replayed] == [created["seq"] + i for i in (1, 2, 3)]
        assert [e["data"]["name"] for e in replayed] == ["n0", "n1", "n2"]
        await sock.request({"type": "leave", "ref": "l", "project_id": pid})
        ahead = await sock.request(
            {"type": "join", "ref": "j2", "project_id": pid, "last_seq": 999}
        )
        assert ahead["mode"] == "snapshot"
        assert ahead["snapshot"]["project"]["name"] == "n2"


async def test_replays_of_the_same_seqs_in_two_projects_are_each_their_own(
    server: ServerProcess,
) -> None:
    """Events are decoded and encoded once for all replays: never one project's for another's.

    Both projects log events at the same seqs; every replay, first or repeated,
    is exactly what a watcher saw live.
    """
    _, token = await user(server)
    first, second = await project(server, token), await project(server, token)
    assert first["seq"] == second["seq"]
    live: dict[str, list[dict[str, Any]]] = {}
    async with ws(server.url, token) as watcher:
        await watcher.expect("ready")
        for created in (first, second):
            await watcher.request({"type": "join", "ref": "w", "project_id": created["id"]})
        for created, prefix in ((first, "a"), (second, "b")):
            await rename(server, token, created["id"], 3, prefix=prefix)
        events = [await watcher.expect("event") for _ in range(6)]
    for created in (first, second):
        live[created["id"]] = [e for e in events if e["project_id"] == created["id"]]
    for _ in range(2):  # the second round is served from what the first decoded and encoded
        for created, prefix in ((first, "a"), (second, "b")):
            async with ws(server.url, token) as sock:
                await sock.expect("ready")
                await sock.request(
                    {
                        "type": "join",
                        "ref": "j",
                        "project_id": created["id"],
                        "last_seq": created["seq"],
                    }
                )
                replayed = [await sock.expect("event") for _ in range(3)]
            assert replayed == live[created["id"]]
            assert [e["data"]["name"] for e in replayed] == [f"{prefix}{i}" for i in range(3)]


async def test_a_long_replay_arrives_whole_and_in_order(server: ServerProcess) -> None:
    """A replay longer than one write's worth (MAX_HELD_FRAMES) loses and reorders nothing."""
    _, token = await user(server)
    created = await project(server, token)
    pid, edits = created["id"], 150
    await rename(server, token, pid, edits)
    async with ws(server.url, token) as sock:
        await sock.expect("ready")
        await sock.send({"type": "join", "ref": "j", "project_id": pid, "last_seq": created["seq"]})
        await sock.send({"type": "ping", "ref": "after"})
        frames = [await sock.recv() for _ in range(edits + 2)]
    assert frames[0]["type"] == "joined"
    assert [f["seq"] for f in frames[1:-1]] == [created["seq"] + 1 + i for i in range(edits)]
    assert [f["data"]["name"] for f in frames[1:-1]] == [f"n{i}" for i in range(edits)]
    assert frames[-1] == {"type": "pong", "ref": "after"}


async def test_removed_member_is_told_and_logout_closes(server: ServerProcess) -> None:
    """Removing a member sends them left (access_revoked); logging out closes their socket 4401."""
    _, owner = await user(server, "owner")
    editor_id, editor = await user(server, "editor")
    created = await project(server, owner)
    pid = created["id"]
    me = (await rest(server, "GET", "/api/me", editor)).json()
    await rest(
        server,
        "POST",
        f"/api/projects/{pid}/members",
        owner,
        json={"email": me["email"], "role": "editor"},
    )
    async with ws(server.url, editor) as sock:
        await sock.expect("ready")
        await sock.request({"type": "join", "ref": "j", "project_id": pid})
        removed = await rest(server, "DELETE", f"/api/projects/{pid}/members/{editor_id}", owner)
        assert removed.status_code == 204
        left = await sock.expect("left", timeout=2)
        assert left == {"type": "left", "project_id": pid, "reason": "access_revoked"}
        assert (await rest(server, "POST", "/api/auth/logout", editor)).status_code == 204
        assert await sock.closed(timeout=2) == 4401
    assert PASSWORD


async def test_sockets_per_user_are_limited(server: ServerProcess) -> None:
    """A user's fourth socket (limit three) is closed with 4429; others are not affected."""
    _, token = await user(server)
    _, other = await user(server)
    async with contextlib.AsyncExitStack() as stack:
        for _ in range(3):
            sock = await stack.enter_async_context(ws(server.url, token))
            assert (await sock.recv())["type"] == "ready"
        async with ws(server.url, token) as fourth:
            assert await fourth.closed() == 4429
        async with ws(server.url, other) as sock:
            assert (await sock.recv())["type"] == "ready"
    async with ws(server.url, token) as again:  # the earlier three closed: room again
        assert (await again.recv())["type"] == "ready"


async def test_deleting_a_project_evicts_its_sockets(server: ServerProcess) -> None:
    """When the owner deletes the project, joined sockets get left (access_revoked)."""
    _, owner = await user(server, "owner")
    created = await project(server, owner)
    async with ws(server.url, owner) as sock:
        await sock.expect("ready")
        await sock.request({"type": "join", "ref": "j", "project_id": created["id"]})
        assert (
            await rest(server, "DELETE", f"/api/projects/{created['id']}", owner)
        ).status_code == 204
        left = await sock.expect("left", timeout=2)
        assert left == {"type": "left", "project_id": created["id"], "reason": "access_revoked"}
        reply = await sock.request({"type": "join", "ref": "j2", "project_id": created["id"]})
        assert (reply["type"], reply["code"]) == ("error", "forbidden")


async def test_revoking_a_session_closes_its_socket_only(server: ServerProcess) -> None:
    """DELETE /api/me/sessions/{id} closes that session's sockets with 4401, not the others'."""
    _, first = await user(server)
    async with httpx.AsyncClient(base_url=server.url) as client:
        me = (await client.get("/api/me", headers={"Authorization": f"Bearer {first}"})).json()
        login = await client.post(
            "/api/auth/login", json={"email": me["email"], "password": PASSWORD}
        )
        second = login.json()["token"]
        sessions = (
            await client.get("/api/me/sessions", headers={"Authorization": f"Bearer {first}"})
        ).json()
    second_id = next(s["id"] for s in sessions if not s["current"])
    async with ws(server.url, first) as keep, ws(server.url, second) as drop:
        await keep.expect("ready")
        await drop.expect("ready")
        revoked = await rest(server, "DELETE", f"/api/me/sessions/{second_id}", first)
        assert revoked.status_code == 204
        assert await drop.closed(timeout=2) == 4401
        assert await keep.request({"type": "ping", "ref": "still"}) == {
            "type": "pong",
            "ref": "still",
        }
