"""Locust users for Moodboard Realtime: editors, viewers and generation watchers on /ws.

Locust ships no plain-WebSocket user, so :class:`RealtimeSocket` is a small
one on ``websocket-client`` (gevent-friendly: Locust monkey-patches sockets)
that reports every exchange into Locust's statistics (request type ``WS``):

- ``connect+auth``: TCP + upgrade + the ``ready`` frame (docs/protocol.md §3.1);
- ``join``: ``join`` -> ``joined`` (3.2);
- ``edit->ack``: an edit to its ``ack`` (3.3); ``edit->conflict`` when the
  server answered a conflict instead (normal under concurrent edits);
- ``edit->peer``: an edit to its event at *another* socket of the project;
  the op_id carries the send time, so this works across Locust workers on
  one machine (or machines with synchronised clocks);
- ``presence``: a cursor move to its ``presence_diff`` at another socket;
- ``generation->first progress`` / ``generation->succeeded``: a REST
  generation request to its first ``generation.progress`` / its
  ``generation.succeeded`` event.

Every socket checks that each project's events arrive exactly once, in seq
order, without gaps; a gap, an unexpected close or an error frame is a
failure (``seq gap``, ``disconnect``, ``error``). A closed socket reconnects
and resumes with ``last_seq``.

Before a run, seed the server (``python load_tests/seed.py up``): the users
read the seed file (``--seed-file``, default ``load_seed.json``). Generations
only progress when a worker runs (``moodboard worker``, or
``MOODBOARD_INPROCESS_WORKER=true`` on the server); without one every
GenerationWatcher request fails after ``--generation-timeout``. See
docs/load-testing.md.
"""

from __future__ import annotations

import json
import random
import sys
import time
import uuid
from collections import OrderedDict
from pathlib import Path
from typing import Any

import gevent
import msgspec
import websocket
from gevent.event import AsyncResult
from locust import User, between, events, task
from locust.clients import HttpSession
from locust.env import Environment

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from server.realtime import protocol as wire  # after the path line above: the repository root

REPLY_TIMEOUT_S = 10.0
GENERATION_SLOTS = 1000  # generation ids remembered per socket (bounded)
_decoder: msgspec.json.Decoder[wire.ServerFrame] = msgspec.json.Decoder(wire.ServerFrame)
_encoder = msgspec.json.Encoder()
_seeds: dict[str, dict[str, Any]] = {}
FINISHED = ("generation.succeeded", "generation.failed", "generation.canceled")


@events.init_command_line_parser.add_listener
def _arguments(parser: Any) -> None:
    parser.add_argument(
        "--seed-file",
        default="load_seed.json",
        env_var="MOODBOARD_LOAD_SEED",
        help="the JSON written by load_tests/seed.py up",
    )
    parser.add_argument(
        "--generation-timeout",
        type=float,
        default=60.0,
        help="seconds a GenerationWatcher waits for a generation to succeed",
    )


def load_seed(environment: Environment) -> dict[str, Any]:
    """The seed document (read once per process)."""
    path = environment.parsed_options.seed_file if environment.parsed_options else "load_seed.json"
    if path not in _seeds:
        _seeds[path] = json.loads(Path(path).read_text())
    return _seeds[path]


def socket_url(host: str) -> str:
    """``http(s)://host[:port]`` -> ``ws(s)://host[:port]/ws``."""
    return host.rstrip("/").replace("https://", "wss://", 1).replace("http://", "ws://", 1) + "/ws"


def next_text(ws: websocket.WebSocket) -> bytes:
    """The next text frame (pings are answered on the way).

    Raises:
        ConnectionError: the server closed the socket; the message has its close code.
    """
    opcode, data = ws.recv_data()
    if opcode == websocket.ABNF.OPCODE_CLOSE:
        code = int.from_bytes(data[:2], "big") if len(data) >= 2 else None
        raise ConnectionError(f"closed by the server with {code}")
    return bytes(data)


def now_us() -> int:
    return time.time_ns() // 1000


