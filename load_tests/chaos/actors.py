"""The chaos run's recording clients (subscribers, the racing joiner) and what they share.

Every actor draws its choices from its own ``random.Random`` derived from the
run's seed, so a seed gives the same schedule as far as timing allows.
Subscribers use a raw ``websockets`` client (they choose the instance of each
reconnect, stop reading on demand and record every frame); REST calls go to a
random live instance and try another one when an instance is down.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException

from load_tests.chaos.records import (
    Journal,
    Pause,
    Received,
    SessionEnd,
)
from load_tests.chaos.topology import Instance, Topology

PASSWORD = "chaos password 1"
ITEMS_PER_PROJECT = 10
SUBSCRIBER_RECEIVE_BUFFER = 16 * 1024


class Unavailable(Exception):
    """No instance answered a REST call (all down or all failing)."""


@dataclass
class User:
    id: str
    email: str
    name: str


@dataclass
class World:
    """The accounts and projects every actor works on."""

    owner: User
    owner_token: str
    members: list[User]
    member_tokens: list[str]  # the editors' session of each member
    projects: list[str]
    rooms: dict[str, str]  # project -> its room
    items: dict[str, list[str]]  # project -> its items
    versions: dict[str, int] = field(default_factory=dict)  # item -> newest version seen


class Api:
    """REST calls to a random live instance, retried on another one when it is down."""

    def __init__(self, topology: Topology, rng: random.Random) -> None:
        self.topology = topology
        self.rng = rng
        self.http = httpx.AsyncClient(timeout=10.0)

    async def aclose(self) -> None:
        await self.http.aclose()

    async def call(
        self, method: str, path: str, token: str | None, body: Any = None, attempts: int = 6
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        for _ in range(attempts):
            live = self.topology.live()
            instance = self.rng.choice(live or self.topology.instances)
            try:
                response = await self.http.request(
                    method, instance.url + path, headers=headers, json=body
                )
            except httpx.TransportError:
                await asyncio.sleep(0.3)
                continue
            self.http.cookies.clear()
            if response.status_code < 500:
                return response
            await asyncio.sleep(0.3)
        raise Unavailable(f"{method} {path}")


async def make_world(api: Api, members: int, projects: int) -> World:
    """An owner, ``members`` editors on every project, ``projects`` projects of 10 items."""
    run = uuid.uuid4().hex[:6]

    async def register(name: str) -> tuple[User, str]:
        email = f"{name}-{run}@example.com"
        body = {"email": email, "password": PASSWORD, "name": name}
        answer = (await api.call("POST", "/api/auth/register", None, body)).json()
        return User(answer["user"]["id"], email, name), answer["token"]

    owner, owner_token = await register("owner")
    people = [await register(f"member{n}") for n in range(members)]
    world = World(owner, owner_token, [u for u, _ in people], [t for _, t in people], [], {}, {})
    for n in range(projects):
        project = (await api.call("POST", "/api/projects", owner_token, {"name": f"p{n}"})).json()
        pid = project["id"]
        path = f"/api/projects/{pid}"
        room = (
            await api.call(
                "POST", f"{path}/rooms", owner_token, {"name": "r", "room_type": "other"}
            )
        ).json()
        items = []
        for _ in range(ITEMS_PER_PROJECT):
            item = (
                await api.call(
                    "POST", f"{path}/rooms/{room['id']}/items", owner_token, {"kind": "note"}
                )
            ).json()
            items.append(item["id"])
            world.versions[item["id"]] = item["version"]
        for member in world.members:
            await api.call(
                "POST", f"{path}/members", owner_token, {"email": member.email, "role": "editor"}
            )
        world.projects.append(pid)
        world.rooms[pid] = room["id"]
        world.items[pid] = items
    return world


async def open_socket(
    instance: Instance, token: str, receive_buffer: int | None = None
) -> ClientConnection:
    """A socket authenticated with ``token`` (raises when refused).

    ``receive_buffer``: a small kernel receive buffer, so that a client that
    stops reading pushes back on the server within seconds (as a phone on a
    bad network does), not after megabytes.
    """
    sock: socket.socket | None = None
    if receive_buffer is not None:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        sock.setblocking(False)
        try:
            await asyncio.wait_for(
                asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", instance.port)), 10
            )
        except BaseException:
            sock.close()
            raise
    ws = await connect(
        instance.ws_url,
        sock=sock,
        additional_headers={"Authorization": f"Bearer {token}"},
        ping_interval=None,
        open_timeout=10,
        close_timeout=2,
        max_queue=16,
    )
    try:
        ready = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if ready.get("type") != "ready":
            raise WebSocketException(f"expected ready, got {ready}")
    except BaseException:
        ws.transport.abort()
        raise
    return ws


class Subscriber:
    """A recording client: joins projects, leaves, reconnects anywhere with last_seq.

    It records every joined/event/left frame and every close, and trusts the
    server as a real client does: its ``last_seq`` is the last event it got.
    """

    def __init__(
        self,
        name: str,
        user: User,
        projects: list[str],
        topology: Topology,
        api: Api,
        world: World,
        journal: Journal,
        rng: random.Random,
    ) -> None:
        self.name, self.user, self.projects = name, user, projects
        self.topology, self.api, self.world, self.journal, self.rng = (
            topology,
            api,
            world,
            journal,
            rng,
        )
        self.token = ""
        self.session = 0
        self.conn = 0
        self.tips: dict[str, int] = {}
        self.joined: set[str] = set()
        self.joining: set[str] = set()  # join sent, no answer yet
        self.instance: Instance | None = None
        self.ws: ClientConnection | None = None
        self.reading = asyncio.Event()
        self.reading.set()
        self.settling = False  # the end of the run: no more random actions
        self.sent_last_seq: dict[str, int | None] = {}  # project -> last_seq of its last join
        self.rejoins: set[asyncio.Task[None]] = set()
        self.act_every = (1.0, 4.0)  # seconds between two random actions
        self.left = asyncio.Event()  # set by every ``left``

    def _record(self, kind: str, **fields: Any) -> None:
        self.journal.received.append(
            Received(
                time.monotonic(),
                self.name,
                self.user.id,
                self.conn,
                self.session,
                kind,  # type: ignore[arg-type]
                **fields,
            )
        )

    async def login(self) -> None:
        body = {"email": self.user.email, "password": PASSWORD}
        answer = (await self.api.call("POST", "/api/auth/login", None, body)).json()
        self.token, self.session = answer["token"], self.session + 1

    async def logout(self) -> None:
        """Log this client's session out; recorded when the 204 arrives."""
        session = self.session
        response = await self.api.call("POST", "/api/auth/logout", self.token)
        if response.status_code == 204:
            self.journal.session_ends.append(
                SessionEnd(self.name, session, time.monotonic(), time.time())
            )

    def instance_now(self) -> Instance | None:
        return self.instance if self.ws is not None else None

    async def pause(self, seconds: float) -> None:
        """Stop reading the socket for ``seconds`` (the TCP window fills, frames wait)."""
        ws, started = self.ws, time.monotonic()
        self.reading.clear()
        if ws is not None:
            ws.transport.pause_reading()
        try:
            await asyncio.sleep(seconds)
        finally:
            self.reading.set()
            if ws is not None and not ws.transport.is_closing():
                ws.transport.resume_reading()
            self.journal.pauses.append(Pause(self.name, started, time.monotonic()))

    async def run(self, stop: asyncio.Event) -> None:
        await self.login()
        while not stop.is_set():
            with contextlib.suppress(OSError, TimeoutError, WebSocketException, Unavailable):
                await self._one_socket(stop)
            if not stop.is_set():
                await asyncio.sleep(self.rng.uniform(0.1, 0.5))

    async def _one_socket(self, stop: asyncio.Event) -> None:
        live = self.topology.live()
        if not live:
            return
        self.instance = self.rng.choice(live)
        try:
            ws = await open_socket(self.instance, self.token, SUBSCRIBER_RECEIVE_BUFFER)
        except ConnectionClosed as closed:
            if closed.rcvd is not None and closed.rcvd.code == 4401:
                await self.login()
            return
        self.conn += 1
        self.ws, self.joined, self.joining = ws, set(), set()
        reader = asyncio.create_task(self._read(ws))
        try:
            for pid in self.projects:
                await self._join(ws, pid)
            while not reader.done() and not stop.is_set():
                await asyncio.wait({reader}, timeout=self.rng.uniform(*self.act_every))
                await self.reading.wait()  # a client that stopped reading does nothing else
                if reader.done() or stop.is_set():
                    break
                await self._act(ws)
        finally:
            if not reader.done():
                await ws.close()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(reader), 3)
                reader.cancel()
                ws.transport.abort()
            self.ws = None
        code = reader.result() if reader.done() and not reader.cancelled() else None
        if code == 4401:
            await self.login()

    async def _act(self, ws: ClientConnection) -> None:
        """One random action of a connected client (or, when settling, rejoin what it lacks)."""
        missing = [p for p in self.projects if p not in self.joined and p not in self.joining]
        for pid in missing:  # refused or revoked earlier: access may be back
            await self._join(ws, pid)
        if self.settling:
            return
        roll = self.rng.random()
        if roll < 0.12:
            await ws.close()  # reconnect elsewhere, resuming with last_seq
        elif roll < 0.2:
            ws.transport.abort()  # a network cut: no closing handshake
        elif roll < 0.45 and self.joined:
            pid = self.rng.choice(sorted(self.joined))
            await ws.send(json.dumps({"type": "leave", "ref": f"l:{pid}", "project_id": pid}))

    async def _join(self, ws: ClientConnection, pid: str) -> None:
        frame: dict[str, Any] = {"type": "join", "ref": f"j:{pid}", "project_id": pid}
        if pid in self.tips:
            frame["last_seq"] = self.tips[pid]
        self.sent_last_seq[pid] = self.tips.get(pid)
        self.joining.add(pid)
        with contextlib.suppress(ConnectionClosed):
            await ws.send(json.dumps(frame))

    async def _read(self, ws: ClientConnection) -> int:
        """Record every frame until the socket closes; the close code."""
        try:
            while True:
                await self.reading.wait()
                self._on_frame(ws, json.loads(await ws.recv()))
        except ConnectionClosed as closed:
            code = closed.rcvd.code if closed.rcvd is not None else 1006
            self._record("closed", code=code)
            self.joined = set()
            return code

    def _on_frame(self, ws: ClientConnection, frame: dict[str, Any]) -> None:
        kind, pid = frame.get("type"), str(frame.get("project_id"))
        if kind == "event":
            self._record(
                "event",
                project_id=pid,
                seq=frame["seq"],
                event_kind=frame.get("kind"),
                entity=frame.get("entity"),
                id=frame.get("id"),
                version=frame.get("version"),
                data=frame.get("data"),
            )
            self.tips[pid] = frame["seq"]
            if frame.get("entity") == "item" and frame.get("version") is not None:
                book = self.world.versions
                book[frame["id"]] = max(book.get(frame["id"], 0), frame["version"])
        elif kind == "joined":
            snapshot = frame.get("snapshot")
            self._record(
                "joined",
                project_id=pid,
                seq=frame["seq"],
                mode=frame.get("mode"),
                last_seq=self.sent_last_seq.get(pid),
                snapshot_items=snapshot.get("items") if snapshot else None,
            )
            self.joined.add(pid)
            self.joining.discard(pid)
            if frame.get("mode") == "snapshot":
                self.tips[pid] = frame["seq"]
        elif kind == "left":
            self._record("left", project_id=pid, reason=frame.get("reason"))
            self.joined.discard(pid)
            self.left.set()
            if str(frame.get("ref", "")).startswith("l:"):
                task = asyncio.create_task(self._rejoin_later(ws, pid))
                self.rejoins.add(task)
                task.add_done_callback(self.rejoins.discard)
        elif kind == "error" and str(frame.get("ref", "")).startswith("j:"):
            pid = frame["ref"][2:]
            self.joining.discard(pid)
            self._record("join_refused", project_id=pid, reason=frame.get("code"))

    async def _rejoin_later(self, ws: ClientConnection, pid: str) -> None:
        await asyncio.sleep(self.rng.uniform(0.0, 0.5))
        if self.ws is ws:
            await self._join(ws, pid)


