"""``moodboard backup`` and ``moodboard restore`` (docs/operations.md "Backup and recovery").

PostgreSQL: ``pg_dump --format=custom`` (a consistent snapshot while the
server keeps serving) and ``pg_restore`` into an empty database. SQLite: the
online backup API of ``sqlite3`` (consistent under WAL, while the server
writes), and the same API to copy a backup into a new file.

A backup holds password and token hashes and every project: its file is
created 0600 and its directory 0700 (an existing directory that others may
read is narrowed). It is written under a ``.partial`` name, *verified*
(``pg_restore`` reads its table of contents and every data block; SQLite's
``PRAGMA integrity_check`` reads every page), optionally encrypted to an
``age`` public key (``.age`` appended), and only then renamed: a file under a
real name is a backup that passed its check, which is what
``moodboard_backup_last_success_timestamp`` reports. A failed restore
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
import stat
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
ENCRYPTED = ".age"
_NAME = re.compile(r"^moodboard-(\d{8}T\d{6}Z)(\.dump|\.sqlite3)(\.age)?$")


class BackupError(Exception):
    """A backup or restore could not be done; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class Backup:
    """One backup file of the directory and when it was taken."""

    path: Path
    taken: datetime
    kind: DatabaseKind
    encrypted: bool = False


def backup_name(kind: DatabaseKind, taken: datetime, *, encrypted: bool = False) -> str:
    stamp = taken.astimezone(UTC).strftime(STAMP)
    return f"moodboard-{stamp}{SUFFIXES[kind]}{ENCRYPTED if encrypted else ''}"


def parse_backup(path: Path) -> Backup | None:
    """The backup a file name describes, or None for any other file."""
    match = _NAME.match(path.name)
    if match is None:
        return None
    taken = datetime.strptime(match.group(1), STAMP).replace(tzinfo=UTC)
    kind: DatabaseKind = "postgres" if match.group(2) == ".dump" else "sqlite"
    return Backup(path, taken, kind, encrypted=match.group(3) is not None)


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


