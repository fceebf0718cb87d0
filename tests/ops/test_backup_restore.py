"""``moodboard backup`` / ``moodboard restore`` on both engines: the restored database is the same.

A real server fills a database (users, a member, rooms, items, edits,
generations, credits, the event log); ``moodboard backup`` runs while it
serves; ``moodboard restore`` puts the backup into a fresh database. Every
table (and, on PostgreSQL, every sequence) must be identical, row for row,
and a client that saw part of the log resumes against a server started on
the restored database with exactly the events it missed.
"""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
import sys
import uuid
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from server.ops.backup import backup_name, list_backups
from tests.conftest import create_pg_database, drop_pg_database, require
from tests.servers import ServerProcess, running_server, server_env
from tests.wsclient import Ws, signup, ws

pytestmark = pytest.mark.e2e


async def cli(env: Mapping[str, str], *args: str) -> tuple[int, str, str]:
    """Run ``moodboard <args>``; (exit status, stdout, stderr)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "server.cli",
        *args,
        env=dict(env),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@pytest.fixture(params=["sqlite", "postgres"])
async def databases(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[str, str]]:
    """(source URL, restore target URL): fresh ones; the target empty (or absent)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'source.sqlite3'}", f"sqlite:///{tmp_path / 'r.sqlite3'}"
        return
    require("PostgreSQL")
    source = await create_pg_database("moodboard_backup_src")
    target = await create_pg_database("moodboard_backup_dst")
    try:
        yield source, target
    finally:
        await drop_pg_database(source)
        await drop_pg_database(target)


async def fingerprint(url: str) -> dict[str, tuple[int, str]]:
    """Per table: (row count, SHA-256 of its sorted rows); on PostgreSQL, sequences too."""
    result: dict[str, tuple[int, str]] = {}
    if url.startswith("sqlite"):
        connection = sqlite3.connect(url.removeprefix("sqlite:///"))
        try:
            names = [
                row[0]
                for row in connection.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
                )
            ]
            for name in names:
                rows = sorted(repr(r) for r in connection.execute(f'SELECT * FROM "{name}"'))
                result[name] = (len(rows), hashlib.sha256("\n".join(rows).encode()).hexdigest())
        finally:
            connection.close()
        return result
    connection = await asyncpg.connect(url)
    try:
        names = [
            row["tablename"]
            for row in await connection.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
            )
        ]
        for name in names:
            rows = sorted(r[0] for r in await connection.fetch(f'SELECT t::text FROM "{name}" t'))
            result[name] = (len(rows), hashlib.sha256("\n".join(rows).encode()).hexdigest())
        for row in await connection.fetch(
            "SELECT sequencename, last_value FROM pg_sequences WHERE schemaname = 'public'"
        ):
            result[f"sequence {row['sequencename']}"] = (int(row["last_value"] or 0), "")
    finally:
        await connection.close()
    return result


async def call(server: ServerProcess, method: str, path: str, token: str, **kw: Any) -> Any:
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        response = await client.request(
            method, path, headers={"Authorization": f"Bearer {token}"}, **kw
        )
    assert response.status_code < 300, response.text
    return response.json() if response.content else None


async def edit(sock: Ws, pid: str, **fields: Any) -> dict[str, Any]:
    ref = uuid.uuid4().hex[:8]
    frame = {"type": "edit", "ref": ref, "project_id": pid, "op_id": str(uuid.uuid4()), **fields}
    reply = await sock.request(frame)
    assert reply["type"] == "ack", reply
    return reply


