"""``moodboard serve`` as a real process: embedded start, concurrent migration, clean stop."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import asyncpg
import httpx
import pytest

from server.db.piccolo_app import migrations_folder
from tests.conftest import create_pg_database, drop_pg_database
from tests.servers import running_server, server_env

pytestmark = pytest.mark.e2e
MIGRATIONS = sorted(p.stem for p in migrations_folder().glob("moodboard_*.py"))


async def test_embedded_mode_serves_and_stops_on_sigterm(tmp_path: Path) -> None:
    """With only a SQLite path: serve migrates, answers health checks, exits 0 on SIGTERM."""
    env = server_env("sqlite:///data/moodboard.sqlite3")
    env.pop("MOODBOARD_SECRET_KEY")  # embedded mode needs none
    async with running_server(env, tmp_path, cwd=tmp_path) as server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            assert (await client.get("/healthz")).json() == {"status": "ok"}
            ready = (await client.get("/readyz")).json()
            assert ready["checks"] == {"database": "ok", "redis": "not configured"}
        assert (tmp_path / "data" / "moodboard.sqlite3").exists()
        assert await server.stop() == 0
    assert "settings.secret_key_generated" in server.log()


async def test_three_instances_starting_at_once_migrate_once(
    pg_url: str, redis_url: str, tmp_path: Path
) -> None:
    """Three `serve` started together on a new database: each migration runs once, all serve."""
    url = await create_pg_database("moodboard_race")
    try:
        env = server_env(url, REDIS_URL=redis_url)
        async with (
            running_server(env, tmp_path, wait=False) as a,
            running_server(env, tmp_path, wait=False) as b,
            running_server(env, tmp_path, wait=False) as c,
        ):
            await asyncio.gather(a.wait_ready(), b.wait_ready(), c.wait_ready())
            conn = await asyncpg.connect(url)
            try:
                rows = await conn.fetch("SELECT name FROM migration ORDER BY name")
            finally:
                await conn.close()
            migrations = MIGRATIONS
            assert len(rows) == len(migrations) >= 2
            assert len({row["name"] for row in rows}) == len(rows)
            async with httpx.AsyncClient() as client:
                for server in (a, b, c):
                    assert (await client.get(f"{server.url}/readyz")).status_code == 200
    finally:
        await drop_pg_database(url)


@pytest.mark.parametrize("command", ["serve", "migrate", "create-admin"])
def test_every_command_has_help(command: str) -> None:
    """`moodboard <command> --help` explains the command and exits 0."""
    import subprocess

    result = subprocess.run(
        [sys.executable, "-m", "server.cli", command, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0
    assert result.stdout.startswith(f"usage: moodboard {command}")


def test_create_admin_command(tmp_path: Path) -> None:
    """`moodboard create-admin` creates an admin on a new database, then promotes idempotently."""
    import subprocess

    env = server_env(f"sqlite:///{tmp_path / 'm.sqlite3'}")
    cmd = [sys.executable, "-m", "server.cli", "create-admin", "--email", "Op@Example.com"]
    first = subprocess.run(
        [*cmd, "--password", "a long passphrase", "--migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert first.returncode == 0, first.stderr
    assert "admin created: op@example.com" in first.stdout
    again = subprocess.run(
        [*cmd, "--password", "ignored"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert again.returncode == 0, again.stderr
    assert "admin promoted existing user: op@example.com" in again.stdout
    weak = subprocess.run(
        [
            sys.executable,
            "-m",
            "server.cli",
            "create-admin",
            "--email",
            "x@example.com",
            "--password",
            "short",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert weak.returncode == 1
    assert "password: must be at least 10 characters" in weak.stderr