def _run(command: Sequence[str], env: dict[str, str] | None = None) -> str:
    result = subprocess.run(  # noqa: S603 - fixed tools, arguments are ours
        command, env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise BackupError(f"{Path(command[0]).name} failed: {result.stderr.strip()[-2000:]}")
    return result.stdout


def _private_directory(directory: Path) -> None:
    """Create ``directory`` 0700, or take away what others may do in an existing one."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    mode = stat.S_IMODE(directory.stat().st_mode)
    if mode & 0o007:
        directory.chmod(mode & ~0o007)


def _create_private(path: Path) -> None:
    """An empty file only its owner may read, for a tool to write into."""
    os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))


def verify(path: Path, kind: DatabaseKind, *, pg_bin: str | None = None) -> None:
    """Read the backup back; raise :class:`BackupError` unless it is whole.

    PostgreSQL: ``pg_restore --list`` must read the archive's table of
    contents and find the data of the ``project`` table in it; then
    ``pg_restore --file=/dev/null`` reads and decompresses every block (the
    table of contents sits at the start of the file, so ``--list`` alone passes
    a dump cut short by a full disk). SQLite: ``PRAGMA integrity_check``
    (every page) and the ``project`` table there.
    """
    if kind == "postgres":
        pg_restore = _tool("pg_restore", pg_bin)
        listing = _run([pg_restore, "--list", str(path)])
        if not re.search(r"TABLE DATA \S+ project ", listing):
            raise BackupError(f"{path.name}: pg_restore --list finds no data of table project")
        _run([pg_restore, f"--file={os.devnull}", str(path)])
        return
    _check_sqlite(path)
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        found = connection.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'project'"
        ).fetchone()
    finally:
        connection.close()
    if found is None:
        raise BackupError(f"{path.name}: no table project in the copy")


def _encrypt(source: Path, target: Path, recipient: str) -> None:
    """``age`` to a public key (``age1...``, an SSH public key) or a file of them."""
    tool = shutil.which("age")
    if tool is None:
        raise BackupError("--encrypt-to needs age (Debian: apt-get install age)")
    flag = "-R" if Path(recipient).is_file() else "-r"
    _create_private(target)
    _run([tool, flag, recipient, "-o", str(target), str(source)])
    with target.open("rb") as written:
        if not written.read(64).startswith(b"age-encryption.org/v1"):
            raise BackupError(f"{target.name}: age wrote no age file")


def take_backup(
    database: DatabaseUrl,
    directory: Path,
    *,
    now: datetime | None = None,
    pg_bin: str | None = None,
    encrypt_to: str | None = None,
) -> Backup:
    """Write one verified backup of ``database`` into ``directory``; returns it.

    Raises:
        BackupError: the dump, its verification or its encryption failed;
            nothing is left under a backup's name then.
    """
    taken = (now or datetime.now(UTC)).replace(microsecond=0)
    _private_directory(directory)
    encrypted = encrypt_to is not None
    final = directory / backup_name(database.kind, taken, encrypted=encrypted)
    if final.exists():
        raise BackupError(f"{final} exists already (two backups in the same second?)")
    plain = directory / (backup_name(database.kind, taken) + ".partial")
    sealed = final.with_name(final.name + ".partial")
    try:
        _create_private(plain)
        if database.kind == "postgres":
            url, env = _libpq(database)
            _run(
                [
                    _tool("pg_dump", pg_bin),
                    "--format=custom",
                    "--no-password",
                    f"--file={plain}",
                    f"--dbname={url}",
                ],
                env,
            )
        else:
            assert database.sqlite_path is not None
            _sqlite_copy(Path(database.sqlite_path), plain)
        plain.chmod(0o600)  # whatever the tool did to the file
        verify(plain, database.kind, pg_bin=pg_bin)
        written = plain
        if encrypt_to is not None:
            _encrypt(plain, sealed, encrypt_to)
            written = sealed
        with written.open("rb") as handle:
            os.fsync(handle.fileno())
        written.replace(final)
        _fsync_directory(directory)
    finally:
        plain.unlink(missing_ok=True)
        sealed.unlink(missing_ok=True)
    return Backup(final, taken, database.kind, encrypted=encrypted)


def _fsync_directory(directory: Path) -> None:
    """Make the rename durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def newest_backup(directory: Path) -> Backup | None:
    """The newest backup in ``directory`` (every one there passed its verification)."""
    backups = list_backups(directory)
    return backups[-1] if backups else None


def _sqlite_copy(source: Path, target: Path) -> None:
    """Copy a SQLite database with the online backup API (consistent while it is written)."""
    if not source.is_file():
        raise BackupError(f"no SQLite database at {source}")
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)
            # The copy is one self-contained file: no -wal/-shm beside it when it is read.
            dst.execute("PRAGMA journal_mode = DELETE")
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


def write_textfile(path: Path, backup: Backup) -> None:
    """``moodboard_backup_last_success_timestamp`` for node_exporter's textfile collector.

    Written to a temporary name and renamed, so the collector never reads half a file.
    """
    text = (
        "# HELP moodboard_backup_last_success_timestamp Unix time the newest verified "
        "backup was taken\n"
        "# TYPE moodboard_backup_last_success_timestamp gauge\n"
        f"moodboard_backup_last_success_timestamp {backup.taken.timestamp():.0f}\n"
    )
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text)
    partial.replace(path)


def restore(database: DatabaseUrl, source: Path, *, pg_bin: str | None = None) -> None:
    """Restore the backup ``source`` into ``database``, which must be empty (or absent).

    Raises:
        BackupError: the file is missing or of the other engine, the target
            holds data, or the restore tool failed (the target is unchanged then).
    """
    if not source.is_file():
        raise BackupError(f"no backup file at {source}")
    if source.suffix == ENCRYPTED:
        raise BackupError(
            f"{source.name} is encrypted: decrypt it first with the private key "
            f"(age -d -i KEY -o {source.stem} {source.name}), then restore {source.stem}"
        )
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
        raise BackupError(f"{path} is not a whole SQLite database: {exc}") from None
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