class RacingJoiner(Subscriber):
    """The only client of its project: leaves, then joins again while two writes race the join.

    Its join is then the project's first on that instance, and an outside
    write (arriving by NOTIFY) and a server edit (arriving over Redis) land
    while the join reads its snapshot or replay: the handover must still
    deliver both, in order.
    """

    def __init__(self, *args: Any, race: Callable[[], Awaitable[None]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.race = race
        self.act_every = (0.3, 1.0)

    async def _act(self, ws: ClientConnection) -> None:
        if self.settling:
            await super()._act(ws)
            return
        pid = self.projects[0]
        if pid in self.joined:
            self.left.clear()
            await ws.send(json.dumps({"type": "leave", "ref": f"x:{pid}", "project_id": pid}))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.left.wait(), 2.0)
        if pid in self.joined or pid in self.joining:
            return
        if self.rng.random() < 0.5:  # a new client half the time: a snapshot join
            self.tips.pop(pid, None)
        # The writes take a few to tens of ms to commit: start one side a little later.
        join_delay, race_delay = self.rng.uniform(0.0, 0.03), self.rng.uniform(0.0, 0.015)
        if self.rng.random() < 0.5:
            join_delay = 0.0
        else:
            race_delay = 0.0
        await asyncio.gather(
            self._after(join_delay, lambda: self._join(ws, pid)), self._after(race_delay, self.race)
        )

    @staticmethod
    async def _after(delay_s: float, action: Callable[[], Awaitable[None]]) -> None:
        await asyncio.sleep(delay_s)
        await action()
