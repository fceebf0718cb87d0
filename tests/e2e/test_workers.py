"""`moodboard worker` processes against real servers: live progress, races, kills, SIGTERM."""

from __future__ import annotations

import signal
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.servers import (
    ServerProcess,
    call,
    create_service_account,
    running_server,
    running_worker,
    server_env,
    worker_env,
)
from tests.wsclient import Ws, signup, ws

pytestmark = pytest.mark.e2e
PALETTE = ["#d8c3a5", "#8e8d8a", "#e98074"]
FINISHED = ("generation.succeeded", "generation.failed", "generation.canceled")


async def board(server: ServerProcess) -> tuple[str, str, str]:
    """A user (100 credits) with a project and a room with a palette; (token, pid, room id)."""
    _, token = await signup(server.url, "Owner", f"owner-{uuid.uuid4().hex[:8]}@example.com")
    project = (await call(server, "POST", "/api/projects", token, json={"name": "Flat"})).json()
    room = await call(
        server,
        "POST",
        f"/api/projects/{project['id']}/rooms",
        token,
        json={"name": "Kitchen", "room_type": "kitchen", "attributes": {"palette": PALETTE}},
    )
    assert room.status_code == 201, room.text
    return token, project["id"], room.json()["id"]


async def request(server: ServerProcess, token: str, pid: str, room: str, prompt: str) -> str:
    made = await call(
        server,
        "POST",
        f"/api/projects/{pid}/generations",
        token,
        json={"room_id": room, "prompt": prompt},
    )
    assert made.status_code == 202, made.text
    gid: str = made.json()["id"]
    return gid


async def watch(sock: Ws, pid: str) -> int:
    """Join the project; the seq it starts from."""
    await sock.expect("ready")
    joined = await sock.request({"type": "join", "ref": "j", "project_id": pid})
    assert joined["type"] == "joined", joined
    seq: int = joined["seq"]
    return seq


async def events_until(
    sock: Ws, after: int, done: Callable[[list[dict[str, Any]]], bool], timeout: float = 30.0
) -> list[dict[str, Any]]:
    """Event frames in arrival order until ``done``; asserts seq order with no gaps."""
    events: list[dict[str, Any]] = []
    while not done(events):
        frame = await sock.first(lambda f: f["type"] == "event", timeout)
        assert frame["seq"] == after + len(events) + 1, (frame, events[-1:])
        events.append(frame)
    return events


def kinds_of(events: list[dict[str, Any]], gid: str) -> list[str]:
    return [e["kind"] for e in events if e["id"] == gid]


def finished(gids: list[str]) -> Callable[[list[dict[str, Any]]], bool]:
    return lambda events: {e["id"] for e in events if e["kind"] in FINISHED} >= set(gids)


async def test_worker_processes_on_another_instance_stream_progress_live(
    cluster_db: str, redis_url: str, tmp_path: Path
) -> None:
    """Two worker processes on two instances share ten jobs, each once; a socket sees all."""
    env = server_env(cluster_db, REDIS_URL=redis_url)
    async with running_server(env, tmp_path) as a, running_server(env, tmp_path) as b:
        key = await create_service_account(env)
        token, pid, room = await board(a)
        async with ws(a.url, token) as sock:
            seq = await watch(sock, pid)
            gids = [await request(a, token, pid, room, f"oak shelf {n}") for n in range(10)]
            w_env = worker_env(key, MOODBOARD_WORKER_CONCURRENCY="2")
            async with (
                running_worker(b.url, w_env, tmp_path, "one"),
                running_worker(a.url, w_env, tmp_path, "two"),
            ):
                events = await events_until(sock, seq, finished(gids))
        for gid in gids:
            kinds = kinds_of(events, gid)
            assert kinds[:2] == ["generation.queued", "generation.started"], kinds
            assert kinds[-1] == "generation.succeeded", kinds
            assert set(kinds[2:-1]) == {"generation.progress"}, kinds  # claimed exactly once
        last = next(e for e in reversed(events) if e["kind"] == "generation.succeeded")
        assert last["data"]["attempts"] == 1
        assert set(last["data"]["stage_timings"]) == {"layout", "palette", "compose", "render"}
        result = last["data"]["result"]
        assert result["palette"] == PALETTE
        picture = await call(a, "GET", result["url"], token)
        assert picture.status_code == 200
        assert picture.headers["content-type"].startswith("image/svg+xml")
        assert ET.fromstring(picture.content).tag.endswith("svg")
        listed = await call(a, "GET", f"/api/projects/{pid}/generations", token)
        assert sorted(g["status"] for g in listed.json()) == ["succeeded"] * 10
        assert all(g["attempts"] == 1 and g["queue_wait_ms"] >= 0 for g in listed.json())
        me = (await call(a, "GET", "/api/me", token)).json()
        assert me["credits"] == 0


