"""The embedded database's files are readable by their owner only (0600), whatever the umask.

Issue 19 item 8: the SQLite file (password hashes, session hashes, every
project) was created 0644, readable by every local user. Now it is created
0600, its WAL and shared-memory files follow it, and an existing file that
others could read is narrowed at start.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from server.db.database import Database
from server.db.migrate import migrate
from server.settings import parse_database_url


@pytest.fixture
def lax_umask() -> Iterator[None]:
    """A umask that lets every new file be world-readable, as many systems have."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.usefixtures("lax_umask")
async def test_a_new_database_and_its_journal_are_owner_only(tmp_path: Path) -> None:
    """Migrated and written to, the database file and its -wal/-shm are 0600."""
    url = parse_database_url(f"sqlite:///{tmp_path / 'data' / 'm.sqlite3'}")
    await migrate(url)
    async with Database.of(url, pool_size=1) as database:
        await database.engine.run_ddl("CREATE TABLE probe (x INTEGER)")
        # The data files; the empty lock file beside them (migrate.py) holds nothing.
        files = sorted(p for p in (tmp_path / "data").iterdir() if "lock" not in p.name)
        assert {p.name for p in files} >= {"m.sqlite3"}, files
        for path in files:
            assert _mode(path) == 0o600, (path.name, oct(_mode(path)))


@pytest.mark.usefixtures("lax_umask")
async def test_an_existing_world_readable_database_is_narrowed(tmp_path: Path) -> None:
    """A database file left 0644 by an older version is 0600 once the server opens it."""
    path = tmp_path / "m.sqlite3"
    url = parse_database_url(f"sqlite:///{path}")
    await migrate(url)
    path.chmod(0o644)
    async with Database.of(url, pool_size=1):
        assert _mode(path) == 0o600
