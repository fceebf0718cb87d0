"""``moodboard backup`` and ``moodboard restore`` (docs/operations.md "Backup and recovery").

PostgreSQL: ``pg_dump --format=custom`` (a consistent snapshot while the
server keeps serving) and ``pg_restore`` into an empty database. SQLite: the
online backup API of ``sqlite3`` (consistent under WAL, while the server
writes), and the same API to copy a backup into a new file.

A backup is written under a ``.partial`` name and renamed when complete, so
the directory never holds half a backup under a real name; a failed restore
leaves the target as it was (one transaction on PostgreSQL, a new file
renamed into place on SQLite). Passwords never appear on a command line:
``pg_dump`` gets the URL without it and the password through ``PGPASSWORD``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import sqlite3
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit

import asyncpg

from server.ops.backup_policy import to_keep
from server.settings import DatabaseKind, DatabaseUrl

STAMP = "%Y%m%dT%H%M%SZ"
SUFFIXES: dict[DatabaseKind, str] = {"postgres": ".dump", "sqlite": ".sqlite3"}
_NAME = re.compile(r"^moodboard-(\d{8}T\d{6}Z)(\.dump|\.sqlite3)$")


class BackupError(Exception):
    """A backup or restore could not be done; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class Backup:
    """One backup file of the directory and when it was taken."""

    path: Path
    taken: datetime
    kind: DatabaseKind


def backup_name(kind: DatabaseKind, taken: datetime) -> str:
    return f"moodboard-{taken.astimezone(UTC).strftime(STAMP)}{SUFFIXES[kind]}"


def parse_backup(path: Path) -> Backup | None:
    """The backup a file name describes, or None for any other file."""
    match = _NAME.match(path.name)
    if match is None:
        return None
    taken = datetime.strptime(match.group(1), STAMP).replace(tzinfo=UTC)
    return Backup(path, taken, "postgres" if match.group(2) == ".dump" else "sqlite")


def list_backups(directory: Path) -> list[Backup]:
    """The directory's backups, oldest first (other files are ignored)."""
    if not directory.is_dir():
        return []
    found = (parse_backup(path) for path in directory.iterdir() if path.is_file())
    return sorted((b for b in found if b is not None), key=lambda b: b.taken)


def _tool(name: str, pg_bin: str | None) -> str:
    if pg_bin is not None:
        candidate = Path(pg_bin) / name
        if candidate.is_file():
            return str(candidate)
        raise BackupError(f"{candidate} does not exist")
    found = shutil.which(name)
    if found is None:
        raise BackupError(f"{name} not found on PATH: install the PostgreSQL client or --pg-bin")
    return found


def _libpq(database: DatabaseUrl) -> tuple[str, dict[str, str]]:
    """The direct URL without its password, and the environment that carries the password.

    The direct session URL (MOODBOARD_DATABASE_LISTEN_URL when set): pg_dump and
    pg_restore set session state a transaction-mode pooler would leak.
    """
    url = database.session_url
    parts = urlsplit(url)
    env = dict(os.environ)
    if parts.password is None:
        return url, env
    env["PGPASSWORD"] = unquote(parts.password)
    netloc = parts.netloc.replace(f":{parts.password}@", "@", 1)
    return parts._replace(netloc=netloc).geturl(), env


