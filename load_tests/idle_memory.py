"""Where an idle joined socket's bytes go: tracemalloc and an object census, per socket.

Starts ``moodboard serve`` with tracemalloc on (a fresh PostgreSQL database,
Redis, the benchmark's settings), opens ``--sockets`` idle sockets joined
``--per-project`` to a project (W4's layout by default), and compares the
server's heap with and without them. It prints, per socket:

- the traced bytes by the line that allocated them, taken as the innermost
  frame in our code, a library or asyncio (so a dict made inside uvicorn for
  the app shows as uvicorn's line, not as the event loop's);
- the live objects by type (``gc.get_objects()``, ``sys.getsizeof``).

tracemalloc slows the server several times over (1,000 sockets take about
two minutes to open) and adds its own memory to RSS: use W4
(``python -m load_tests.bench --only W4``) for the number, this for the
breakdown. Results: docs/performance.md "Idle memory".

    python -m load_tests.idle_memory --sockets 1000
    python -m load_tests.idle_memory --sockets 2000 --per-project 2000 --rss-only
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import linecache
import os
import pickle
import secrets
import signal
import subprocess
import sys
import tempfile
import tracemalloc
import uuid
from pathlib import Path

import asyncpg

from load_tests.bench import harness
from server.client import RestClient

# Runs in the server process: tracemalloc on, and SIGUSR2 writes a snapshot and a census.
_BOOTSTRAP = """
import collections, gc, os, pickle, signal, sys, tracemalloc
tracemalloc.start(int(os.environ["IDLE_MEMORY_FRAMES"]))
taken = [0]
def dump(*_):
    gc.collect()
    taken[0] += 1
    out = os.environ["IDLE_MEMORY_DIR"] + f"/{taken[0]}"
    tracemalloc.take_snapshot().dump(out + ".snapshot")
    counts, sizes = collections.Counter(), collections.Counter()
    for obj in gc.get_objects():
        kind = type(obj)
        name = f"{kind.__module__}.{kind.__qualname__}"
        counts[name] += 1
        sizes[name] += sys.getsizeof(obj)
    with open(out + ".census", "wb") as f:
        pickle.dump((counts, sizes), f)
    os.rename(out + ".census", out + ".done")
