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

Rounds that take long (a thousand sockets: 5-15 ms) are paced by the write
budget (write_budget.py): once they have taken more than half the loop's
time, the next waits until that is paid back, up to ``LONGEST_WAIT_S``, and
as events get denser each write carries more of them instead of the loop
falling behind them (docs/performance.md, Round 5); while the loop keeps up,
a long round holds nothing back (issue 22, goal 1). A delay of 0 turns both
off.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

from server.log import get_logger
from server.realtime.write_budget import LONGEST_WAIT_S, WriteBudget

log = get_logger(__name__)
WRITE_DELAY_S = 0.002  # sockets' frames are written at most this often while traffic is dense


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
        longest = max(LONGEST_WAIT_S, write_delay_s)  # (a delay set longer than it is kept)
        self._budget = WriteBudget(write_delay_s, longest_wait_s=longest) if write_delay_s else None

    def add(self, connection: HoldsFrames) -> None:
        """Have ``connection`` write the frames it holds in the next round (once per round)."""
        if not self._joined:
            loop = asyncio.get_running_loop()
            now = time.perf_counter()  # uvloop's clock counts milliseconds
            wait = 0.0
            if self._budget:
                since = now - self._budget.last_round_ended
                wait = max(self.write_delay_s - since, self._budget.wait(now))
            if wait > 0:
                loop.call_later(wait, self._run)
            else:
                loop.call_soon(self._run)
        self._joined.append(connection)

    def _run(self) -> None:
        started = time.perf_counter()
        joined, self._joined = self._joined, []
        for connection in joined:
            try:
                connection.write_held()
            except Exception as exc:  # one broken socket must not keep frames from the rest
                log.warning("ws.write_failed", connection_id=connection.id, error=repr(exc))
        if self._budget:
            ended = time.perf_counter()
            self._budget.spent(ended - started, ended)
