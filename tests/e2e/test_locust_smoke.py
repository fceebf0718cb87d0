"""A short headless Locust run against a real server: no failure, no seq gap (issue 8).

Locust is run as a subprocess and never imported here: importing it
monkey-patches the process with gevent. Its JSON
report says how each exchange went; its exit code is 1 on any failure.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.conftest import IN_CI
from tests.servers import ServerProcess, running_server, server_env

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
ADMIN = ("load-admin@example.com", "load admin password")
RUN_S = 6
LOCUST_TIMEOUT_S = 60.0


def _require_locust() -> None:
    if importlib.util.find_spec("locust") is None:
        message = "locust is not installed (pip install -r requirements/load.lock)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


async def _run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        *args,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(process.communicate(), LOCUST_TIMEOUT_S)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return process.returncode, out.decode(errors="replace")


@asynccontextmanager
async def seeded_server(
    env: dict[str, str], tmp: Path
) -> AsyncIterator[tuple[ServerProcess, Path]]:
    """A server with an admin, seeded by load_tests/seed.py; the seed removed afterwards."""
    code, out = await _run(
        sys.executable, "-m", "server.cli", "create-admin", "--email", ADMIN[0], "--password",
        ADMIN[1], "--migrate", env=env,
    )  # fmt: skip
    assert code == 0, out
    seed = tmp / "seed.json"
    async with running_server(env, tmp, cwd=ROOT) as server:
        code, out = await _run(
            sys.executable, "load_tests/seed.py", "up", "--host", server.url, "--users", "4",
            "--projects", "3", "--members", "3", "--items", "4", "--out", str(seed),
            "--admin-email", ADMIN[0], "--admin-password", ADMIN[1], "--credits", "1000",
        )  # fmt: skip
        assert code == 0, out
        yield server, seed
        seeded = [uuid.UUID(p["id"]) for p in json.loads(seed.read_text())["projects"]]
        code, out = await _run(sys.executable, "load_tests/seed.py", "down", "--seed", str(seed))
        assert code == 0, out
    # What `down` deleted goes for good with the purge (docs/load-testing.md "Clean up").
    code, out = await _run(
        sys.executable, "-m", "server.cli", "maintenance", "--purge-after-days", "0", env=env
    )
    assert code == 0, out
    assert f"purged: {len(seeded)} deleted projects" in out
    conn = await asyncpg.connect(env["DATABASE_URL"])
    try:
        left = await conn.fetchval(
            "SELECT (SELECT count(*) FROM project WHERE id = ANY($1))"
            " + (SELECT count(*) FROM event WHERE project_id = ANY($1))"
            " + (SELECT count(*) FROM item WHERE project_id = ANY($1))",
            seeded,
        )
    finally:
        await conn.close()
    assert left == 0


async def locust(server: ServerProcess, seed: Path) -> tuple[int, str, list[Any]]:
    """Run Locust headless (every user class) for RUN_S; exit code, output and JSON stats."""
    report = seed.parent / "stats"
    code, out = await _run(
        sys.executable, "-m", "locust", "-f", "load_tests/locustfile.py", "--headless",
        "-u", "12", "-r", "12", "-t", f"{RUN_S}s", "--host", server.url,
        "--seed-file", str(seed), "--json-file", str(report), "--only-summary",
        "--generation-timeout", "20",
    )  # fmt: skip
    stats = json.loads(report.with_suffix(".json").read_text())
    return code, out, stats


def failures(stats: list[Any]) -> dict[str, int]:
    return {s["name"]: s["num_failures"] for s in stats if s["num_failures"]}


async def test_locust_users_run_without_failures_or_gaps(
    pg_url: str, redis_url: str, tmp_path: Path
) -> None:
    """Editors, viewers and generation watchers: every exchange succeeds, no event is missed."""
    _require_locust()
    env = server_env(
        pg_url,
        REDIS_URL=redis_url,
        MOODBOARD_INPROCESS_WORKER="true",  # the built-in worker finishes the generations
        MOODBOARD_WORKER_POLL_MS="50",
        MOODBOARD_WORKER_STEP_DELAY_MS="100",
    )
    async with seeded_server(env, tmp_path) as (server, seed):
        code, out, stats = await locust(server, seed)
        conn = await asyncpg.connect(pg_url)
        try:
            finished = await conn.fetchval(
                "SELECT count(*) FROM generation WHERE status = 'succeeded'"
            )
        finally:
            await conn.close()
    counted = {s["name"]: s["num_requests"] for s in stats}
    assert failures(stats) == {}, out
    assert code == 0, out
    for name in ("connect+auth", "join", "edit->ack", "edit->peer", "presence", "ping"):
        assert counted.get(name, 0) > 0, f"no {name} measured:\n{out}"
    assert counted.get("generation->first progress", 0) > 0, out
    assert 0 < counted.get("generation->succeeded", 0) <= finished, out
