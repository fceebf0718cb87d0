"""A short headless Locust run against a real server: no failure, no seq gap (issue 8).

Locust is run as a subprocess and never imported here: importing it
monkey-patches the process with gevent (STACK-NOTES.md, Locust). Its JSON
report says how each exchange went; its exit code is 1 on any failure.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import IN_CI
from tests.servers import ServerProcess, running_server, server_env

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
ADMIN = ("load-admin@example.com", "load admin password")
RUN_S = 5
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
    out, _ = await asyncio.wait_for(process.communicate(), LOCUST_TIMEOUT_S)
    assert process.returncode is not None
    return process.returncode, out.decode(errors="replace")


@pytest.fixture(scope="module")
async def seeded(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[tuple[ServerProcess, Path]]:
    """An embedded-mode server with an admin, seeded by load_tests/seed.py; torn down after."""
    _require_locust()
    tmp = tmp_path_factory.mktemp("locust")
    env = server_env(f"sqlite:///{tmp / 'm.sqlite3'}")
    code, out = await _run(
        sys.executable, "-m", "server.cli", "create-admin", "--email", ADMIN[0], "--password",
        ADMIN[1], env=env,
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
        code, out = await _run(sys.executable, "load_tests/seed.py", "down", "--seed", str(seed))
        assert code == 0, out


async def locust(
    server: ServerProcess, seed: Path, *classes: str, seconds: int = RUN_S
) -> tuple[int, str, list[Any]]:
    """Run Locust headless for ``seconds``; exit code, output and its JSON stats."""
    report = seed.parent / f"stats-{'-'.join(classes)}"
    code, out = await _run(
        sys.executable, "-m", "locust", "-f", "load_tests/locustfile.py", "--headless",
        "-u", "12", "-r", "12", "-t", f"{seconds}s", "--host", server.url,
        "--seed-file", str(seed), "--json-file", str(report), "--only-summary",
        "--generation-timeout", "20", *classes,
    )  # fmt: skip
    stats = json.loads(report.with_suffix(".json").read_text())
    return code, out, stats


def failures(stats: list[Any]) -> dict[str, int]:
    return {s["name"]: s["num_failures"] for s in stats if s["num_failures"]}


async def test_editors_and_viewers_run_without_failures_or_gaps(
    seeded: tuple[ServerProcess, Path],
) -> None:
    """Editors and viewers on seeded projects: every exchange succeeds, events arrive in order."""
    server, seed = seeded
    code, out, stats = await locust(server, seed, "Editor", "Viewer")
    counted = {s["name"]: s["num_requests"] for s in stats}
    assert failures(stats) == {}, out
    assert code == 0, out
    for name in ("connect+auth", "join", "edit->ack", "edit->peer", "presence"):
        assert counted.get(name, 0) > 0, f"no {name} measured:\n{out}"


@pytest.mark.skipif(
    importlib.util.find_spec("server.generations.worker") is None,
    reason="no generation worker in this build (server.generations.worker)",
)
async def test_generation_watchers_see_their_generations_succeed(
    seeded: tuple[ServerProcess, Path],
) -> None:
    """Generation watchers (in-process worker of embedded mode) see progress, then success."""
    server, seed = seeded
    code, out, stats = await locust(server, seed, "GenerationWatcher", seconds=10)
    counted = {s["name"]: s["num_requests"] for s in stats}
    assert failures(stats) == {}, out
    assert code == 0, out
    assert counted.get("generation->succeeded", 0) > 0, out
