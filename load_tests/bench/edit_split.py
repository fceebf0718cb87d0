"""Where an edit's time goes, split at the server's own clock reading (the soak's probe).

An edit's time from the generator's send to its ack has two parts that look
alike from outside: the wait before the server takes the edit in hand (the
generator's write, the network, the socket's frames ahead of it on the
server) and the server's work on it (the commit and the publish). The event
an edit produces carries ``at``: the server's wall clock when it took the
edit in hand (for a current-base update, the soak's edit, read in
server/projects/edits.py before the statement is queued). The generator and
the server share a machine, so their clocks agree: send → ``at`` is the
first part, ``at`` → ack the second.

The generator times with ``time.perf_counter`` (monotonic); ``at`` is wall
time. :data:`WALL_MINUS_PERF` maps one to the other, read once: over a run
of minutes the two clocks drift by far less than the milliseconds measured.
"""

from __future__ import annotations

import time
from datetime import datetime

WALL_MINUS_PERF = time.time() - time.perf_counter()


def perf_of(at: str) -> float | None:
    """The server's RFC 3339 ``at`` on the generator's perf_counter clock (None if unreadable)."""
    try:
        return datetime.fromisoformat(at).timestamp() - WALL_MINUS_PERF
    except ValueError:
        return None


class EditSplit:
    """One editor's edits, each split into its wait before the server and its commit.

    The ack and the edit's event come on the same socket in either order; an
    edit is split when both are in. ``before_server`` and ``commit`` are in
    seconds, taken (and emptied) by the sampler.
    """

    def __init__(self) -> None:
        self.sent: dict[str, float] = {}  # op_id -> perf_counter at send
        self._server_at: dict[str, float] = {}  # op_id -> server's `at` (perf clock), no ack yet
        self._acked_at: dict[str, float] = {}  # op_id -> ack received (perf clock), no event yet
        self.before_server: list[float] = []
        self.commit: list[float] = []

    def sending(self, op_id: str, now: float) -> None:
        self.sent[op_id] = now

    def event(self, op_id: str, at: str | None) -> None:
        """The edit's event came; ``at`` is the server's reading in it."""
        if op_id not in self.sent or at is None:
            return
        server_at = perf_of(at)
        if server_at is None:
            self.sent.pop(op_id, None)
            self._acked_at.pop(op_id, None)
            return
        acked = self._acked_at.pop(op_id, None)
        if acked is None:
            self._server_at[op_id] = server_at
        else:
            self._split(op_id, server_at, acked)

    def acked(self, op_id: str, now: float) -> None:
        """The edit's ack came at ``now`` (perf clock)."""
        if op_id not in self.sent:
            return
        server_at = self._server_at.pop(op_id, None)
        if server_at is None:
            self._acked_at[op_id] = now
        else:
            self._split(op_id, server_at, now)

    def forget(self) -> None:
        """The socket was cut: its edits in flight will never be split."""
        self.sent.clear()
        self._server_at.clear()
        self._acked_at.clear()

    def _split(self, op_id: str, server_at: float, acked: float) -> None:
        sent = self.sent.pop(op_id)
        self.before_server.append(server_at - sent)
        self.commit.append(acked - server_at)