def _run(command: Sequence[str], env: dict[str, str]) -> None:
    result = subprocess.run(  # noqa: S603 - fixed tools, arguments are ours
        command, env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise BackupError(f"{Path(command[0]).name} failed: {result.stderr.strip()[-2000:]}")


def take_backup(
    database: DatabaseUrl,
    directory: Path,
    *,
    now: datetime | None = None,
    pg_bin: str | None = None,
) -> Backup:
    """Write one backup of ``database`` into ``directory``; returns it."""
    taken = (now or datetime.now(UTC)).replace(microsecond=0)
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / backup_name(database.kind, taken)
    if final.exists():
        raise BackupError(f"{final} exists already (two backups in the same second?)")
    partial = final.with_name(final.name + ".partial")
    try:
        if database.kind == "postgres":
            url, env = _libpq(database)
            _run(
                [
                    _tool("pg_dump", pg_bin),
                    "--format=custom",
                    "--no-password",
                    f"--file={partial}",
                    f"--dbname={url}",
                ],
                env,
            )
        else:
            assert database.sqlite_path is not None
            _sqlite_copy(Path(database.sqlite_path), partial)
        with partial.open("rb") as written:
            os.fsync(written.fileno())
        partial.replace(final)
    finally:
        partial.unlink(missing_ok=True)
    return Backup(final, taken, database.kind)


def _sqlite_copy(source: Path, target: Path) -> None:
    """Copy a SQLite database with the online backup API (consistent while it is written)."""
    if not source.is_file():
        raise BackupError(f"no SQLite database at {source}")
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)
        finally:
            dst.close()
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{source}: {exc}") from None
    finally:
        src.close()


def prune_backups(
    directory: Path, *, keep_daily: int, keep_weekly: int, now: datetime | None = None
) -> list[Backup]:
    """Delete the backups the policy does not keep; returns the deleted ones."""
    backups = list_backups(directory)
    keep = to_keep(
        (b.taken for b in backups),
        now=now or datetime.now(UTC),
        keep_daily=keep_daily,
        keep_weekly=keep_weekly,
    )
    removed = [b for b in backups if b.taken not in keep]
    for backup in removed:
        backup.path.unlink(missing_ok=True)
    return removed


def restore(database: DatabaseUrl, source: Path, *, pg_bin: str | None = None) -> None:
    """Restore the backup ``source`` into ``database``, which must be empty (or absent).

    Raises:
        BackupError: the file is missing or of the other engine, the target
            holds data, or the restore tool failed (the target is unchanged then).
    """
    if not source.is_file():
        raise BackupError(f"no backup file at {source}")
    expected = SUFFIXES[database.kind]
    if source.suffix != expected:
        raise BackupError(
            f"{source.name} is not a {database.kind} backup (expected a {expected} file)"
        )
    if database.kind == "postgres":
        tables = asyncio.run(_pg_tables(database))
        if tables:
            raise BackupError(
                f"the target database is not empty ({len(tables)} tables, e.g. "
                f"{', '.join(tables[:3])}); restore into a new database (createdb)"
            )
        url, env = _libpq(database)
        _run(
            [
                _tool("pg_restore", pg_bin),
                "--exit-on-error",
                "--single-transaction",
                "--no-owner",  # objects belong to the restoring role...
                "--no-acl",  # ...and grants to roles the target cluster may lack are skipped
                "--no-password",
                f"--dbname={url}",
                str(source),
            ],
            env,
        )
        return
    assert database.sqlite_path is not None
    target = Path(database.sqlite_path)
    if target.exists() and target.stat().st_size > 0:
        raise BackupError(f"{target} exists: restore into a new file (move the old one away)")
    _check_sqlite(source)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    try:
        _sqlite_copy(source, partial)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)


def _check_sqlite(path: Path) -> None:
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        verdict = connection.execute("PRAGMA integrity_check").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{path} is not a SQLite database: {exc}") from None
    finally:
        connection.close()
    if verdict != "ok":
        raise BackupError(f"{path} fails SQLite's integrity check: {verdict}")


async def _pg_tables(database: DatabaseUrl) -> list[str]:
    try:
        connection = await asyncpg.connect(database.session_url)
    except (OSError, asyncpg.PostgresError) as exc:
        raise BackupError(f"cannot connect to the target database: {exc}") from None
    try:
        rows = await connection.fetch(
            "SELECT schemaname || '.' || tablename AS name FROM pg_tables "
            "WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1"
        )
    finally:
        with contextlib.suppress(Exception):
            await connection.close()
    return [row["name"] for row in rows]
