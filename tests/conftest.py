"""Shared fixtures: a fresh PostgreSQL database and a SQLite file per test run.

PostgreSQL and Redis are real servers, found through MOODBOARD_TEST_DATABASE_URL
and MOODBOARD_TEST_REDIS_URL (default: the local ones). When one is missing
its tests are skipped with one loud line in the summary, except under CI=true,
where a missing service fails the run.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
import redis.asyncio as aioredis

from server.db.database import Database
from server.db.engine import bind_tables
from server.db.migrate import migrate
from server.db.tables import TABLES
from server.settings import parse_database_url

PG_ADMIN_URL = os.environ.get(
    "MOODBOARD_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("MOODBOARD_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
IN_CI = os.environ.get("CI", "").lower() == "true"
ENGINES = ("sqlite", "postgres")

_missing: dict[str, str] = {}


def _probe_postgres() -> str | None:
    async def probe() -> None:
        conn = await asyncpg.connect(PG_ADMIN_URL, timeout=3)
        await conn.close()

    try:
        asyncio.run(probe())
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def _probe_redis() -> str | None:
    async def probe() -> None:
        client = aioredis.from_url(REDIS_URL, socket_connect_timeout=3)
        try:
            await client.ping()
        finally:
            await client.aclose()

    try:
        asyncio.run(probe())
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def pytest_sessionstart(session: pytest.Session) -> None:
    for name, probe in (("PostgreSQL", _probe_postgres), ("Redis", _probe_redis)):
        problem = probe()
        if problem is not None:
            _missing[name] = problem
    if _missing and IN_CI:
        raise pytest.UsageError(
            "CI=true but a service the tests need is missing: "
            + "; ".join(f"{k} ({v})" for k, v in _missing.items())
        )


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for name, problem in _missing.items():
        terminalreporter.write_line(
            f"!!! {name} NOT AVAILABLE ({problem}): its tests were SKIPPED !!!",
            red=True,
            bold=True,
        )


_leaks_of_workers: list[str] = []  # what the xdist workers' scans found (controller only)
_logs_of_workers = 0


@pytest.hookimpl(optionalhook=True)  # an xdist hook: absent with -p no:xdist
def pytest_testnodedown(node: Any, error: Any) -> None:
    """An xdist worker ended: keep what its log scan found (its ``workeroutput``)."""
    global _logs_of_workers
    output = getattr(node, "workeroutput", {})
    _leaks_of_workers.extend(output.get("log_leaks", []))
    _logs_of_workers += output.get("logs_scanned", 0)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run when any server or worker log of it holds one of our tokens.

    Under xdist each worker scans the logs of the processes it started and hands
    what it found to the controller, which reports and fails the run.
    """
    from tests.log_scan import LOGS, leaks

    found = leaks()
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: the controller reports
        workeroutput["log_leaks"] = found
        workeroutput["logs_scanned"] = len(LOGS)
        return
    found += _leaks_of_workers
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        scanned = len(LOGS) + _logs_of_workers
        reporter.write_line(f"log scan: {scanned} server and worker logs, {len(found)} tokens")
    if found:
        if reporter is not None:
            for line in found[:20]:
                reporter.write_line(f"TOKEN IN A LOG: {line}", red=True, bold=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def require(service: str) -> None:
    """Skip the calling test when ``service`` is not running (outside CI)."""
    if service in _missing:
        pytest.skip(f"{service} is not available: {_missing[service]}")


def free_port() -> int:
    """A TCP port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def with_database(url: str, name: str) -> str:
    """``url`` with its database name replaced by ``name``."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


async def create_pg_database(prefix: str = "moodboard_test") -> str:
    """Create an empty PostgreSQL database; returns its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return with_database(PG_ADMIN_URL, name)


async def drop_pg_database(url: str) -> None:
    name = urlsplit(url).path.lstrip("/")
    conn = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def redis_url() -> str:
    require("Redis")
    return REDIS_URL


@pytest.fixture(scope="session")
async def pg_url() -> AsyncIterator[str]:
    """A PostgreSQL database of this test run, migrated; dropped at the end."""
    require("PostgreSQL")
    url = await create_pg_database()
    try:
        await migrate(parse_database_url(url))
        yield url
    finally:
        await drop_pg_database(url)


@pytest.fixture(scope="session")
async def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A SQLite database file of this test run, migrated."""
    path: Path = tmp_path_factory.mktemp("sqlite") / "moodboard.sqlite3"
    url = f"sqlite:///{path}"
    await migrate(parse_database_url(url))
    return url


@pytest.fixture(params=ENGINES)
def database_url(request: pytest.FixtureRequest) -> str:
    """The URL of a migrated database, once per engine."""
    fixture = "pg_url" if request.param == "postgres" else "sqlite_url"
    url: str = request.getfixturevalue(fixture)
    return url


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    """An open Database with every table bound to its engine; tables emptied afterwards."""
    async with Database.of(parse_database_url(database_url), pool_size=4) as db:
        try:
            yield db
        finally:
            bind_tables(db.engine)
            await _empty_tables(db.engine)


@pytest.fixture
def engine(database: Database) -> Any:
    """The engine of this test's ``database``."""
    return database.engine


async def _empty_tables(db: Any) -> None:
    names = ", ".join(f'"{t._meta.tablename}"' for t in TABLES)
    if db.engine_type == "postgres":
        await db.run_ddl(f"TRUNCATE {names} CASCADE")
    else:
        for table in reversed(TABLES):
            await db.run_ddl(f'DELETE FROM "{table._meta.tablename}"')


@pytest.fixture
def project_root() -> Iterator[Path]:
    return Path(__file__).resolve().parents[1]
