#!/usr/bin/env python3
"""Developer tasks, needing nothing but Python 3.11+.

Usage: ``python3 dev.py serve|test|lint|types|lock [args...]``.

Each task makes (or reuses) the virtual environment ``.venv``, installs the
locked dependencies it needs when the lock file changed, and runs.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
LOCKS = {
    "base": "requirements/base.lock",
    "test": "requirements/test.lock",
    "load": "requirements/load.lock",
}


def run(*cmd: str | Path, check: bool = True) -> int:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    return subprocess.run([str(c) for c in cmd], cwd=ROOT, check=check).returncode


def ensure_env(group: str) -> None:
    """Create .venv and install ``group``'s lock file (skipped when unchanged)."""
    if not (BIN / "python").exists():
        print(f"creating {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    lock = ROOT / LOCKS[group]
    digest = hashlib.sha256(lock.read_bytes() + (ROOT / "pyproject.toml").read_bytes()).hexdigest()
    stamp = VENV / f".installed-{group}"
    if stamp.exists() and stamp.read_text() == digest:
        return
    pip = (BIN / "python", "-m", "pip", "install", "--disable-pip-version-check", "-q")
    run(*pip, "-r", lock)
    run(*pip, "--no-deps", "-e", ".")
    stamp.write_text(digest)


def serve(args: list[str]) -> int:
    ensure_env("base")
    return run(BIN / "moodboard", "serve", *args, check=False)


def lint(_args: list[str]) -> int:
    ensure_env("test")
    fmt = run(BIN / "ruff", "format", "--check", ".", check=False)
    return fmt or run(BIN / "ruff", "check", ".", check=False)


def types(_args: list[str]) -> int:
    ensure_env("test")
    return run(BIN / "mypy", check=False)


def test(args: list[str]) -> int:
    """Lint, type-check, then the whole pytest suite (extra args go to pytest)."""
    ensure_env("test")
    ensure_env("load")  # the Locust smoke run (tests/e2e/test_locust_smoke.py) needs locust
    for step in (lint, types):
        if step([]) != 0:
            return 1
    chosen = any(arg.startswith(("-n", "--numprocesses", "no:xdist")) for arg in args)
    if not chosen:
        # The suite waits on servers more than it computes: one worker per core, at least
        # two; whole files per worker, so a file's servers start once (pytest-xdist).
        workers = min(4, max(2, os.cpu_count() or 2))
        args = ["-n", str(workers), "--dist", "loadfile", *args]
    return run(BIN / "python", "-m", "pytest", *args, check=False)


def lock(_args: list[str]) -> int:
    """Re-resolve the lock files from pyproject.toml (needs the package index).

    Every file of every pinned release is listed with its sha256 (``--generate-hashes``):
    pip then installs in hash-checking mode, and the Docker image with ``--require-hashes``.
    """
    ensure_env("test")
    run(BIN / "python", "-m", "pip", "install", "-q", "uv")
    for group, path in LOCKS.items():
        extras = [] if group == "base" else ["--extra", group]
        run(
            BIN / "uv",
            "pip",
            "compile",
            "-q",
            "pyproject.toml",
            "--python-version",
            "3.11",
            "--generate-hashes",
            # pip's hash-checking mode takes a dependency asked for with an extra
            # (picows needs python-socks[asyncio]) as unpinned unless the lock names it.
            "--no-strip-extras",
            *extras,
            "-o",
            path,
        )
    # The build backend, for the Docker image (it builds our wheel without build isolation).
    run(
        BIN / "uv",
        "pip",
        "compile",
        "-q",
        "requirements/build.in",
        "--python-version",
        "3.11",
        "--generate-hashes",
        "-o",
        "requirements/build.lock",
    )
    return 0


TASKS = {"serve": serve, "test": test, "lint": lint, "types": types, "lock": lock}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in TASKS:
        sys.exit(f"usage: python3 dev.py {{{'|'.join(TASKS)}}} [args...]")
    sys.exit(TASKS[sys.argv[1]](sys.argv[2:]))