class RealtimeSocket:
    """One /ws connection of a Locust user: requests with replies, and a reader greenlet.

    The reader checks seq continuity per joined project, measures peer
    latencies from op_ids and presence states stamped with their send time,
    and resolves the replies the user waits for.
    """

    def __init__(self, user: User, url: str, token: str) -> None:
        self.user, self.url, self.token = user, url, token
        self.tag = uuid.uuid4().hex[:10]  # marks this socket's op_ids and presence
        self.ws: websocket.WebSocket | None = None
        self.reader: gevent.Greenlet | None = None
        self.closing = False
        self.refs = 0
        self.waiting: dict[str, AsyncResult] = {}
        self.seq: dict[str, int] = {}  # project id -> last seq received
        self.versions: dict[str, int] = {}  # item id -> latest version seen
        self.generations: OrderedDict[str, dict[str, AsyncResult]] = OrderedDict()

    # -- reporting ---------------------------------------------------------

    def report(
        self, name: str, started: float, length: int = 0, exc: Exception | None = None
    ) -> None:
        """One exchange into Locust's statistics (``started`` from time.perf_counter)."""
        self.report_ms(name, (time.perf_counter() - started) * 1000, length, exc)

    def report_ms(
        self, name: str, ms: float, length: int = 0, exc: Exception | None = None
    ) -> None:
        self.user.environment.events.request.fire(
            request_type="WS",
            name=name,
            response_time=ms,
            response_length=length,
            exception=exc,
            context={},
        )

    # -- lifecycle ---------------------------------------------------------

    def connect(self) -> bool:
        """Open the socket and wait for ``ready``; False (reported) when that fails."""
        started = time.perf_counter()
        try:
            self.ws = websocket.create_connection(
                self.url, header=[f"Authorization: Bearer {self.token}"], timeout=REPLY_TIMEOUT_S
            )
            first = _decoder.decode(next_text(self.ws))
            if not isinstance(first, wire.Ready):
                raise ConnectionError(f"expected ready, got {first!r}")
            self.ws.settimeout(None)
        except Exception as exc:
            self.report("connect+auth", started, exc=exc)
            self.ws = None
            return False
        self.report("connect+auth", started)
        self.reader = gevent.spawn(self._read, self.ws)
        return True

    def close(self) -> None:
        self.closing = True
        if self.reader is not None:  # first: two greenlets must not read one socket
            self.reader.kill(block=True, timeout=1)
        if self.ws is not None:
            self.ws.close(timeout=1)

    @property
    def open(self) -> bool:
        return self.ws is not None and self.ws.connected

    # -- requests ----------------------------------------------------------

    def send(self, message: Any) -> int:
        if self.ws is None:
            raise ConnectionError("the socket is closed")
        data = _encoder.encode(message)
        self.ws.send(data.decode())
        return len(data)

    def request(self, make: Any, name: str) -> Any:
        """Send ``make(ref)`` and wait for the reply with that ref; report it under ``name``."""
        self.refs += 1
        ref = f"{self.tag}-{self.refs}"
        slot = self.waiting[ref] = AsyncResult()
        started = time.perf_counter()
        try:
            length = self.send(make(ref))
            reply = slot.get(timeout=REPLY_TIMEOUT_S)
        except Exception as exc:
            self.report(name, started, exc=exc)
            return None
        finally:
            self.waiting.pop(ref, None)
        if isinstance(reply, wire.Error):
            self.report(name, started, exc=RuntimeError(f"{reply.code}: {reply.message}"))
            return None
        if isinstance(reply, wire.Conflict):
            name = name.replace("ack", "conflict")
        self.report(name, started, length)
        return reply

    def join(self, project_id: str) -> wire.Joined | None:
        """Join (resuming with last_seq after a reconnect); remembers item versions."""
        last = self.seq.get(project_id)
        joined = self.request(
            lambda ref: wire.Join(ref=ref, project_id=uuid.UUID(project_id), last_seq=last), "join"
        )
        return joined if isinstance(joined, wire.Joined) else None

    def edit_item(self, project_id: str, item_id: str, data: dict[str, Any]) -> None:
        op_id = f"lt.{now_us()}.{self.tag}.{uuid.uuid4().hex[:8]}"
        reply = self.request(
            lambda ref: wire.Edit(
                ref=ref,
                project_id=uuid.UUID(project_id),
                op_id=op_id,
                action="update",
                entity="item",
                id=uuid.UUID(item_id),
                base_version=self.versions.get(item_id, 1),
                data=data,
            ),
            "edit->ack",
        )
        if isinstance(reply, wire.Ack) and reply.version is not None:
            self.versions[item_id] = max(self.versions.get(item_id, 1), reply.version)
        elif isinstance(reply, wire.Conflict) and reply.current_version is not None:
            self.versions[item_id] = reply.current_version

    def move_cursor(self, project_id: str) -> None:
        state = {"cursor": {"x": random.randint(0, 2000), "y": random.randint(0, 1200)}}
        message = wire.Presence(
            project_id=uuid.UUID(project_id), state={**state, "t": now_us(), "tag": self.tag}
        )
        try:
            self.send(message)
        except Exception as exc:  # the socket closed under us: reported, the user reconnects
            self.report_ms("presence", 0, exc=exc)

    def ping(self) -> None:
        self.request(lambda ref: wire.Ping(ref=ref), "ping")

    def generation_slot(self, generation_id: str) -> dict[str, AsyncResult]:
        slot = self.generations.get(generation_id)
        if slot is None:
            slot = self.generations[generation_id] = {
                "progress": AsyncResult(),
                "done": AsyncResult(),
            }
            while len(self.generations) > GENERATION_SLOTS:
                self.generations.popitem(last=False)
        return slot

    # -- the reader --------------------------------------------------------

    def _read(self, ws: websocket.WebSocket) -> None:
        while True:
            try:
                raw = next_text(ws)
            except Exception as exc:
                if not self.closing:
                    self.report_ms("disconnect", 0, exc=ConnectionError(str(exc) or repr(exc)))
                    self.ws = None
                return
            try:
                frame = _decoder.decode(raw)
            except msgspec.ValidationError as exc:
                self.report_ms("bad frame", 0, exc=exc)
                continue
            self._dispatch(frame, len(raw))

    def _dispatch(self, frame: wire.ServerFrame, length: int) -> None:
        if isinstance(frame, wire.Joined):
            self._joined(frame)
        ref = getattr(frame, "ref", None)
        if ref is not None and ref in self.waiting:
            self.waiting[ref].set(frame)
        elif isinstance(frame, wire.EventFrame):
            self._event(frame, length)
        elif isinstance(frame, wire.PresenceDiff):
            for entry in frame.joins.values():
                stamp, tag = entry.state.get("t"), entry.state.get("tag")
                if isinstance(stamp, int) and tag != self.tag:
                    self.report_ms("presence", (now_us() - stamp) / 1000, length)
        elif isinstance(frame, wire.Error):
            self.report_ms("error", 0, exc=RuntimeError(f"{frame.code}: {frame.message}"))
        elif isinstance(frame, wire.Left) and frame.reason:
            self.report_ms("left", 0, exc=RuntimeError(f"left {frame.project_id}: {frame.reason}"))

    def _joined(self, frame: wire.Joined) -> None:
        # Here, not in join(): the replayed events follow `joined` on this greenlet.
        if frame.snapshot is not None:
            for item in frame.snapshot.get("items", []):
                self.versions[item["id"]] = item["version"]
        pid = str(frame.project_id)
        if frame.mode == "snapshot" or pid not in self.seq:
            self.seq[pid] = frame.seq

    def _event(self, frame: wire.EventFrame, length: int) -> None:
        pid = str(frame.project_id)
        last = self.seq.get(pid)
        if last is not None:
            if frame.seq != last + 1:
                problem = "duplicate" if frame.seq <= last else "gap"
                self.report_ms(
                    "seq gap",
                    0,
                    exc=RuntimeError(f"{problem}: seq {frame.seq} after {last} in {pid}"),
                )
            self.seq[pid] = max(last, frame.seq)
        if frame.entity == "item" and frame.version is not None:
            item = str(frame.id)
            self.versions[item] = max(self.versions.get(item, 1), frame.version)
        op = frame.op_id or ""
        if op.startswith("lt."):
            _, stamp, tag, _ = op.split(".", 3)
            if tag != self.tag:
                self.report_ms("edit->peer", (now_us() - int(stamp)) / 1000, length)
        if frame.kind.startswith("generation."):
            slot = self.generation_slot(str(frame.id))
            finished = frame.kind in FINISHED
            if (finished or frame.kind == "generation.progress") and not slot["progress"].ready():
                slot["progress"].set(frame)
            if finished:
                slot["done"].set(frame)