async def populate(server: ServerProcess) -> tuple[str, str, int, list[dict[str, Any]]]:
    """Fill the database; (Ann's token, project id, the seq Ann saw, the events after it)."""
    suffix = uuid.uuid4().hex[:8]
    _, ann = await signup(server.url, "Ann", f"ann-{suffix}@example.com")
    _, bob = await signup(server.url, "Bob", f"bob-{suffix}@example.com")
    project = await call(server, "POST", "/api/projects", ann, json={"name": "Flat"})
    pid = project["id"]
    await call(
        server,
        "POST",
        f"/api/projects/{pid}/members",
        ann,
        json={"email": f"bob-{suffix}@example.com", "role": "editor"},
    )
    async with ws(server.url, ann) as sock:
        await sock.expect("ready")
        joined = await sock.request({"type": "join", "ref": "j", "project_id": pid})
        room = await edit(sock, pid, action="create", entity="room", data={"name": "Hall"})
        await edit(sock, pid, action="create", entity="room", data={"name": "Kitchen"})
        item = await edit(
            sock,
            pid,
            action="create",
            entity="item",
            room_id=room["id"],
            data={"kind": "note", "x": 1, "data": {"text": "héllo"}},
        )
        await edit(
            sock, pid, action="update", entity="item", id=item["id"], base_version=1, data={"x": 2}
        )
        seen = (await sock.first(lambda f: f.get("type") == "event" and f["seq"] >= 4))["seq"]
        assert joined["seq"] < seen
    # What Ann misses: Bob's edits and two generations (one canceled: a refund).
    async with ws(server.url, bob) as sock:
        await sock.expect("ready")
        await sock.request({"type": "join", "ref": "j", "project_id": pid})
        await edit(
            sock,
            pid,
            action="create",
            entity="item",
            room_id=room["id"],
            data={"kind": "color", "data": {"hex": "#aa0000"}},
        )
        await edit(
            sock, pid, action="update", entity="item", id=item["id"], base_version=2, data={"y": 5}
        )
    for prompt in ("a red chair", "a blue lamp"):
        queued = await call(
            server,
            "POST",
            f"/api/projects/{pid}/generations",
            bob,
            json={"room_id": room["id"], "prompt": prompt},
        )
    await call(server, "POST", f"/api/generations/{queued['id']}/cancel", bob)
    async with ws(server.url, ann) as sock:
        await sock.expect("ready")
        replay = await sock.request(
            {"type": "join", "ref": "j", "project_id": pid, "last_seq": seen}
        )
        assert replay["mode"] == "replay"
        missed = [await sock.expect("event") for _ in range(replay["seq"] - seen)]
    assert len(missed) >= 6
    return ann, pid, seen, missed


async def test_backup_restore_gives_an_identical_database(
    databases: tuple[str, str], tmp_path: Path
) -> None:
    """Every table and the event log are identical after restore; a client resumes from it."""
    source, target = databases
    backups = tmp_path / "backups"
    backups.mkdir()
    kind = "sqlite" if source.startswith("sqlite") else "postgres"
    # Yesterday's and a month-old backup: retention keeps the first, deletes the second.
    now = datetime.now(UTC)
    yesterday = backups / backup_name(kind, now - timedelta(days=1))
    ancient = backups / backup_name(kind, now - timedelta(days=60))
    for old in (yesterday, ancient):
        old.write_bytes(b"an older backup")
    (backups / "notes.txt").write_text("not a backup: left alone")

    async with running_server(server_env(source), tmp_path) as server:
        ann, pid, seen, missed = await populate(server)
        status, out, err = await cli(
            server_env(source),
            "backup",
            f"--dir={backups}",
            "--keep-daily=7",
            "--keep-weekly=0",
        )  # while the server runs
        assert status == 0, err
        expected = await fingerprint(source)
    assert "backup written" in out
    assert f"backup pruned: {ancient}" in out
    made = [b.path for b in list_backups(backups)]
    assert len(made) == 2
    assert yesterday in made
    assert not ancient.exists()
    assert (backups / "notes.txt").exists()
    newest = made[-1]
    assert newest != yesterday

    status, out, err = await cli(server_env(target), "restore", str(newest))
    assert status == 0, err
    restored = await fingerprint(target)
    assert set(restored) == set(expected)
    for table in ("app_user", "project", "room", "item", "event", "generation", "credit_ledger"):
        assert expected[table][0] > 0, f"{table} was not populated"
    differing = sorted(name for name in expected if restored[name] != expected[name])
    assert not differing, f"tables differ after restore: {differing}"

    # A server on the restored database: Ann's session still works, she resumes from
    # the seq she saw and gets exactly the events she missed, and writing goes on.
    async with (
        running_server(server_env(target), tmp_path) as server,
        ws(server.url, ann) as sock,
    ):
        await sock.expect("ready")
        joined = await sock.request(
            {"type": "join", "ref": "j", "project_id": pid, "last_seq": seen}
        )
        assert (joined["type"], joined["mode"]) == ("joined", "replay")
        replayed = [await sock.expect("event") for _ in range(joined["seq"] - seen)]
        assert replayed == missed
        room = await edit(sock, pid, action="create", entity="room", data={"name": "Attic"})
        assert room["seq"] == joined["seq"] + 1


async def test_restore_refuses_a_database_that_holds_data(
    databases: tuple[str, str], tmp_path: Path
) -> None:
    """Restoring over a non-empty database is refused with a clear message; nothing changes."""
    source, _ = databases
    env = server_env(source)
    status, _, err = await cli(env, "migrate")
    assert status == 0, err
    status, _, err = await cli(env, "backup", f"--dir={tmp_path / 'b'}")
    assert status == 0, err
    before = await fingerprint(source)
    backup = list_backups(tmp_path / "b")[0].path
    status, _, err = await cli(env, "restore", str(backup))
    assert status == 1
    assert "restore into a new" in err
    assert "Traceback" not in err
    assert await fingerprint(source) == before
    status, _, err = await cli(env, "restore", str(tmp_path / "missing.dump"))
    assert (status, "no backup file" in err) == (1, True)
