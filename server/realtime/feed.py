"""The per-project feed: a followed project's events, to its local sockets once, in order.

One ``Feed`` per project this instance follows (docs/architecture.md §3).
Its words:

- **head**: the seq of the last event delivered to the project's sockets;
  the first join's read sets it (``start``), and it moves one seq at a time.
- **arrival**: an event from the bus (``arrive``), or one read from the log.
  One past the head is delivered at once; a later one waits in ``pending``
  until the gap before it is filled; one at or below the head is a
  duplicate and is dropped.
- **fill**: reading the missing events from the log, when a later event
  arrived first or the log says it holds more (``catch_up``: a NOTIFY from
  an outside writer, a later event, the heal loop).
- **heal**: every ``HEAL_S`` the log's head seq of every followed project is
  compared with the feed's head, and what is missing is filled. It catches
  what no later event reveals: the last event of a burst the bus lost, a
  NOTIFY lost while the listener reconnected. The bus reconnecting asks for
  one at once.

The ordering rule (head, pending, drain) is plain bookkeeping on ``Feed``;
the I/O is the fill's and the heal's reads of the log (server/events/reads.py)
and the delivery to the sockets (``Connection.deliver_event``).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from server import metrics
from server.events.reads import project_seqs, read_events
from server.log import get_logger
from server.realtime import protocol as p
from server.transport.wire import Outgoing

if TYPE_CHECKING:
    from server.realtime.connection import Connection

log = get_logger(__name__)
HEAL_S = 2.0  # how often the log's head is compared with what this instance delivered


@dataclass(slots=True)
class Feed:
    """One project's events on this instance: delivered up to ``head``, in order, once.

    Events from the bus (or found in the log) that arrive early wait in
    ``pending`` until the gap before them is filled from the event log.
    """

    head: int | None = None
    pending: dict[int, Outgoing] = field(default_factory=dict)
    filling: bool = False


class Feeds:
    """The feeds of every project followed on this instance."""

    def __init__(
        self,
        followers: dict[uuid.UUID, set[Connection]],
        spawn: Callable[[Coroutine[Any, Any, Any]], None],
    ) -> None:
        self._followers = followers  # the registry's own map, by project (read, never written)
        self._spawn = spawn
        self._feeds: dict[uuid.UUID, Feed] = {}
        self.gap_fills = 0

    def open(self, project_id: uuid.UUID) -> None:
        """The project's first local follower: a new feed, with no head until a join reads."""
        self._feeds[project_id] = Feed()

    def close(self, project_id: uuid.UUID) -> None:
        """The project's last local follower left."""
        self._feeds.pop(project_id, None)

    def start(self, project_id: uuid.UUID, seq: int) -> None:
        """A join read the project at ``seq``: the feed delivers in order from there."""
        feed = self._feeds.get(project_id)
        if feed is not None and feed.head is None:
            feed.head = seq
            feed.pending = {s: t for s, t in feed.pending.items() if s > seq}
            self._drain(project_id, feed)

    def _dispatch(self, project_id: uuid.UUID, seq: int, frame: Outgoing) -> None:
        sent = 0
        for connection in tuple(self._followers.get(project_id, ())):
            sent += connection.deliver_event(project_id, seq, frame)
        metrics.EVENT_FRAMES_SENT.inc(sent)  # once per event, not per socket: a locked counter

    def arrive(self, project_id: uuid.UUID, seq: int, frame: Outgoing) -> None:
        """An event from the bus: delivered now if it is next, else held until the gap fills."""
        feed = self._feeds.get(project_id)
        if feed is None:
            return
        if feed.head is None:  # no join has finished its read yet: joiners buffer and sort
            self._dispatch(project_id, seq, frame)
            return
        if seq <= feed.head:
            return  # delivered already (a duplicate from the bus, the log or NOTIFY)
        feed.pending[seq] = frame
        self._drain(project_id, feed)
        if feed.pending:
            self.catch_up(project_id, max(feed.pending))

    def _drain(self, project_id: uuid.UUID, feed: Feed) -> None:
        assert feed.head is not None
        while feed.head + 1 in feed.pending:
            feed.head += 1
            self._dispatch(project_id, feed.head, feed.pending.pop(feed.head))

    def catch_up(self, project_id: uuid.UUID, seq: int) -> None:
        """The log holds events up to ``seq`` (NOTIFY, the heal loop, a later event): fill to it."""
        feed = self._feeds.get(project_id)
        if feed is None or feed.head is None or seq <= feed.head or feed.filling:
            return
        feed.filling = True
        self._spawn(self._fill(project_id, feed, seq))

    async def _fill(self, project_id: uuid.UUID, feed: Feed, upto: int) -> None:
        """Read the missing events from the log and deliver everything in order."""
        try:
            assert feed.head is not None
            frames = await read_events(project_id, feed.head, upto)
            if frames:
                self.gap_fills += 1
                metrics.GAP_FILLS.inc()
                log.info(
                    "feed.gap_filled",
                    project_id=str(project_id),
                    after=feed.head,
                    upto=upto,
                    events=len(frames),
                )
            for frame in frames:
                if feed.head is not None and frame.seq > feed.head:
                    feed.pending.setdefault(frame.seq, Outgoing(p.encode(frame)))
            self._drain(project_id, feed)
        except Exception as exc:  # the database hiccuped: the heal loop tries again
            log.warning("feed.fill_failed", project_id=str(project_id), error=repr(exc))
        finally:
            feed.filling = False

    async def heal(self) -> None:
        """Compare every followed project's seq in the database with what was delivered."""
        for project_id, seq in (await self._logged_seqs()).items():
            self.catch_up(project_id, seq)

    async def _logged_seqs(self) -> dict[uuid.UUID, int]:
        """The log's head of every followed project; records the largest lag behind it."""
        followed = [pid for pid, feed in self._feeds.items() if feed.head is not None]
        heads = await project_seqs(followed) if followed else {}
        feeds = ((self._feeds.get(pid), seq) for pid, seq in heads.items())
        lags = [
            seq - feed.head for feed, seq in feeds if feed is not None and feed.head is not None
        ]
        metrics.FEED_LAG.set(max(lags, default=0))
        return heads

    async def heal_forever(self) -> None:
        """Heal every ``HEAL_S`` until cancelled."""
        # It fills up to the seqs the log had one round earlier: an event committed
        # since then may still be on its way over the bus (under load, most projects
        # have one), and filling those from the log would only duplicate the bus's work.
        earlier: dict[uuid.UUID, int] = {}
        while True:
            await asyncio.sleep(HEAL_S)
            try:
                logged = await self._logged_seqs()
            except Exception as exc:
                log.warning("feed.heal_failed", error=repr(exc))
                continue
            for project_id, seq in earlier.items():
                self.catch_up(project_id, seq)
            earlier = logged
