"""Run the chaos test: start the topology, drive actors and faults, settle, check, report.

Exit status 0 when no guarantee was broken, 1 otherwise (2: the run itself
could not be carried out).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg

from load_tests.chaos import actors, writers
from load_tests.chaos.actors import Api, RacingJoiner, Subscriber, Unavailable
from load_tests.chaos.checker import Violation, check
from load_tests.chaos.faults import Injector, schedule
from load_tests.chaos.records import DatabaseState, Journal, LoggedEvent
from load_tests.chaos.report import render, summarize
from load_tests.chaos.topology import Topology, running_topology
from load_tests.chaos.writers import AccessChanger, SocketEditor

MEMBERS = 3
PROJECTS = 3  # shared by the recording clients; one more is the racing joiner's alone
OWNER_SUBSCRIBERS = 2
SETTLE_S = 30.0
BURST_NOTES = 40  # ~480 KiB of events toward a client that stopped reading


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m load_tests.chaos", description=__doc__)
    parser.add_argument("--minutes", type=float, default=1.0, help="how long faults and actors run")
    parser.add_argument(
        "--seed", type=int, default=None, help="the schedule's seed (default: random)"
    )
    parser.add_argument("--instances", type=int, default=3, choices=(2, 3))
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(1_000_000)
    return asyncio.run(chaos(args.minutes, seed, args.instances))


async def chaos(minutes: float, seed: int, instances: int) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="moodboard-chaos-"))
    journal = Journal()
    run = {"seed": seed, "minutes": minutes, "instances": instances, "logs": str(workdir / "logs")}
    print(f"chaos: seed {seed}, starting {instances} instances in {workdir}", flush=True)
    async with running_topology(workdir, instances) as topology:
        api = Api(topology, random.Random(f"{seed}-api"))
        try:
            db, violations = await drive(topology, api, journal, seed, minutes * 60)
        finally:
            await api.aclose()
    summary = summarize(journal, db, violations, run)
    print(render(summary, journal, violations), flush=True)
    return 1 if violations else 0


async def drive(
    topology: Topology, api: Api, journal: Journal, seed: int, seconds: float
) -> tuple[DatabaseState, list[Violation]]:
    """Actors and faults for ``seconds`` (and until every planned fault ran); settle; check."""
    world = await actors.make_world(api, MEMBERS, PROJECTS + 1)
    shared, race_project = world.projects[:-1], world.projects[-1]

    def rng_of(name: str) -> random.Random:
        return random.Random(f"{seed}-{name}")

    def subscriber(name: str, user: actors.User, projects: list[str]) -> Subscriber:
        return Subscriber(name, user, projects, topology, api, world, journal, rng_of(name))

    # Members watch two projects each: a project then often has a first joiner on an instance.
    owners = [subscriber(f"owner-{n}", world.owner, shared) for n in range(OWNER_SUBSCRIBERS)]
    members = [
        subscriber(f"member{n}", m, rng_of(f"member{n}").sample(shared, 2))
        for n, m in enumerate(world.members)
    ]
    race_rng = rng_of("race")
    race_sql: list[asyncpg.Connection] = []

    async def race() -> None:
        """An outside write (NOTIFY) then a server edit (Redis), racing a join."""
        item = race_rng.choice(world.items[race_project])
        with contextlib.suppress(OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            if not race_sql or race_sql[0].is_closed():
                race_sql[:] = [await asyncpg.connect(topology.postgres.url, timeout=5)]
            await race_sql[0].execute(
                "UPDATE item SET rotation = $1 WHERE id = $2",
                race_rng.uniform(0, 360),
                uuid.UUID(item),
            )
        body = {"base_version": world.versions.get(item, 1), "h": race_rng.uniform(10, 500)}
        with contextlib.suppress(Unavailable):
            path = f"/api/projects/{race_project}/items/{item}"
            await api.call("PATCH", path, world.owner_token, body, attempts=1)

    racer = RacingJoiner(
        "racer",
        world.owner,
        [race_project],
        topology,
        api,
        world,
        journal,
        rng_of("racer"),
        race=race,
    )
    subscribers = [*owners, *members, racer]
    access = AccessChanger(api, world, journal, rng_of("access"))
    logout_rng = rng_of("logout")

    async def logout_one() -> None:
        await logout_rng.choice(members).logout()

    watched = {(s.user.id, p) for s in members for p in s.projects}

    async def during_bus_outage() -> None:
        with contextlib.suppress(Unavailable):
            await access.change_one(among=watched)  # a member whose client is joined there
        with contextlib.suppress(Unavailable):
            await logout_one()

    stop_actors, stop_subscribers = asyncio.Event(), asyncio.Event()
    subscriber_tasks = [asyncio.create_task(s.run(stop_subscribers)) for s in subscribers]
    actor_tasks = [
        asyncio.create_task(access.run(stop_actors)),
        asyncio.create_task(
            writers.forever(lambda: logout_rng.uniform(4.0, 8.0), logout_one, stop_actors)
        ),
        asyncio.create_task(
            writers.outside_writer(
                topology.postgres.url, world, journal, rng_of("sql"), stop_actors
            )
        ),
    ]
    for n, (member, token) in enumerate(zip(world.members, world.member_tokens, strict=True)):
        editor = SocketEditor(member, token, topology, world, journal, rng_of(f"ws-editor{n}"))
        actor_tasks.append(asyncio.create_task(editor.run(stop_actors)))
        rest_rng = rng_of(f"rest-editor{n}")
        actor_tasks.append(
            asyncio.create_task(
                writers.rest_editor(token, api, world, journal, rest_rng, stop_actors)
            )
        )
    burst_rng = rng_of("burst")

    async def burst(projects: list[str]) -> None:
        await writers.burst(api, world, projects, BURST_NOTES, burst_rng)

    injector = Injector(topology, subscribers, journal, rng_of("faults"), during_bus_outage, burst)
    plan = schedule(random.Random(seed), seconds)
    started = time.monotonic()
    try:
        faults = asyncio.create_task(injector.run(plan, started, asyncio.Event()))
        await asyncio.sleep(seconds)
        await faults  # every planned fault runs, even when the run's time is up
    finally:
        stop_actors.set()
        await asyncio.wait(actor_tasks, timeout=15)
        await access.restore_all()
        await injector.heal()
    for s in subscribers:
        s.settling = True
    await settle(topology.postgres.url, subscribers)
    db = await read_database(topology.postgres.url)
    ends = {(s.name, p): s.tips.get(p) for s in subscribers for p in s.projects if p in s.joined}
    stop_subscribers.set()
    for task in subscriber_tasks + actor_tasks:
        task.cancel()
    await asyncio.gather(*subscriber_tasks, *actor_tasks, return_exceptions=True)
    return db, check(journal, db, ends)


async def heads(database_url: str) -> dict[str, int]:
    db = await asyncpg.connect(database_url, timeout=10)
    try:
        return {str(r["id"]): r["seq"] for r in await db.fetch("SELECT id, seq FROM project")}
    finally:
        await db.close()


async def settle(database_url: str, subscribers: list[Subscriber]) -> None:
    """Wait (up to SETTLE_S) until every client is joined everywhere at the head."""
    deadline = time.monotonic() + SETTLE_S
    while time.monotonic() < deadline:
        now = await heads(database_url)
        if all(s.tips.get(p) == now[p] and p in s.joined for s in subscribers for p in s.projects):
            return
        await asyncio.sleep(0.25)


async def read_database(database_url: str) -> DatabaseState:
    db = await asyncpg.connect(database_url, timeout=10)
    try:
        items: dict[str, dict[str, dict[str, object]]] = {}
        for row in await db.fetch(
            "SELECT id, project_id, room_id, kind, x, y, w, h, rotation, z, data, version FROM item"
        ):
            item = dict(row)
            item.update(
                id=str(row["id"]), room_id=str(row["room_id"]), data=json.loads(row["data"])
            )
            items.setdefault(str(row["project_id"]), {})[item["id"]] = item
        events = [
            LoggedEvent(
                str(r["project_id"]),
                r["seq"],
                r["kind"],
                r["entity"],
                str(r["entity_id"]),
                None if r["actor_id"] is None else str(r["actor_id"]),
                json.loads(r["data"]),
                r["at"].timestamp(),
            )
            for r in await db.fetch(
                "SELECT project_id, seq, kind, entity, entity_id, actor_id, data, at FROM event"
            )
        ]
        heads_now = {str(r["id"]): r["seq"] for r in await db.fetch("SELECT id, seq FROM project")}
        return DatabaseState(heads_now, items, events)
    finally:
        await db.close()
