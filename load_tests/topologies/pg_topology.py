"""Throwaway PostgreSQL topologies: a primary, a streaming replica, a PgBouncer.

Each runs on a free loopback port from a temp directory and is stopped by its
own pid (``postmaster.pid``, the PgBouncer process): the shared PostgreSQL on
5432 is never restarted. As root, PostgreSQL and PgBouncer run as the
``postgres`` user (neither runs as root), as scripts/pitr-drill.sh does.
A missing binary is named by ``pg_binaries_missing`` (the tests' wrapper in
tests/pg_topology.py skips loudly, and fails under ``CI=true``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg

from load_tests.chaos.topology import PGBIN, free_port, run_command

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
AS_ROOT = os.geteuid() == 0
WRITER = "moodboard.writer"


def pg_binaries_missing(*names: str) -> str | None:
    """Which of these programs (pgbouncer, initdb, pg_basebackup) are not installed, or None."""
    paths = {"pgbouncer": PGBOUNCER, **{n: str(PGBIN / n) for n in ("initdb", "pg_basebackup")}}
    missing = [name for name in names if not Path(paths[name]).is_file()]
    if not missing:
        return None
    return f"{', '.join(missing)} not installed (apt-get install pgbouncer postgresql)"


def _owned_by_postgres(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    if AS_ROOT:
        shutil.chown(path, "postgres")
    return path


@contextlib.contextmanager
def postgres_workdir() -> Iterator[Path]:
    """A temp directory the ``postgres`` user can reach (pytest's are root's); removed after."""
    path = Path(tempfile.mkdtemp(prefix="moodboard-pg-"))
    try:
        yield _owned_by_postgres(path)
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _as_postgres() -> list[str]:
    return ["runuser", "-u", "postgres", "--"] if AS_ROOT else []


class PgNode:
    """One PostgreSQL server of a throwaway topology (a primary, or a standby of one)."""

    def __init__(self, workdir: Path, name: str) -> None:
        self.dir = workdir / name
        self.log = workdir / f"{name}.log"
        self.port = free_port()

    def url(self, database: str = "moodboard") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _settings(self) -> str:
        return (
            f"listen_addresses = '127.0.0.1'\nport = {self.port}\n"
            f"unix_socket_directories = '{self.dir.parent}'\n"
            "wal_level = replica\nmax_wal_senders = 5\nhot_standby = on\n"
            "fsync = off\nfull_page_writes = off\n"
            "max_connections = 100\n"
        )

    async def init_primary(self) -> None:
        """initdb, start, and create the ``moodboard`` database."""
        _owned_by_postgres(self.dir.parent)
        await run_command(
            *_as_postgres(), str(PGBIN / "initdb"), "-D", str(self.dir), "-U", "postgres",
            "--auth=trust", "-E", "UTF8", "--no-sync",
        )  # fmt: skip
        with (self.dir / "postgresql.conf").open("a") as conf:
            conf.write(self._settings())
        await self.start()
        admin = await asyncpg.connect(self.url("postgres"))
        try:
            await admin.execute("CREATE DATABASE moodboard")
        finally:
            await admin.close()

    async def init_standby_of(self, primary: PgNode) -> None:
        """pg_basebackup of ``primary``, started as its streaming standby."""
        _owned_by_postgres(self.dir.parent)
        await run_command(
            *_as_postgres(), str(PGBIN / "pg_basebackup"), "-h", "127.0.0.1",
            "-p", str(primary.port), "-U", "postgres", "-D", str(self.dir),
            "-R", "-X", "stream", "--checkpoint=fast", "--no-sync",
        )  # fmt: skip
        with (self.dir / "postgresql.conf").open("a") as conf:
            conf.write(self._settings())
        await self.start()
        # Synchronous replication from now on: a commit is acked once the standby has
        # it, so a promoted standby holds every acked edit (docs/operations.md). Only
        # on the primary: promoted, the standby has no standby to wait for.
        admin = await asyncpg.connect(primary.url("postgres"))
        try:
            await admin.execute("ALTER SYSTEM SET synchronous_standby_names = '*'")
            await admin.execute("SELECT pg_reload_conf()")
        finally:
            await admin.close()

    async def start(self) -> None:
        await run_command(
            *_as_postgres(), str(PGBIN / "pg_ctl"), "-D", str(self.dir), "-l", str(self.log),
            "-w", "start",
        )  # fmt: skip

    def pid(self) -> int | None:
        pid_file = self.dir / "postmaster.pid"
        if not pid_file.exists():
            return None
        return int(pid_file.read_text().split()[0])

    async def stop(self, sig: signal.Signals = signal.SIGINT, timeout_s: float = 20.0) -> None:
        """Stop it by its pid: SIGINT a fast shutdown (the standby gets all WAL), SIGQUIT now."""
        pid = self.pid()
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        for _ in range(int(timeout_s * 20)):
            if not (self.dir / "postmaster.pid").exists():
                return
            await asyncio.sleep(0.05)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGQUIT)

    async def promote(self) -> None:
        connection = await asyncpg.connect(self.url("postgres"))
        try:
            assert await connection.fetchval("SELECT pg_promote(wait => true)")
        finally:
            await connection.close()


@asynccontextmanager
async def primary_and_standby() -> AsyncIterator[tuple[PgNode, PgNode]]:
    """A throwaway primary with a synchronous streaming standby; both stopped at the end."""
    with postgres_workdir() as workdir:
        primary, standby = PgNode(workdir, "primary"), PgNode(workdir, "standby")
        try:
            await primary.init_primary()
            await standby.init_standby_of(primary)
            yield primary, standby
        finally:
            await standby.stop(signal.SIGQUIT)
            await primary.stop(signal.SIGQUIT)


class PgBouncer:
    """A pgbouncer of our own in transaction mode; its ini, log and pid in ``workdir``.

    ``databases`` maps an entry name to its target (``host=... port=... dbname=...``);
    each entry sets ``moodboard.writer`` on its server connections (``connect_query``)
    unless ``writer=False``, as docs/operations.md says to.
    """

    def __init__(self, workdir: Path) -> None:
        self.dir = _owned_by_postgres(workdir / "pgbouncer")
        self.port = free_port()
        self.process: asyncio.subprocess.Process | None = None

    def url(self, entry: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{entry}"

    def _ini(self, databases: dict[str, tuple[str, bool]]) -> str:
        lines = ["[databases]"]
        for entry, (target, writer) in databases.items():
            query = f" connect_query='SET {WRITER} = ''server'''" if writer else ""
            lines.append(f"{entry} = {target}{query}")
        lines += [
            "[pgbouncer]",
            "listen_addr = 127.0.0.1",
            f"listen_port = {self.port}",
            "unix_socket_dir =",
            "auth_type = trust",
            f"auth_file = {self.dir / 'users.txt'}",
            "pool_mode = transaction",
            f"ignore_startup_parameters = {WRITER}",
            "max_client_conn = 500",
            "default_pool_size = 20",
            f"logfile = {self.dir / 'pgbouncer.log'}",
        ]
        return "\n".join(lines) + "\n"

    async def start(self, databases: dict[str, tuple[str, bool]]) -> None:
        (self.dir / "users.txt").write_text('"postgres" ""\n')
        ini = self.dir / "pgbouncer.ini"
        ini.write_text(self._ini(databases))
        with (self.dir / "stderr").open("wb") as stderr:
            self.process = await asyncio.create_subprocess_exec(
                # PgBouncer's own -u, not the user= of subprocess: uvloop (the bench) has none.
                PGBOUNCER, *(["-u", "postgres"] if AS_ROOT else []), str(ini),
                stdout=asyncio.subprocess.DEVNULL, stderr=stderr,
            )  # fmt: skip
        for _ in range(100):
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.close()
                return
            except OSError:
                if self.process.returncode is not None:
                    break
                await asyncio.sleep(0.05)
        log = "".join(
            path.read_text(errors="replace")
            for path in (self.dir / "pgbouncer.log", self.dir / "stderr")
            if path.exists()
        )
        raise AssertionError(f"pgbouncer did not start:\n{log}")

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), 10)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()


@asynccontextmanager
async def pgbouncer(databases: dict[str, tuple[str, bool]]) -> AsyncIterator[PgBouncer]:
    """A running PgBouncer in front of ``databases``; stopped by its pid at the end."""
    with postgres_workdir() as workdir:
        bouncer = PgBouncer(workdir)
        try:
            await bouncer.start(databases)
            yield bouncer
        finally:
            await bouncer.stop()
