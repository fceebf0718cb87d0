"""Where frames wait outside the server: the kernel's socket queues, the generator's own loop.

A frame the server wrote can still be late for the generator in two places
the server's own figures do not show: in the kernel, unread by the generator
(its sockets' receive queues) or unsent because the generator's receive
buffers are full (the server's send queues); and in the generator's event
loop, behind other frames it has read but not handled yet. The soak samples
both, so a p99 that drifts can be put where it is spent (docs/benchmarks.md).

The kernel's figures come from ``/proc/net/tcp`` and ``/proc/net/tcp6``
(Linux): every established TCP socket with its ``tx_queue`` (bytes written,
not yet acknowledged by the peer) and ``rx_queue`` (bytes received, not yet
read by the process). Server and generator run on one host, so both ends of
every bench connection are in those tables: the server's ends have the
server's port as their local port, the generator's have it as their remote
port.
"""

from __future__ import annotations

import asyncio
import gc
import time
from dataclasses import dataclass
from pathlib import Path

ESTABLISHED = "01"
TABLES = (Path("/proc/net/tcp"), Path("/proc/net/tcp6"))


@dataclass(frozen=True, slots=True)
class QueuedBytes:
    """Bytes in the kernel's queues of the connections to one server port."""

    server_unsent: int  # written by the server, not yet taken by the generator's socket
    generator_unread: int  # in the generator's sockets, not yet read by the generator


def _port(address: str) -> int:
    """The port of a ``/proc/net/tcp`` address (``0100007F:1F90``: hex IP, hex port)."""
    return int(address.rpartition(":")[2], 16)


def parse(table: str, port: int) -> QueuedBytes:
    """The queued bytes of the established connections to ``port`` in one table's text."""
    unsent = unread = 0
    for line in table.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 5 or fields[3] != ESTABLISHED:
            continue
        tx, _, rx = fields[4].partition(":")
        if _port(fields[1]) == port:
            unsent += int(tx, 16)
        elif _port(fields[2]) == port:
            unread += int(rx, 16)
    return QueuedBytes(unsent, unread)


def queued_bytes(port: int) -> QueuedBytes | None:
    """The queued bytes of every connection to ``port`` on this host (None off Linux)."""
    tables = [path.read_text() for path in TABLES if path.exists()]
    if not tables:
        return None
    parts = [parse(text, port) for text in tables]
    return QueuedBytes(sum(p.server_unsent for p in parts), sum(p.generator_unread for p in parts))


class LoopLag:
    """How late this process's event loop runs a timer, sampled every ``every_s``.

    ``take()`` hands back the lags seen since the last ``take()`` (seconds), so
    each soak window reports its own.
    """

    def __init__(self, every_s: float = 0.05) -> None:
        self.every_s = every_s
        self._lags: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            due = time.monotonic() + self.every_s
            await asyncio.sleep(self.every_s)
            self._lags.append(max(0.0, time.monotonic() - due))

    def __enter__(self) -> LoopLag:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *_: object) -> None:
        if self._task is not None:
            self._task.cancel()

    def take(self) -> list[float]:
        lags, self._lags = self._lags, []
        return lags


class GcPauses:
    """How long each of this process's garbage collections stopped it (any generation).

    A collection stops the whole loop: one long one delays every frame read
    in it, a few in a window are that window's p99 while the loop lag's p99
    (one timer reading in hundreds) does not show them. ``take()`` hands back
    the pauses since the last ``take()`` (seconds).
    """

    def __init__(self) -> None:
        self._pauses: list[float] = []
        self._started = 0.0

    def _callback(self, phase: str, _info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self._pauses.append(time.perf_counter() - self._started)

    def __enter__(self) -> GcPauses:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *_: object) -> None:
        gc.callbacks.remove(self._callback)

    def take(self) -> list[float]:
        pauses, self._pauses = self._pauses, []
        return pauses
