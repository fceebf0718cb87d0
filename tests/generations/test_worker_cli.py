"""`moodboard worker` refuses to start without what it needs, in one line."""

from __future__ import annotations

import os
import subprocess
import sys


def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("MOODBOARD_")}
    base.pop("DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "server.cli", "worker", *args],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_worker_without_a_key_exits_2_naming_the_variable() -> None:
    """No MOODBOARD_WORKER_KEY: exit 2 with one line saying how to get a key."""
    result = run()
    assert result.returncode == 2
    assert "MOODBOARD_WORKER_KEY" in result.stderr
    assert "create-service-account" in result.stderr
    assert "Traceback" not in result.stderr


def test_worker_rejects_bad_options() -> None:
    """A concurrency out of 1..256 or a bad server URL is refused before anything runs."""
    assert run("--concurrency", "0", MOODBOARD_WORKER_KEY="mbk_x").returncode == 2
    bad_url = run(MOODBOARD_WORKER_KEY="mbk_x", MOODBOARD_WORKER_SERVER_URL="ftp://x")
    assert bad_url.returncode == 2
    assert "MOODBOARD_WORKER_SERVER_URL" in bad_url.stderr
