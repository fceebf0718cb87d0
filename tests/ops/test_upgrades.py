"""Upgrades with a way back (issue 23 item 7; docs/operations.md "Upgrades and rollbacks").

- Migrating is a release step: the console commands and ``serve --no-migrate``
  refuse a database with pending migrations (exit 3) and change nothing;
  ``--migrate`` opts in. A database a newer release migrated is named in the
  log (``migrations.database_newer``).
- Rolling back one release works while the new release's migrations are
  expand-only: the previous release's code (``git archive`` of
  :data:`PREVIOUS_RELEASE`, run with this test's interpreter and
  dependencies) serves a database this code migrated and wrote to, a join and
  an edit through its socket included; then this code serves it again.
"""

from __future__ import annotations

import asyncio
import io
import sqlite3
import subprocess
import sys
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import structlog
from piccolo.apps.migrations.tables import Migration

from server.access.admin import new_service_account
from server.db import piccolo_conf
from server.db.database import Database
from server.db.migrate import migrate, schema_state
from server.settings import parse_database_url
from tests.conftest import IN_CI, create_pg_database, drop_pg_database, require
from tests.servers import running_server, server_env
from tests.wsclient import signup, ws

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
# The release before this one: main before issue 23's schema change (the service-account
# key rotation). Move it forward at each release that adds a migration (docs/operations.md).
PREVIOUS_RELEASE = "2bf24975e8aa3dada0cfd9692bc9133698e829df"
FUTURE_MIGRATION = "2099-01-01T00:00:00:000000"


@pytest.fixture(autouse=True)
def _migration_engine_restored() -> Iterator[None]:
    """These tests migrate their own databases in-process, which points Piccolo's migration
    runner at them: point it back at what the rest of the session uses afterwards."""
    saved = (piccolo_conf.__dict__.get("DB"), Migration._meta.db)
    yield
    piccolo_conf.__dict__["DB"], Migration._meta.db = saved


async def _cli(env: dict[str, str], *args: str, cwd: Path | None = None) -> tuple[int, str]:
    """Run ``moodboard ARGS`` with ``env``; its exit status and its output (both streams)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "server.cli", *args, env=env, cwd=cwd,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(errors="replace")


async def test_commands_refuse_pending_migrations_until_the_release_step(tmp_path: Path) -> None:
    """On a new database create-admin and serve --no-migrate exit 3 and create no table;
    ``--migrate`` opts in. A migration this code does not know (a newer release's) is logged
    by ``migrate``, and the commands go on."""
    path = tmp_path / "m.sqlite3"
    database = parse_database_url(f"sqlite:///{path}")
    env = server_env(database.url)
    admin = ("create-admin", "--email", "ops@example.com", "--password", "a long passphrase")
    refusals = await asyncio.gather(
        _cli(env, *admin), _cli(env, "serve", "--no-migrate", "--port", "0")
    )
    for code, out in refusals:
        assert code == 3, out
        assert "pending migration(s)" in out
        assert "moodboard migrate" in out
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT name FROM sqlite_master").fetchall() == []

    code, out = await _cli(env, *admin, "--migrate")
    assert code == 0, out
    assert "admin created" in out
    assert (await schema_state(database)).pending == []

    with sqlite3.connect(path) as db:  # as if a newer release had migrated it
        db.execute(
            "INSERT INTO migration (name, app_name, ran_on) VALUES (?, 'moodboard', '2099-01-01')",
            (FUTURE_MIGRATION,),
        )
    assert (await schema_state(database)).unknown == [FUTURE_MIGRATION]
    with structlog.testing.capture_logs() as records:
        await migrate(database)
    (newer,) = [r for r in records if r["event"] == "migrations.database_newer"]
    assert newer["unknown"] == [FUTURE_MIGRATION]
    code, out = await _cli(env, "create-service-account", "--name", "w")
    assert code == 0, out


def _extract_previous_release(target: Path) -> None:
    """The previous release's code (server/, piccolo_migrations/) from git, into ``target``."""
    try:
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", PREVIOUS_RELEASE, "server", "piccolo_migrations"],
            capture_output=True,
            check=True,
            timeout=60,
        ).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        message = f"needs git and the commit {PREVIOUS_RELEASE} in the checkout's history: {exc}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")


async def test_the_previous_release_serves_this_schema(tmp_path: Path) -> None:
    """This code migrates and rotates a worker key; the previous release then serves the
    database (join, edit, event; the current worker key claims); this code serves it again."""
    require("PostgreSQL")
    previous = tmp_path / "previous"
    _extract_previous_release(previous)
    url = await create_pg_database("moodboard_rollback")
    try:
        env = server_env(url)
        await migrate(parse_database_url(url))  # the release step
        async with Database.of(parse_database_url(url), pool_size=1) as database:
            created = await new_service_account(
                database.engine, name="renderer", created_by=None, ip=None
            )
        first_key, account_id = created["key"], created["id"]
        code, out = await _cli(env, "rotate-service-account", "--id", account_id)
        assert code == 0, out
        current_key = next(x for x in out.splitlines() if x.startswith("key ")).rsplit(" ", 1)[1]

        # Roll back: the previous release's code on this schema.
        old_env = {**env, "PYTHONPATH": str(previous)}
        async with running_server(old_env, tmp_path, cwd=previous) as old:
            rotate = await _post(old.url, f"/api/admin/service-accounts/{account_id}/rotate")
            assert rotate.status_code in (404, 405), "not the previous release's code"
            _, token = await signup(old.url, "Owner", f"o-{uuid.uuid4().hex[:8]}@example.com")
            project = (await _post(old.url, "/api/projects", token, {"name": "Flat"})).json()
            async with ws(old.url, token) as sock:
                await sock.expect("ready")
                joined = await sock.request(
                    {"type": "join", "ref": "j", "project_id": project["id"]}
                )
                assert joined["type"] == "joined", joined
                edit = {
                    "type": "edit", "ref": "e1", "project_id": project["id"],
                    "op_id": str(uuid.uuid4()), "action": "create", "entity": "room",
                    "data": {"name": "Kitchen", "room_type": "kitchen"},
                }  # fmt: skip
                ack = await sock.request(edit)
                assert (ack["type"], ack["seq"]) == ("ack", joined["seq"] + 1), ack
                event = await sock.expect("event")
                assert event["kind"] == "room.created"
            claim = {"worker_id": "w"}
            assert (
                await _post(old.url, "/api/worker/claim", current_key, claim)
            ).status_code == 204
            # The previous release knows no previous key: a worker not yet switched is refused.
            assert (await _post(old.url, "/api/worker/claim", first_key, claim)).status_code == 401

        # Roll forward again: nothing to migrate, the old release's writes are there.
        async with running_server(env, tmp_path) as new:
            async with ws(new.url, token) as sock:
                await sock.expect("ready")
                joined = await sock.request(
                    {"type": "join", "ref": "j", "project_id": project["id"]}
                )
                rooms = [room["name"] for room in joined["snapshot"]["rooms"]]
                assert rooms == ["Kitchen"], joined
            for key in (current_key, first_key):  # the rotation's grace holds again
                assert (await _post(new.url, "/api/worker/claim", key, claim)).status_code == 204
        assert "migrations.database_newer" not in new.log()
    finally:
        await drop_pg_database(url)


async def _post(
    base_url: str, path: str, token: str | None = None, body: object = None
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        return await client.post(path, json=body if body is not None else {}, headers=headers)