signal.signal(signal.SIGUSR2, dump)
from server.cli import main
sys.exit(main(sys.argv[1:]))
"""
_MARKERS = ("/server/", "site-packages/", "/asyncio/")
STARTUP_TRIES = 5  # of harness._wait_port's minute each


def _owner(trace: tracemalloc.Traceback) -> str:
    """The innermost frame in our code, a library or asyncio, with its source line."""
    for frame in reversed(trace):  # a Traceback runs from the oldest frame to the newest
        name = frame.filename
        if any(marker in name for marker in _MARKERS) and "/server/cli.py" not in name:
            short = name.split("site-packages/")[-1].split(f"{harness.ROOT}/")[-1]
            if "/asyncio/" in short:
                short = "asyncio/" + short.split("/asyncio/")[-1]
            line = linecache.getline(name, frame.lineno).strip()[:80]
            return f"{short}:{frame.lineno}: {line}"
    return f"{trace[0].filename}:{trace[0].lineno}"


def report(folder: Path, sockets: int, top: int) -> None:
    before = tracemalloc.Snapshot.load(str(folder / "1.snapshot"))
    after = tracemalloc.Snapshot.load(str(folder / "2.snapshot"))
    size: collections.Counter[str] = collections.Counter()
    blocks: collections.Counter[str] = collections.Counter()
    for stat in after.compare_to(before, "traceback"):
        key = _owner(stat.traceback)
        size[key] += stat.size_diff
        blocks[key] += stat.count_diff
    print(f"traced heap: {sum(size.values()) / sockets:.0f} bytes per socket, by where allocated")
    for key, total in size.most_common(top):
        print(f"{total / sockets:7.0f} B {blocks[key] / sockets:6.2f} blocks  {key}")
    with (folder / "1.done").open("rb") as f:
        counts0, sizes0 = pickle.load(f)
    with (folder / "2.done").open("rb") as f:
        counts1, sizes1 = pickle.load(f)
    rows = []
    for name in set(counts0) | set(counts1):
        count, nbytes = counts1[name] - counts0[name], sizes1[name] - sizes0[name]
        if abs(count) >= sockets / 2 or abs(nbytes) >= sockets * 40:
            rows.append((nbytes, count, name))
    print("\nlive objects per socket (gc-tracked; sys.getsizeof, contents not included)")
    for nbytes, count, name in sorted(rows, reverse=True)[:top]:
        print(f"{count / sockets:7.2f} objects {nbytes / sockets:7.0f} B  {name}")


async def measure(args: argparse.Namespace, folder: Path) -> int:
    """Snapshots without and with the sockets in ``folder``; how many sockets were opened."""
    admin = await asyncpg.connect(args.admin_url)
    db = f"moodboard_idlememory_{uuid.uuid4().hex[:8]}"
    await admin.execute(f'CREATE DATABASE "{db}"')
    port = harness.free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("MOODBOARD_")},
        "DATABASE_URL": args.admin_url.rsplit("/", 1)[0] + f"/{db}",
        "REDIS_URL": args.redis_url,
        "MOODBOARD_SECRET_KEY": "idle-" + secrets.token_urlsafe(32),
        "MOODBOARD_LOG_LEVEL": "warning",
        "MOODBOARD_MAX_SOCKETS_PER_USER": "100000",
        "MOODBOARD_INPROCESS_WORKER": "false",
        "IDLE_MEMORY_DIR": str(folder),
        "IDLE_MEMORY_FRAMES": str(args.frames),
    }
    log = folder / "server.log"
    with log.open("wb") as out:
        serve = ["-m", "server.cli"] if args.rss_only else ["-c", _BOOTSTRAP]
        command = [sys.executable, *serve, "serve", "--port", str(port)]
        server = subprocess.Popen(command, cwd=harness.ROOT, env=env, stdout=out, stderr=out)
    taken = 0

    async def snapshot() -> None:
        nonlocal taken
        if args.rss_only:
            return
        taken += 1
        server.send_signal(signal.SIGUSR2)
        while not (folder / f"{taken}.done").exists():  # noqa: ASYNC110 - another process's file
            await asyncio.sleep(0.2)

    try:
        # A traced server starts slowly, slower still on a busy machine.
        for _ in range(STARTUP_TRIES):
            try:
                await harness._wait_port(port, server, log)
                break
            except RuntimeError:
                if server.poll() is not None:
                    raise
        else:
            raise RuntimeError(f"the traced server did not listen on {port}")
        async with RestClient(f"http://127.0.0.1:{port}", timeout_s=120) as rest:
            user = await rest.register(f"idle-{db}@example.com", harness.PASSWORD, "Idle")
            target = harness.Target("ours", port, server, token=user.token, rest=rest)
            projects = max(1, args.sockets // args.per_project)
            refs = await target.projects(projects, items=0)
            warm = await harness.open_pumped(target, 20, lambda i: refs[i % projects].id)
            await asyncio.sleep(1.0)
            rss = target.rss()
            await snapshot()
            conns, failures = await harness.try_open_pumped(
                target, args.sockets, lambda i: refs[i % projects].id
            )
            await asyncio.sleep(2.0)
            rss = target.rss() - rss
            await snapshot()
            harness.drop([*warm, *conns])
            print(f"server RSS: {rss / 1024 / max(1, len(conns)):.1f} KiB per socket opened")
            if failures:  # a traced server is slow: a few may time out; per socket opened
                print(f"{len(failures)} sockets failed to open; first: {failures[0]!r}")
            return len(conns)
    finally:
        server.kill()  # a traced drain of thousands of sockets takes long; nothing to keep
        server.wait()
        await admin.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sockets", type=int, default=1000, help="idle joined sockets measured")
    parser.add_argument("--per-project", type=int, default=50, help="sockets joined to a project")
    parser.add_argument("--frames", type=int, default=25, help="tracemalloc frames per trace")
    parser.add_argument("--top", type=int, default=40, help="rows printed per table")
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--keep", type=Path, help="keep the snapshots and census in this folder")
    parser.add_argument(
        "--rss-only", action="store_true", help="no tracemalloc: the server's RSS per socket only"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        opened = asyncio.run(measure(args, folder))
        if not args.rss_only:
            report(folder, opened, args.top)


if __name__ == "__main__":
    main()