async def test_a_job_survives_sigterm_and_sigkill_of_its_workers(
    cluster_db: str, redis_url: str, tmp_path: Path
) -> None:
    """SIGTERM mid-job releases it; a SIGKILLed worker's job is reclaimed after the lease."""
    env = server_env(
        cluster_db,
        REDIS_URL=redis_url,
        MOODBOARD_GENERATION_LEASE_SECONDS="2",
        MOODBOARD_GENERATION_MAX_ATTEMPTS="5",
    )
    async with running_server(env, tmp_path) as server:
        key = await create_service_account(env)
        token, pid, room = await board(server)
        slow = worker_env(
            key, MOODBOARD_WORKER_STEP_DELAY_MS="10000", MOODBOARD_WORKER_GRACE_MS="0"
        )
        async with ws(server.url, token) as sock:
            seq = await watch(sock, pid)
            gid = await request(server, token, pid, room, "velvet armchair")

            def seen(*kinds: str) -> Callable[[list[dict[str, Any]]], bool]:
                return lambda events: kinds_of(events, gid)[-len(kinds) :] == list(kinds)

            events: list[dict[str, Any]] = []
            async with running_worker(server.url, slow, tmp_path, "terminated") as first:
                events += await events_until(sock, seq, seen("generation.progress"))
                assert await first.stop(signal.SIGTERM) == 0  # released, not lost
            events += await events_until(sock, seq + len(events), seen("generation.queued"))
            released = events[-1]["data"]
            assert (released["status"], released["attempts"]) == ("queued", 1)

            async with running_worker(server.url, slow, tmp_path, "killed") as second:
                events += await events_until(
                    sock, seq + len(events), seen("generation.started", "generation.progress")
                )
                second.process.kill()
                await second.process.wait()
            # Nothing renews the lease now: the server's sweep puts the job back.
            events += await events_until(sock, seq + len(events), seen("generation.queued"))
            assert "lease expired" in events[-1]["data"]["error"]

            async with running_worker(server.url, worker_env(key), tmp_path, "finisher"):
                events += await events_until(sock, seq + len(events), finished([gid]))
        assert events[-1]["kind"] == "generation.succeeded"
        assert events[-1]["data"]["attempts"] == 3
        me = (await call(server, "GET", "/api/me", token)).json()
        assert me["credits"] == 90  # paid once, never refunded nor charged again


async def test_embedded_serve_completes_generations_in_process(tmp_path: Path) -> None:
    """`serve` on SQLite alone runs the built-in worker: a request completes with no worker."""
    env = server_env(
        f"sqlite:///{tmp_path / 'm.sqlite3'}",
        MOODBOARD_INPROCESS_WORKER="1",
        MOODBOARD_WORKER_STEP_DELAY_MS="50",
        MOODBOARD_WORKER_POLL_MS="100",
    )
    async with running_server(env, tmp_path) as server:
        token, pid, room = await board(server)
        async with ws(server.url, token) as sock:
            seq = await watch(sock, pid)
            gid = await request(server, token, pid, room, "sunlit reading nook")
            events = await events_until(sock, seq, finished([gid]))
        kinds = kinds_of(events, gid)
        assert kinds[:2] == ["generation.queued", "generation.started"]
        assert kinds[-1] == "generation.succeeded"
        picture = await call(server, "GET", events[-1]["data"]["result"]["url"], token)
        assert picture.status_code == 200
        assert picture.headers["content-type"].startswith("image/svg+xml")
