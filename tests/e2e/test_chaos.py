"""A short chaos run (load_tests/chaos): every fault kind, no guarantee broken (issue 18).

The tool starts its own PostgreSQL cluster (initdb), Redis and two
instances, so the test needs those programs, not the shared services. It is
run as a subprocess: its exit status says whether any guarantee broke, and
its last line is the summary as JSON.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
from pathlib import Path

import pytest

from load_tests.chaos.faults import KINDS
from load_tests.chaos.topology import PGBIN
from tests.conftest import IN_CI

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
RUN_TIMEOUT_S = 300.0
SEED = 1


def _require_programs() -> None:
    missing = [p for p in ("redis-server", str(PGBIN / "initdb")) if shutil.which(p) is None]
    if missing:
        message = f"the chaos run needs {', '.join(missing)}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


async def test_short_chaos_run_keeps_every_guarantee() -> None:
    """Half a minute of faults and races on two instances: events flow, each fault kind happens,
    and the checker finds no violation (exit status 0)."""
    _require_programs()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "load_tests.chaos",
        "--minutes",
        "0.5",
        "--seed",
        str(SEED),
        "--instances",
        "2",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(process.communicate(), RUN_TIMEOUT_S)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    output = out.decode(errors="replace")
    last = output.strip().splitlines()[-1] if output.strip() else ""
    assert last.startswith("SUMMARY "), output[-4000:]
    summary = json.loads(last.removeprefix("SUMMARY "))
    assert summary["events"] > 0, output
    assert {kind: summary["faults"].get(kind, 0) >= 1 for kind in KINDS} == dict.fromkeys(
        KINDS, True
    ), output
    assert process.returncode == 0, output