class RealtimeUser(User):
    """A seeded account joined to one seeded project over one socket."""

    abstract = True
    wait_time = between(1, 3)

    def on_start(self) -> None:
        seed = load_seed(self.environment)
        self.project = random.choice(seed["projects"])
        self.account = seed["users"][random.choice(self.project["members"])]
        self.socket = RealtimeSocket(
            self, socket_url(self.host or seed["host"]), self.account["token"]
        )
        self.joined = False
        self.ensure_joined()

    def on_stop(self) -> None:
        self.socket.close()

    def ensure_joined(self) -> bool:
        """Connect and join (resuming with last_seq) unless already joined on an open socket."""
        if self.socket.open and self.joined:
            return True
        if not self.socket.open:
            self.socket.closing = False
            if not self.socket.connect():
                return False
        self.joined = self.socket.join(self.project["id"]) is not None
        return self.joined


class Editor(RealtimeUser):
    """Edits items of its project at human rates, and moves a cursor between edits."""

    weight = 3

    @task(2)
    def edit(self) -> None:
        if self.ensure_joined():
            item = random.choice(self.project["items"])
            data = {"x": random.randint(0, 2000), "y": random.randint(0, 1200)}
            self.socket.edit_item(self.project["id"], item, data)

    @task(3)
    def move_cursor(self) -> None:
        if self.ensure_joined():
            self.socket.move_cursor(self.project["id"])


