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
accounts (``DELETE /api/me``). Deleting is a soft delete: the rows and files go
for good when the maintenance job purges them, ``MOODBOARD_PURGE_AFTER_DAYS``
later, or at once with ``moodboard maintenance --purge-after-days 0`` on the
server (docs/load-testing.md "Clean up"). Only REST calls, made with the Python client
(``server.client.RestClient``): it works against any deployment, one
instance or several behind a balancer.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from server.client import ApiError, RestClient  # after the path line above: the repository root

PASSWORD = "load-test password 1"
DEFAULT_OUT = "load_seed.json"
PARALLEL = 8  # users or projects seeded at once
T = TypeVar("T")
R = TypeVar("R")
Clients = Callable[[str | None], RestClient]  # a RestClient acting with a token, one pool


class SeedError(RuntimeError):
    """A REST call failed; the message names the step and the server's reply."""


@contextlib.contextmanager
def step(what: str) -> Iterator[None]:
    """Name the step in the error when one of its REST calls fails."""
    try:
        yield
    except ApiError as exc:
        raise SeedError(f"{what}: {exc}") from exc


async def in_parallel(work: Callable[[T], Awaitable[R]], inputs: Iterable[T]) -> list[R]:
    """``work`` on every input, PARALLEL at a time; the results in the inputs' order."""
    sem = asyncio.Semaphore(PARALLEL)

    async def one(value: T) -> R:
        async with sem:
            return await work(value)

    return list(await asyncio.gather(*(one(value) for value in inputs)))


async def register(client: Clients, run: str, index: int) -> dict[str, Any]:
    email = f"load-{run}-{index}@example.com"
    result = await client(None).register(email, PASSWORD, f"Load {index}")
    return {"id": str(result.user.id), "email": email, "token": result.token}


async def make_project(
    client: Clients, users: list[dict[str, Any]], index: int, members: int, items: int
) -> dict[str, Any]:
    owner = index % len(users)
    rest = client(users[owner]["token"])
    project = (await rest.create_project(f"Load project {index}")).id
    room = (await rest.create_room(project, "Living room", "other")).id
    item_ids = [
        str((await rest.create_item(project, room, "note", x=10 * n, y=10 * n)).id)
        for n in range(items)
    ]
    member_indexes = [owner]
    for offset in range(1, min(members, len(users))):
        other = (owner + offset) % len(users)
        await rest.add_member(project, users[other]["email"], "editor")
        member_indexes.append(other)
    return {
        "id": str(project),
        "owner": owner,
        "room_id": str(room),
        "items": item_ids,
        "members": member_indexes,
    }


@contextlib.asynccontextmanager
async def clients(host: str) -> AsyncIterator[Clients]:
    """RestClients for any token, sharing one connection pool."""
    async with httpx.AsyncClient(timeout=60) as http:
        yield lambda token: RestClient(host, token=token, http=http)


def up(args: argparse.Namespace) -> dict[str, Any]:
    """Create users and projects; returns the seed document (also written to ``--out``)."""
    run = uuid.uuid4().hex[:8]
    users, projects = asyncio.run(create(args, run))
    seed = {
        "run": run,
        "host": args.host,
        "password": PASSWORD,
        "users": users,
        "projects": projects,
    }
    Path(args.out).write_text(json.dumps(seed, indent=1))
    return seed


async def create(
    args: argparse.Namespace, run: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The seed's users (credits granted when an admin is given), then its projects."""
    async with clients(args.host) as client:
        with step("register users"):
            users = await in_parallel(lambda i: register(client, run, i), range(args.users))
        if args.admin_email:
            admin = client(None)
            with step("admin login"):
                await admin.login(args.admin_email, args.admin_password)
            with step("grant credits"):
                await in_parallel(
                    lambda u: admin.grant_credits(u["id"], args.credits, "load test"), users
                )
        with step("create projects"):
            projects = await in_parallel(
                lambda i: make_project(client, users, i, args.members, args.items),
                range(args.projects),
            )
    return users, projects


def down(args: argparse.Namespace) -> None:
    """Delete the seeded projects and erase the seeded accounts."""
    seed = json.loads(Path(args.seed).read_text())
    asyncio.run(remove(seed, args.host or seed["host"]))
    Path(args.seed).unlink()


async def remove(seed: dict[str, Any], host: str) -> None:
    """Delete the projects (each by its owner), then erase the accounts."""
    users = seed["users"]
    async with clients(host) as client:
        with step("delete projects"):
            await in_parallel(
                lambda p: client(users[p["owner"]]["token"]).delete_project(p["id"]),
                seed["projects"],
            )
        with step("erase accounts"):
            await in_parallel(lambda u: client(u["token"]).erase_account(seed["password"]), users)


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
            print(
                f"deleted the seeded projects and erased the users of {args.seed}; they are "
                "purged after MOODBOARD_PURGE_AFTER_DAYS, or now with "
                "`moodboard maintenance --purge-after-days 0` on the server"
            )
    except (SeedError, httpx.HTTPError) as exc:
        print(f"seed {args.command}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
