"""The point-in-time recovery drill (scripts/pitr-drill.sh) passes on a throwaway cluster."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PGBIN = os.environ.get("PGBIN", "/usr/lib/postgresql/15/bin")

pytestmark = pytest.mark.e2e


async def test_recovery_to_a_time_keeps_what_came_before_and_nothing_after() -> None:
    """Base backup + archived WAL, recovered to T: rows before T are back, later ones are not."""
    if not (Path(PGBIN) / "initdb").is_file():
        pytest.skip(f"needs the PostgreSQL server binaries in {PGBIN} (set PGBIN)")
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        pytest.skip("as root the drill runs the cluster as postgres, with runuser")
    process = await asyncio.create_subprocess_exec(
        str(ROOT / "scripts" / "pitr-drill.sh"),
        env={**os.environ, "PGBIN": PGBIN},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(), 120)
    text = out.decode()
    assert process.returncode == 0, text
    assert "rows by phase after recovery: before=100 kept=50" in text
    assert "PASS" in text