class Viewer(RealtimeUser):
    """Only receives (its reader checks seq continuity); pings now and then."""

    weight = 6
    wait_time = between(5, 10)

    @task
    def watch(self) -> None:
        if self.ensure_joined():
            self.socket.ping()


class GenerationWatcher(RealtimeUser):
    """Requests a generation over REST and waits for its events on the socket.

    Needs a generation worker (``moodboard worker`` or the in-process one),
    and credits: seed with ``--admin-email`` to grant them.
    """

    weight = 1
    wait_time = between(5, 15)

    def on_start(self) -> None:
        super().on_start()
        self.rest = HttpSession(
            base_url=self.host or load_seed(self.environment)["host"],
            request_event=self.environment.events.request,
            user=self,
        )
        self.rest.headers["Authorization"] = f"Bearer {self.account['token']}"

    @task
    def generate(self) -> None:
        if not self.ensure_joined():
            return
        started = time.perf_counter()
        reply = self.rest.post(
            f"/api/projects/{self.project['id']}/generations",
            json={"room_id": self.project["room_id"], "prompt": "a calm scandinavian living room"},
            name="/api/projects/[pid]/generations",
        )
        if reply.status_code != 202:
            return  # reported by HttpSession as a failure
        slot = self.socket.generation_slot(reply.json()["id"])
        timeout = self.environment.parsed_options.generation_timeout
        for key, name in (("progress", "first progress"), ("done", "succeeded")):
            try:
                frame = slot[key].get(timeout=max(0.0, timeout - (time.perf_counter() - started)))
            except gevent.Timeout:
                exc = TimeoutError(f"no generation event in {timeout} s (is a worker running?)")
                self.socket.report(f"generation->{name}", started, exc=exc)
                return
            failed = frame.kind != "generation.succeeded" and key == "done"
            error = RuntimeError(f"{frame.kind}: {frame.data.get('error')}") if failed else None
            self.socket.report(f"generation->{name}", started, exc=error)
