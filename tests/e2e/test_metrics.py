"""``/metrics`` on a real server: the named series exist and move when the thing happens."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import PG_ADMIN_URL, create_pg_database, drop_pg_database, free_port, require
from tests.servers import ServerProcess, private_redis, running_server, server_env
from tests.wsclient import PASSWORD, Ws, signup, ws

pytestmark = pytest.mark.e2e

SERIES = (
    "moodboard_http_requests_total",
    "moodboard_http_request_seconds",
    "moodboard_ws_open_sockets",
    "moodboard_ws_joins_total",
    "moodboard_ws_frames_received_total",
    "moodboard_ws_frames_sent_total",
    "moodboard_ws_closes_total",
    "moodboard_fanout_seconds",
    "moodboard_feed_gap_fills_total",
    "moodboard_feed_lag_events",
    "moodboard_edits_total",
    "moodboard_events_committed_total",
    "moodboard_auth_failures_total",
    "moodboard_rate_limited_total",
    "moodboard_bus_reconnects_total",
    "moodboard_listen_reconnects_total",
    "moodboard_bus_publish_failures_total",
    "moodboard_db_query_seconds",
    "moodboard_db_pool_connections",
    "moodboard_generations",
    "moodboard_generation_oldest_queued_seconds",
    "moodboard_generation_outcomes_total",
    "moodboard_generation_wait_seconds",
    "moodboard_generation_run_seconds",
    "moodboard_credits_total",
)


@pytest.fixture(scope="module")
async def pg_server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ServerProcess]:
    require("PostgreSQL")
    tmp = tmp_path_factory.mktemp("metrics")
    url = await create_pg_database("moodboard_metrics")
    try:
        env = server_env(url, MOODBOARD_SOCKET_RATE="1", MOODBOARD_SOCKET_BURST="8")
        async with running_server(env, tmp) as process:
            yield process
    finally:
        await drop_pg_database(url)


class Scrape:
    """One reading of /metrics: samples by (name, labels)."""

    def __init__(self, text: str) -> None:
        self.families = {f.name for f in text_string_to_metric_families(text)}
        self.samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                self.samples[(sample.name, frozenset(sample.labels.items()))] = sample.value

    def __call__(self, name: str, **labels: str) -> float:
        return self.samples.get((name, frozenset(labels.items())), 0.0)


async def scrape(server: ServerProcess) -> Scrape:
    async with httpx.AsyncClient(base_url=server.url) as client:
        response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return Scrape(response.text)


async def rest(server: ServerProcess, method: str, path: str, token: str, **kw: Any) -> Any:
    async with httpx.AsyncClient(base_url=server.url) as client:
        response = await client.request(
            method, path, headers={"Authorization": f"Bearer {token}"}, **kw
        )
    return response


async def edit(sock: Ws, ref: str, pid: str, **fields: Any) -> dict[str, Any]:
    frame = {"type": "edit", "ref": ref, "project_id": pid, "op_id": str(uuid.uuid4()), **fields}
    return await sock.request(frame)


@pytest.mark.postgres
async def test_series_move_when_things_happen(pg_server: ServerProcess) -> None:
    """Joins, frames, applied/merged/conflicting edits, auth failures, generations, credits."""
    server = pg_server
    before = await scrape(server)
    missing = [name for name in SERIES if name.removesuffix("_total") not in before.families]
    assert not missing, f"series not exposed: {missing}"

    _, token = await signup(server.url, "Ann", f"ann-{uuid.uuid4().hex[:8]}@example.com")
    project = (await rest(server, "POST", "/api/projects", token, json={"name": "P"})).json()
    pid = project["id"]
    async with ws(server.url, token) as sock:
        await sock.expect("ready")
        joined = await sock.request({"type": "join", "ref": "j", "project_id": pid})
        assert joined["type"] == "joined"
        during = await scrape(server)
        assert during("moodboard_ws_open_sockets") == before("moodboard_ws_open_sockets") + 1
        room = await edit(sock, "r", pid, action="create", entity="room", data={"name": "Hall"})
        assert room["type"] == "ack"
        item = await edit(
            sock,
            "i",
            pid,
            action="create",
            entity="item",
            room_id=room["id"],
            data={"kind": "note", "x": 1, "y": 1},
        )
        assert item["type"] == "ack"
        moved = await edit(
            sock, "u1", pid, action="update", entity="item", id=item["id"],
            base_version=1, data={"x": 5},
        )  # fmt: skip
        merged = await edit(
            sock, "u2", pid, action="update", entity="item", id=item["id"],
            base_version=1, data={"y": 7},
        )  # fmt: skip
        conflict = await edit(
            sock, "u3", pid, action="update", entity="item", id=item["id"],
            base_version=1, data={"x": 9},
        )  # fmt: skip
        assert (moved["type"], merged["type"], merged.get("merged"), conflict["type"]) == (
            "ack",
            "ack",
            True,
            "conflict",
        )
        # Rate 1/s, burst 8, 6 frames spent: a burst of pings gets rate_limited errors.
        for n in range(8):
            await sock.send({"type": "ping", "ref": f"p{n}"})
        await sock.first(lambda f: f.get("code") == "rate_limited")
    after_socket = await scrape(server)

    bad = await rest(server, "GET", "/api/me", "not-a-real-token")
    assert bad.status_code == 401
    async with httpx.AsyncClient(base_url=server.url) as client:
        login = await client.post(
            "/api/auth/login", json={"email": "nobody@example.com", "password": PASSWORD}
        )
    assert login.status_code == 401
    queued = await rest(
        server,
        "POST",
        f"/api/projects/{pid}/generations",
        token,
        json={"room_id": room["id"], "prompt": "a red chair"},
    )
    assert queued.status_code == 202, queued.text
    with_queue = await scrape(server)
    canceled = await rest(server, "POST", f"/api/generations/{queued.json()['id']}/cancel", token)
    assert canceled.status_code == 200, canceled.text
    after = await scrape(server)

    def moved_by(
        name: str, earlier: Scrape = before, later: Scrape = after, **labels: str
    ) -> float:
        return later(name, **labels) - earlier(name, **labels)

    assert moved_by("moodboard_ws_joins_total", mode="snapshot") == 1
    assert moved_by("moodboard_ws_frames_received_total", type="join") == 1
    assert moved_by("moodboard_ws_frames_received_total", type="edit") == 5
    assert moved_by("moodboard_ws_frames_sent_total", type="conflict") == 1
    assert moved_by("moodboard_edits_total", outcome="applied") == 3
    assert moved_by("moodboard_edits_total", outcome="merged") == 1
    assert moved_by("moodboard_edits_total", outcome="conflict") == 1
    assert moved_by("moodboard_rate_limited_total", later=after_socket, scope="socket") >= 1
    assert after_socket("moodboard_ws_open_sockets") == before("moodboard_ws_open_sockets")
    assert moved_by("moodboard_fanout_seconds_count") >= 4  # each event crossed the bus
    assert moved_by("moodboard_auth_failures_total", kind="token") == 1
    assert moved_by("moodboard_auth_failures_total", kind="password") == 1
    assert with_queue("moodboard_generations", status="queued") == 1
    assert with_queue("moodboard_generation_oldest_queued_seconds") > 0
    assert after("moodboard_generations", status="queued") == 0
    assert moved_by("moodboard_generation_outcomes_total", status="canceled") == 1
    assert moved_by("moodboard_credits_total", reason="reserved") == 10
    assert moved_by("moodboard_credits_total", reason="refunded") == 10
    assert moved_by("moodboard_http_requests_total", method="GET", status="401") >= 1
    assert moved_by("moodboard_db_query_seconds_count", statement="update") >= 3
    assert after("moodboard_db_pool_connections") >= 1


@pytest.mark.postgres
async def test_listen_reconnect_is_counted(pg_server: ServerProcess) -> None:
    """Killing the LISTEN connection moves moodboard_listen_reconnects_total."""
    before = await scrape(pg_server)
    admin = await asyncpg.connect(PG_ADMIN_URL)
    try:
        killed = await admin.fetch(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname LIKE 'moodboard_metrics_%' AND query LIKE 'LISTEN%'"
        )
    finally:
        await admin.close()
    assert killed, "no LISTEN connection found"

    # The only outside sign of the reconnection is the counter itself: read it until
    # it moves (the listener's first retry comes after 0.1 s), for at most 15 s.
    name = "moodboard_listen_reconnects_total"
    for _ in range(150):
        if (await scrape(pg_server))(name) - before(name) >= 1:
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the listener did not reconnect within 15 s")


async def test_bus_reconnect_is_counted(tmp_path: Path) -> None:
    """Restarting Redis under a server moves moodboard_bus_reconnects_total."""
    if shutil.which("redis-server") is None:
        pytest.skip("needs redis-server to run a private Redis")
    port = free_port()
    env = server_env(f"sqlite:///{tmp_path / 'm.sqlite3'}", REDIS_URL=f"redis://127.0.0.1:{port}/0")
    async with private_redis(port) as first, running_server(env, tmp_path) as server:
        before = await scrape(server)
        first.terminate()
        await first.wait()
        async with private_redis(port):
            name = "moodboard_bus_reconnects_total"
            for _ in range(150):
                if (await scrape(server))(name) - before(name) >= 1:
                    return
                await asyncio.sleep(0.1)
            raise AssertionError("the bus did not reconnect within 15 s")
