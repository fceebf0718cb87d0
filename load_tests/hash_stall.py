"""Measurement: a joined socket's ping round trip while password hashes are in flight.

Not a test: it prints a table (and JSON with ``--json``). Issue 19 item 2:
with argon2 on the event loop, 16 concurrent sign-ups pushed a joined
socket's ping round trip from 0.8 ms to 2.2 s. The target is a p99 under
50 ms while 16 sign-ups or 16 failed logins are in flight.

It starts its own server (``moodboard serve``, embedded SQLite in a
temporary directory unless ``--database-url`` says otherwise; the login
throttle raised so every failed login really is checked), signs a user up,
joins a project with a socket, then for each scenario sends a ping every
``--interval-ms`` while rounds of 16 requests run back to back for
``--seconds``:

- ``idle``: nothing else;
- ``signup``: 16 sign-ups with new e-mails (each hashes a password);
- ``signup-taken``: 16 sign-ups with a taken e-mail (answered before hashing);
- ``login-wrong``: 16 logins with a wrong password (each verifies one).

Run it on a quiet machine (the numbers are meaningless on a busy one):

    .venv/bin/python load_tests/hash_stall.py --seconds 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "correct horse battery"
AT_ONCE = 16


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def start_server(database_url: str, port: int, log: Path) -> asyncio.subprocess.Process:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOODBOARD_")}
    env.pop("REDIS_URL", None)
    env.update(
        DATABASE_URL=database_url,
        MOODBOARD_SECRET_KEY="hash-stall-" + uuid.uuid4().hex,
        MOODBOARD_INPROCESS_WORKER="0",
        MOODBOARD_LOG_LEVEL="warning",
        # Every failed login must reach the hash: the throttle would answer 429 first.
        MOODBOARD_LOGIN_FAILURES_PER_MINUTE="10000",
    )
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "server.cli",
            "serve",
            "--port",
            str(port),
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=asyncio.subprocess.STDOUT,
        )
    async with httpx.AsyncClient(timeout=2) as client:
        for _ in range(300):
            try:
                if (await client.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200:
                    return process
            except httpx.TransportError:
                pass
            if process.returncode is not None:
                break
            await asyncio.sleep(0.1)
    output = log.read_text(errors="replace")  # noqa: ASYNC240 - once, on the way out
    raise SystemExit(f"the server did not start:\n{output}")


async def joined_socket(base: str, http: httpx.AsyncClient) -> tuple[ClientConnection, str]:
    """A socket of a new user, joined to a project of theirs; and that user's e-mail."""
    email = f"watcher-{uuid.uuid4().hex[:8]}@example.com"
    body = {"email": email, "password": PASSWORD, "name": "Watcher"}
    token = (await http.post(f"{base}/api/auth/register", json=body)).json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    project = (await http.post(f"{base}/api/projects", json={"name": "P"}, headers=headers)).json()
    ws = await connect(base.replace("http", "ws", 1) + "/ws", additional_headers=headers)
    await expect(ws, "ready")
    await ws.send(json.dumps({"type": "join", "ref": "j", "project_id": project["id"]}))
    await expect(ws, "joined")
    return ws, email


async def expect(ws: ClientConnection, kind: str) -> dict[str, Any]:
    while True:
        frame: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 30))
        if frame["type"] == kind:
            return frame


async def pings(ws: ClientConnection, seconds: float, interval_s: float) -> list[float]:
    """Ping round trips (ms), one ping at a time, every ``interval_s`` for ``seconds``."""
    samples: list[float] = []
    deadline = time.perf_counter() + seconds
    n = 0
    while time.perf_counter() < deadline:
        n += 1
        ref = f"p{n}"
        sent = time.perf_counter()
        await ws.send(json.dumps({"type": "ping", "ref": ref}))
        while True:
            frame = json.loads(await asyncio.wait_for(ws.recv(), 60))
            if frame["type"] == "pong" and frame.get("ref") == ref:
                break
        samples.append((time.perf_counter() - sent) * 1000)
        await asyncio.sleep(max(0.0, interval_s - (time.perf_counter() - sent)))
    return samples


async def rounds(make: Callable[[], Awaitable[Any]], stop: asyncio.Event) -> int:
    """Rounds of ``AT_ONCE`` concurrent requests until ``stop``; how many requests ran."""
    done = 0
    while not stop.is_set():
        await asyncio.gather(*(make() for _ in range(AT_ONCE)))
        done += AT_ONCE
    return done


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def measure(args: argparse.Namespace) -> list[dict[str, Any]]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="hash-stall-") as tmp:
        database_url = args.database_url or f"sqlite:///{tmp}/moodboard.sqlite3"
        if not args.database_url:
            migrate = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "server.cli",
                "migrate",
                env={**os.environ, "DATABASE_URL": database_url},
                cwd=ROOT,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
            await migrate.wait()
        server = await start_server(database_url, port, Path(tmp) / "server.log")
        try:
            async with httpx.AsyncClient(timeout=120) as http:
                ws, taken = await joined_socket(base, http)

                async def signup() -> None:
                    email = f"load-{uuid.uuid4().hex}@example.com"
                    body = {"email": email, "password": PASSWORD, "name": "Load"}
                    await http.post(f"{base}/api/auth/register", json=body)

                async def signup_taken() -> None:
                    body = {"email": taken, "password": PASSWORD, "name": "Load"}
                    await http.post(f"{base}/api/auth/register", json=body)

                async def login_wrong() -> None:
                    body = {"email": taken, "password": "not the right password"}
                    await http.post(f"{base}/api/auth/login", json=body)

                scenarios: dict[str, Callable[[], Awaitable[Any]] | None] = {
                    "idle": None,
                    "signup": signup,
                    "signup-taken": signup_taken,
                    "login-wrong": login_wrong,
                }
                results = []
                for name, make in scenarios.items():
                    stop = asyncio.Event()
                    load = asyncio.create_task(rounds(make, stop)) if make else None
                    samples = await pings(ws, args.seconds, args.interval_ms / 1000)
                    stop.set()
                    requests = await load if load else 0
                    results.append(
                        {
                            "scenario": name,
                            "pings": len(samples),
                            "p50_ms": round(statistics.median(samples), 2),
                            "p99_ms": round(percentile(samples, 0.99), 2),
                            "max_ms": round(max(samples), 2),
                            "requests": requests,
                        }
                    )
                await ws.close()
        finally:
            server.terminate()
            await server.wait()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="per scenario")
    parser.add_argument("--interval-ms", type=float, default=20.0, help="between pings")
    parser.add_argument("--database-url", help="default: a fresh embedded SQLite file")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    results = asyncio.run(measure(args))
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"{'scenario':<14}{'pings':>7}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'requests':>10}")
    for r in results:
        print(
            f"{r['scenario']:<14}{r['pings']:>7}{r['p50_ms']:>9}{r['p99_ms']:>9}"
            f"{r['max_ms']:>9}{r['requests']:>10}"
        )


if __name__ == "__main__":
    main()
