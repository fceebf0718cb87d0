"""Backups an operator can trust (server/ops/backup.py), on both engines.

A backup holds password and token hashes: its file is 0600 and its directory
loses what others could do. It is verified before it gets its name (a dump
cut short, a damaged SQLite file: the command fails loudly and leaves no
file under a backup's name), may be encrypted with ``age`` to a public key
(no plain copy left behind; the private key gives back a database that
verifies), and the newest one's time is on ``/metrics``
(``moodboard_backup_last_success_timestamp``) and in a textfile for
node_exporter (``--metrics-file``).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import stat
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from server.ops.backup import BackupError, list_backups, restore, take_backup, verify
from server.settings import parse_database_url
from tests.api.conftest import app_for, serving
from tests.servers import server_env


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def require_age() -> str:
    age = shutil.which("age")
    if age is None:
        message = "age not installed (apt-get install age): backup encryption untested"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return age


def run(*command: str) -> str:
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


async def cli(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "server.cli",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_backups_are_private_verified_encrypted_and_reported(
    database_url: str, engine: Any, tmp_path: Path
) -> None:
    database = parse_database_url(database_url)
    directory = tmp_path / "backups"
    directory.mkdir()
    directory.chmod(0o755)  # as an operator's mkdir leaves it: others may list and read
    now = datetime.now(UTC).replace(microsecond=0)
    plain = await asyncio.to_thread(take_backup, database, directory, now=now - timedelta(hours=1))
    assert mode(directory) == 0o750
    assert mode(plain.path) == 0o600

    age = require_age()
    key = tmp_path / "key.txt"
    await asyncio.to_thread(run, "age-keygen", "-o", str(key))
    recipient = (await asyncio.to_thread(run, "age-keygen", "-y", str(key))).strip()
    sealed = await asyncio.to_thread(
        take_backup, database, directory, now=now, encrypt_to=recipient
    )
    assert sealed.path.name.endswith(".age")
    assert mode(sealed.path) == 0o600
    assert sorted(p.name for p in directory.iterdir()) == sorted(
        [plain.path.name, sealed.path.name]
    )  # no plain copy, no partial file left
    assert [b.path for b in list_backups(directory)] == [plain.path, sealed.path]
    with pytest.raises(BackupError, match="decrypt it first"):
        restore(database, sealed.path)
    opened = tmp_path / sealed.path.stem
    await asyncio.to_thread(run, age, "-d", "-i", str(key), "-o", str(opened), str(sealed.path))
    await asyncio.to_thread(
        verify, opened, database.kind
    )  # the private key gives back a whole backup

    async with serving(app_for(database_url, MOODBOARD_BACKUP_DIR=str(directory))) as client:
        scraped = (await client.get("/metrics")).text
    [value] = re.findall(r"^moodboard_backup_last_success_timestamp (\S+)$", scraped, re.M)
    assert float(value) == now.timestamp()  # the newest backup's


async def test_a_damaged_backup_fails_loudly(
    database_url: str, engine: Any, tmp_path: Path
) -> None:
    """A dump cut short (PostgreSQL) or a damaged database (SQLite): exit 1, no backup."""
    directory, textfile = tmp_path / "backups", tmp_path / "moodboard.prom"
    args = ["backup", "--dir", str(directory), "--metrics-file", str(textfile)]
    env = server_env(database_url)
    if database_url.startswith("postgresql"):
        # The real pg_dump, its output then cut to half (a full disk, a killed copy).
        fault = tmp_path / "bin"
        fault.mkdir()
        real = Path(shutil.which("pg_dump") or "pg_dump")
        (fault / "pg_restore").symlink_to(real.with_name("pg_restore"))
        (fault / "pg_dump").write_text(
            "#!/bin/sh\nset -e\n"
            f'"{real}" "$@"\n'
            'for a; do case "$a" in --file=*) f="${a#--file=}";; esac; done\n'
            'truncate -s "$(($(stat -c %s "$f") / 2))" "$f"\n'
        )
        (fault / "pg_dump").chmod(0o755)
        status, out, err = await cli(env, *args, "--pg-bin", str(fault))
    else:
        damaged = tmp_path / "damaged.sqlite3"
        shutil.copy(parse_database_url(database_url).sqlite_path or "", damaged)
        # Every page but the first gets a b-tree page type no page has (random bytes in the
        # middle of the file could land on free space, which no check reads).
        with damaged.open("r+b") as file:
            page_size = int.from_bytes(file.read(18)[16:18], "big")
            page_size = 65536 if page_size == 1 else page_size  # how SQLite writes 64 KiB
            for page in range(1, damaged.stat().st_size // page_size):
                file.seek(page * page_size)
                file.write(b"\xff")
        status, out, err = await cli(server_env(f"sqlite:///{damaged}"), *args)
    assert status == 1, out + err
    assert "moodboard backup: FAILED" in err
    assert list(directory.iterdir()) == []  # nothing under a backup's name, no partial
    assert not textfile.exists()

    status, out, err = await cli(env, *args)
    assert status == 0, err
    assert "written and verified" in out
    [backup] = list_backups(directory)
    assert f"moodboard_backup_last_success_timestamp {backup.taken.timestamp():.0f}\n" in (
        textfile.read_text()
    )
