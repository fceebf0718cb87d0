"""The per-project feeds of this instance: the I/O around the pure ``ProjectFeed``.

One ``ProjectFeed`` (server/delivery/feed.py) per project this instance
follows decides the order: what to dispatch to the project's sockets, and
which range of the event log to read. Here its inputs come in and its steps
are carried out:

- **arrival**: an event from the bus (``arrive``), bound once by the hub;
- **catch-up**: "the log holds events up to seq" (``catch_up``): a NOTIFY from
  an outside writer, the periodic comparison, a bus reconnect;
- **fill**: a read of the log the feed asked for (``_fill``); it reads up to
  whatever was announced by the time it runs, so the rows of one outside
  statement (one NOTIFY each, back to back) are read together;
- **heal**: every ``heal_s`` (MOODBOARD_FEED_HEAL_MS) the log's head seq of
  every followed project is compared with the feed's head (``heal_forever``).
  It catches what no later event reveals: the last event of a burst the bus
  lost, a NOTIFY lost while the listener reconnected.

Dispatching hands each event to every follower's ``JoinedStream``, which
decides per socket (server/delivery/stream.py): the common verdict, send, goes
to the socket here; the rare ones (release, read, overflow) to
server/realtime/handover.py.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from server import metrics
from server.delivery.feed import ProjectFeed, ReadLog, Step
from server.delivery.stream import HELD, SEND, SKIP
from server.events.reads import project_seqs, read_fill
from server.log import get_logger
from server.realtime import handover
from server.realtime import protocol as p
from server.transport.wire import Outgoing

if TYPE_CHECKING:
    from server.realtime.registry import Followers

log = get_logger(__name__)
HEAL_S = 2.0  # how often the log's head is compared with what this instance delivered


class Feeds:
    """The feeds of every project followed on this instance."""

    def __init__(
        self,
        followers: dict[uuid.UUID, Followers],
        spawn: Callable[[Coroutine[Any, Any, Any]], None],
        *,
        heal_s: float = HEAL_S,
    ) -> None:
        self._followers = followers  # the registry's own map, by project (read, never written)
        self._spawn = spawn
        self.heal_s = heal_s
        self._feeds: dict[uuid.UUID, ProjectFeed[Outgoing]] = {}
        self.gap_fills = 0

    def open(self, project_id: uuid.UUID) -> None:
        """The project's first local follower: a new feed, with no head until a join reads."""
        self._feeds[project_id] = ProjectFeed()

    def close(self, project_id: uuid.UUID) -> None:
        """The project's last local follower left (a fill in flight is then ignored)."""
        self._feeds.pop(project_id, None)

    def head(self, project_id: uuid.UUID) -> int | None:
        """The seq the project's feed dispatched up to (None: no join has read yet)."""
        feed = self._feeds.get(project_id)
        return None if feed is None else feed.head

    def start(self, project_id: uuid.UUID, seq: int) -> None:
        """A join read the project at ``seq``: the first starts the feed's run there."""
        feed = self._feeds.get(project_id)
        if feed is not None:
            self._carry_out(project_id, feed, feed.read_at(seq))

    def arrive(self, project_id: uuid.UUID, seq: int, frame: Outgoing) -> None:
        """An event from the bus."""
        feed = self._feeds.get(project_id)
        if feed is not None:
            self._carry_out(project_id, feed, feed.arrived(seq, frame))

    def catch_up(self, project_id: uuid.UUID, seq: int) -> None:
        """The log holds the project's events up to ``seq`` (NOTIFY, the heal, a reconnect)."""
        feed = self._feeds.get(project_id)
        if feed is not None:
            self._carry_out(project_id, feed, feed.announced(seq))

    def _carry_out(
        self, project_id: uuid.UUID, feed: ProjectFeed[Outgoing], step: Step[Outgoing]
    ) -> None:
        if step.dispatch:
            followers = tuple(self._followers.get(project_id, {}).items())
            sent = 0
            for seq, frame in step.dispatch:
                for connection, stream in followers:  # the hot loop: once per socket and event
                    verdict = stream.event(seq, frame)
                    if verdict is SEND:
                        sent += connection.send(frame)
                    elif verdict is not HELD and verdict is not SKIP:
                        handover.act(connection, project_id, stream, verdict)
            metrics.EVENT_FRAMES_SENT.inc(sent)  # once per step, not per socket: a locked counter
        if step.read is not None:
            self._spawn(self._fill(project_id, feed, step.read))

    async def _fill(
        self, project_id: uuid.UUID, feed: ProjectFeed[Outgoing], read: ReadLog
    ) -> None:
        """Read what the feed asked for (and what was announced since), then carry on."""
        upto = max(read.upto, feed.logged)  # NOTIFYs that came in before this task ran
        try:
            frames = await read_fill(project_id, read.after, upto)
        except Exception as exc:  # the database hiccuped: the heal asks again
            log.warning("feed.fill_failed", project_id=str(project_id), error=repr(exc))
            step = feed.fill_failed()
        else:
            if frames:
                self.gap_fills += 1
                metrics.GAP_FILLS.inc()
                log.info(
                    "feed.gap_filled",
                    project_id=str(project_id),
                    after=read.after,
                    upto=upto,
                    events=len(frames),
                )
            step = feed.filled([(frame.seq, Outgoing(p.encode(frame))) for frame in frames])
        if self._feeds.get(project_id) is feed:  # still followed, by the same feed
            self._carry_out(project_id, feed, step)

    async def heal(self) -> None:
        """Compare every followed project's seq in the database with what was delivered."""
        for project_id, seq in (await self._logged_seqs()).items():
            self.catch_up(project_id, seq)

    async def _logged_seqs(self) -> dict[uuid.UUID, int]:
        """The log's head of every followed project; records the largest lag behind it."""
        followed = [pid for pid, feed in self._feeds.items() if feed.head is not None]
        heads = await project_seqs(followed) if followed else {}
        lags = []
        for project_id, seq in heads.items():
            head = self.head(project_id)
            if head is not None:
                lags.append(seq - head)
        metrics.FEED_LAG.set(max(lags, default=0))
        return heads

    async def heal_forever(self) -> None:
        """Heal every ``heal_s`` until cancelled."""
        # It fills up to the seqs the log had one round earlier: an event committed
        # since then may still be on its way over the bus (under load, most projects
        # have one), and filling those from the log would only duplicate the bus's work.
        earlier: dict[uuid.UUID, int] = {}
        while True:
            await asyncio.sleep(self.heal_s)
            try:
                logged = await self._logged_seqs()
            except Exception as exc:
                log.warning("feed.heal_failed", error=repr(exc))
                continue
            for project_id, seq in earlier.items():
                self.catch_up(project_id, seq)
            earlier = logged
