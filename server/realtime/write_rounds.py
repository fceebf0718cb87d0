"""Write rounds: the frames every socket was sent lately go to its transport in one write.

A socket does not write a frame the moment it is sent one: it holds it and
joins the next *write round* (``WriteRounds.add``). A round writes every
joined socket's held frames, each socket's in one write (one system call).
(Earlier code called holding "corking" and a round an "uncork".)

A round runs at the end of this turn of the event loop, or, when the last
one was less than ``write_delay_s`` ago, once that much time has passed
since it: while events are dense (a busy project), each socket then gets
several in one write, for at most ``write_delay_s`` of added latency; a
quiet socket's frame goes out at once. Writing is most of a delivery's cost
(the kernel's TCP path, for the sender and the receiver), so under load this
is the fan-out's largest saving (docs/performance.md, Round 3, "Write delay").

A round that took longer than the delay (a thousand sockets: about 5 ms) is
followed by a gap as long as itself, up to ``LONGEST_ROUND_GAP_S``: writing
then takes at most about half of the loop's time, and as events get denser
each write carries more of them instead of the loop falling behind them
(W1 with 1,000 subscribers: about three times the deliveries a second;
docs/performance.md, Round 5). A delay of 0 turns both off.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

from server.log import get_logger

log = get_logger(__name__)
WRITE_DELAY_S = 0.002  # sockets' frames are written at most this often while traffic is dense
# After a long round (many sockets), the next waits as long as it took, but never longer:
# the most a write can add to a frame's latency, whatever a round cost (a GC pause in it).
LONGEST_ROUND_GAP_S = 0.02


class HoldsFrames(Protocol):
    """What a write round needs of a socket: its id (to log), and writing what it holds."""

    @property
    def id(self) -> str: ...

    def write_held(self) -> None: ...


class WriteRounds:
    """The instance's write rounds; one per ``Realtime``."""

    def __init__(self, write_delay_s: float = WRITE_DELAY_S) -> None:
        self.write_delay_s = write_delay_s
        self._joined: list[HoldsFrames] = []  # sockets with frames to write at the next round
        self._ended_at = float("-inf")  # the loop's time at the end of the last round
        self._gap = 0.0  # how long after it the next may run

    def add(self, connection: HoldsFrames) -> None:
        """Have ``connection`` write the frames it holds in the next round (once per round)."""
        if not self._joined:
            loop = asyncio.get_running_loop()
            due = self._ended_at + self._gap
            if due > loop.time():
                loop.call_at(due, self._run)
            else:
                loop.call_soon(self._run)
        self._joined.append(connection)

    def _run(self) -> None:
        started = time.perf_counter()  # uvloop's clock counts milliseconds
        joined, self._joined = self._joined, []
        for connection in joined:
            try:
                connection.write_held()
            except Exception as exc:  # one broken socket must not keep frames from the rest
                log.warning("ws.write_failed", connection_id=connection.id, error=repr(exc))
        took = time.perf_counter() - started
        self._ended_at = asyncio.get_running_loop().time()
        self._gap = (
            min(max(self.write_delay_s, took), LONGEST_ROUND_GAP_S) if self.write_delay_s else 0.0
        )
