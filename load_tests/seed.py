"""Seed a server for a Locust run over REST, and remove what was seeded afterwards.

    python load_tests/seed.py up --host http://127.0.0.1:8000 --users 20 --projects 50
    python load_tests/seed.py down            # reads load_seed.json

``up`` registers K users, creates P projects (owners taken round-robin) each
with one room, a few items and ``--members`` editors, and writes everything
the locustfile needs (tokens, project, room and item ids, memberships) to a
JSON file (``--out``, default ``load_seed.json``). With ``--admin-email`` /
``--admin-password`` (a platform admin made with ``moodboard create-admin``)
it also grants every user ``--credits`` credits (``POST /api/admin/users/{id}/credits``)
so GenerationWatcher users can keep requesting generations; without them the
users have the server's signup credits (``MOODBOARD_SIGNUP_CREDITS``).

``down`` deletes the seeded projects (as their owners) and erases the seeded
accounts (``DELETE /api/me``). Only REST calls: it works against any
deployment, one instance or several behind a balancer.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

PASSWORD = "load-test password 1"
DEFAULT_OUT = "load_seed.json"
PARALLEL = 8  # concurrent REST calls while seeding


class SeedError(RuntimeError):
    """A REST call failed; the message names the call and the server's reply."""


def call(client: httpx.Client, method: str, path: str, token: str | None = None, **kw: Any) -> Any:
    """One REST call; raises SeedError unless it answers 2xx. Returns the JSON body, if any."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    reply = client.request(method, path, headers=headers, **kw)
    if reply.status_code >= 300:
        raise SeedError(f"{method} {path}: {reply.status_code} {reply.text[:300]}")
    return reply.json() if reply.content else None


def register(client: httpx.Client, run: str, index: int) -> dict[str, Any]:
    email = f"load-{run}-{index}@example.com"
    body = call(
        client,
        "POST",
        "/api/auth/register",
        json={"email": email, "password": PASSWORD, "name": f"Load {index}"},
    )
    return {"id": body["user"]["id"], "email": email, "token": body["token"]}


def make_project(
    client: httpx.Client, users: list[dict[str, Any]], index: int, members: int, items: int
) -> dict[str, Any]:
    owner = index % len(users)
    token = users[owner]["token"]
    project = call(client, "POST", "/api/projects", token, json={"name": f"Load project {index}"})
    pid = project["id"]
    room = call(client, "POST", f"/api/projects/{pid}/rooms", token, json={"name": "Living room"})[
        "id"
    ]
    item_ids = [
        call(
            client,
            "POST",
            f"/api/projects/{pid}/rooms/{room}/items",
            token,
            json={"kind": "note", "x": 10 * n, "y": 10 * n},
        )["id"]
        for n in range(items)
    ]
    member_indexes = [owner]
    for step in range(1, min(members, len(users))):
        other = (owner + step) % len(users)
        call(
            client,
            "POST",
            f"/api/projects/{pid}/members",
            token,
            json={"email": users[other]["email"], "role": "editor"},
        )
        member_indexes.append(other)
    return {
        "id": pid,
        "owner": owner,
        "room_id": room,
        "items": item_ids,
        "members": member_indexes,
    }


def up(args: argparse.Namespace) -> dict[str, Any]:
    """Create users and projects; returns the seed document (also written to ``--out``)."""
    run = uuid.uuid4().hex[:8]
    with (
        httpx.Client(base_url=args.host, timeout=60) as client,
        ThreadPoolExecutor(PARALLEL) as pool,
    ):
        users = list(pool.map(lambda i: register(client, run, i), range(args.users)))
        if args.admin_email:
            admin = call(
                client,
                "POST",
                "/api/auth/login",
                json={"email": args.admin_email, "password": args.admin_password},
            )["token"]
            list(
                pool.map(
                    lambda u: call(
                        client,
                        "POST",
                        f"/api/admin/users/{u['id']}/credits",
                        admin,
                        json={"delta": args.credits, "reason": "load test"},
                    ),
                    users,
                )
            )
        projects = list(
            pool.map(
                lambda i: make_project(client, users, i, args.members, args.items),
                range(args.projects),
            )
        )
    seed = {
        "run": run,
        "host": args.host,
        "password": PASSWORD,
        "users": users,
        "projects": projects,
    }
    Path(args.out).write_text(json.dumps(seed, indent=1))
    return seed


def down(args: argparse.Namespace) -> None:
    """Delete the seeded projects and erase the seeded accounts."""
    seed = json.loads(Path(args.seed).read_text())
    users = seed["users"]
    with (
        httpx.Client(base_url=args.host or seed["host"], timeout=60) as client,
        ThreadPoolExecutor(PARALLEL) as pool,
    ):
        list(
            pool.map(
                lambda p: call(
                    client, "DELETE", f"/api/projects/{p['id']}", users[p["owner"]]["token"]
                ),
                seed["projects"],
            )
        )
        list(
            pool.map(
                lambda u: call(
                    client, "DELETE", "/api/me", u["token"], json={"password": seed["password"]}
                ),
                users,
            )
        )
    Path(args.seed).unlink()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    seed_up = commands.add_parser("up", help="create users and projects, write the seed file")
    seed_up.add_argument("--host", default="http://127.0.0.1:8000")
    seed_up.add_argument("--users", type=int, default=20, help="K accounts (default 20)")
    seed_up.add_argument("--projects", type=int, default=50, help="P projects (default 50)")
    seed_up.add_argument(
        "--members", type=int, default=5, help="members per project, owner included"
    )
    seed_up.add_argument("--items", type=int, default=10, help="items per project")
    seed_up.add_argument("--admin-email", help="platform admin granting credits (optional)")
    seed_up.add_argument("--admin-password")
    seed_up.add_argument("--credits", type=int, default=100_000, help="credits granted per user")
    seed_up.add_argument("--out", default=DEFAULT_OUT)
    seed_down = commands.add_parser("down", help="delete what `up` created")
    seed_down.add_argument("--seed", default=DEFAULT_OUT, help="the seed file `up` wrote")
    seed_down.add_argument("--host", help="default: the host recorded in the seed file")
    args = parser.parse_args(argv)
    if args.command == "up" and min(args.users, args.projects, args.members) < 1:
        parser.error("--users, --projects and --members must be at least 1")
    try:
        if args.command == "up":
            seed = up(args)
            print(
                f"seeded {len(seed['users'])} users and {len(seed['projects'])} projects "
                f"into {args.out}"
            )
        else:
            down(args)
            print(f"removed the seeded projects and users of {args.seed}")
    except (SeedError, httpx.HTTPError) as exc:
        print(f"seed {args.command}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
