"""The Dockerfile's production properties (issue 23 item 10), read from the file: Docker is
not needed, and not available where the suite runs."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
LOCKS = sorted((ROOT / "requirements").glob("*.lock"))


def instructions() -> list[str]:
    """The Dockerfile's instructions, continuation lines joined, comments left out."""
    joined = re.sub(r"\\\n", " ", DOCKERFILE)
    return [line.strip() for line in joined.splitlines() if line.strip() and line[0] != "#"]


def test_base_images_are_pinned_by_digest() -> None:
    """Every stage starts from the one ARG, a tag pinned by a sha256 digest."""
    args = [x for x in instructions() if x.startswith("ARG PYTHON_IMAGE=")]
    assert len(args) == 1
    assert re.fullmatch(r"ARG PYTHON_IMAGE=python:[\w.-]+@sha256:[0-9a-f]{64}", args[0]), args
    froms = [x for x in instructions() if x.startswith("FROM ")]
    assert froms
    assert all(x.split()[1] == "${PYTHON_IMAGE}" for x in froms), froms
    assert "scripts/refresh-base-image.sh" in DOCKERFILE  # how the digest is refreshed
    assert (ROOT / "scripts" / "refresh-base-image.sh").stat().st_mode & 0o111


def test_dependencies_install_from_hashed_locks_only() -> None:
    """Each pip install of a lock requires hashes, and every pin of every lock has them."""
    installs = [x for x in instructions() if "pip install" in x]
    for run in installs:
        for command in run.split("&&"):
            if "pip install" in command and " -r " in command:
                assert "--require-hashes" in command, command
    for lock in LOCKS:
        pins = re.findall(
            r"^([A-Za-z0-9_.\[\],-]+==\S+)( \\\n(?:    --hash=sha256:[0-9a-f]{64}(?: \\\n)?)+)?",
            lock.read_text(),
            re.M,
        )
        assert pins, lock
        unhashed = [pin for pin, hashes in pins if not hashes]
        assert not unhashed, f"{lock.name}: {unhashed} (run python3 dev.py lock)"


def test_the_build_backend_lock_follows_pyproject() -> None:
    """requirements/build.in asks for what pyproject.toml's [build-system] requires."""
    build = tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]["requires"]
    wanted = [
        line.strip()
        for line in (ROOT / "requirements" / "build.in").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert wanted == build


def test_healthcheck_starts_no_python_and_data_lives_in_volumes() -> None:
    """curl (installed in the runtime stage) checks /healthz; the storage and backup
    directories the image's environment names are volumes."""
    [check] = [x for x in instructions() if x.startswith("HEALTHCHECK")]
    assert "python" not in check
    assert "curl" in check
    assert "/healthz" in check
    runtime = DOCKERFILE.rsplit("\nFROM ", 1)[1]
    assert re.search(r"apt-get install [^\n]*\bcurl\b", runtime)
    env = dict(re.findall(r"(MOODBOARD_(?:STORAGE|BACKUP)_DIR)=(\S+)", runtime))
    [volume] = [x for x in instructions() if x.startswith("VOLUME")]
    assert set(env) == {"MOODBOARD_STORAGE_DIR", "MOODBOARD_BACKUP_DIR"}
    for directory in env.values():
        assert f'"{directory}"' in volume, (directory, volume)
