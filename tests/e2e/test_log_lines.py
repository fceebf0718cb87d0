"""What a real ``moodboard serve`` writes: one structured record per line, none per socket."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from server.db.piccolo_app import migrations_folder
from tests.servers import running_server, server_env
from tests.wsclient import signup, ws

pytestmark = pytest.mark.e2e
SOCKETS = 5
PER_SOCKET_WORDS = ("connection open", "connection closed", '"WebSocket ', "/ws")


def records_of(output: str) -> list[dict[str, Any]]:
    """Every line of ``output`` as a JSON object (fails on the first line that is not one)."""
    records = []
    for line in output.splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            pytest.fail(f"not a JSON record: {line!r}")
    return records


async def test_every_line_is_one_json_record_and_no_socket_writes_an_info_line(
    tmp_path: Path,
) -> None:
    """A first start (migrations), sockets, /metrics and a stop, in JSON mode: all JSON, quiet.

    Piccolo's migration runner prints emoji lines and uvicorn/websockets log a
    line or two per socket at info; the server must turn them into records
    (one for the migrations) and debug lines.
    """
    env = server_env(f"sqlite:///{tmp_path / 'moodboard.sqlite3'}")
    async with running_server(env, tmp_path) as server:
        _, token = await signup(server.url, "Ann", "ann@example.com")
        for _ in range(SOCKETS):
            async with ws(server.url, token) as sock:
                assert (await sock.recv())["type"] == "ready"
        async with httpx.AsyncClient(base_url=server.url) as client:
            exposition = (await client.get("/metrics")).text
        assert await server.stop() == 0
    records = records_of(server.log())

    per_socket = [
        r
        for r in records
        if r["level"] != "debug" and any(word in r["event"] for word in PER_SOCKET_WORDS)
    ]
    assert per_socket == []
    migrations = sorted(p.stem for p in migrations_folder().glob("moodboard_*.py"))
    [done] = [r for r in records if r["event"] == "migrations.done"]
    assert len(done["applied"]) == len(migrations) >= 2

    # The transport fast paths are on with the locked libraries, and say so once.
    [fast] = [r for r in records if r["event"] == "transport.fast_paths"]
    assert (fast["level"], fast["direct_write"], fast["fast_upgrade"]) == ("info", True, True)
    gauge = {
        sample.labels["path"]: sample.value
        for family in text_string_to_metric_families(exposition)
        if family.name == "moodboard_transport_fast_path"
        for sample in family.samples
    }
    assert gauge == {"direct_write": 1.0, "fast_upgrade": 1.0}
