"""Throttled presence (docs/protocol.md §3.4): one ``presence`` frame per project per interval.

Cursor moves come far faster than anyone needs them; the latest state wins
and is sent when the interval allows. The last state sent is remembered so a
new socket can put the cursor back after a rejoin (a rejoin starts empty).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from typing import Any

State = dict[str, Any]


class PresenceThrottle:
    """Per-project latest-wins throttle; ``send(project_id, state)`` does the sending."""

    def __init__(self, interval_s: float, send: Callable[[uuid.UUID, State], None]) -> None:
        self.interval_s = interval_s
        self._send = send
        self._latest: dict[uuid.UUID, State] = {}
        self._sent_at: dict[uuid.UUID, float] = {}
        self._timers: dict[uuid.UUID, asyncio.TimerHandle] = {}
        self.current: dict[uuid.UUID, State] = {}  # the last state sent, per project

    def set(self, project_id: uuid.UUID, state: State) -> None:
        """Schedule ``state``; an already scheduled send carries it instead of its own."""
        self._latest[project_id] = state
        if project_id in self._timers:
            return
        due = self._sent_at.get(project_id, -1e9) + self.interval_s
        self._timers[project_id] = asyncio.get_running_loop().call_later(
            max(0.0, due - time.monotonic()), self._flush, project_id
        )

    def restore(self, project_id: uuid.UUID) -> None:
        """After a rejoin: send the last state again unless a newer one is on its way."""
        state = self.current.get(project_id)
        if state is not None and project_id not in self._latest:
            self.set(project_id, state)

    def forget(self, project_id: uuid.UUID) -> None:
        """The project was left: nothing to send or restore for it."""
        self.current.pop(project_id, None)
        self._latest.pop(project_id, None)
        timer = self._timers.pop(project_id, None)
        if timer is not None:
            timer.cancel()

    def cancel(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()

    def _flush(self, project_id: uuid.UUID) -> None:
        self._timers.pop(project_id, None)
        state = self._latest.pop(project_id, None)
        if state is None:
            return
        self._sent_at[project_id] = time.monotonic()
        self.current[project_id] = state
        self._send(project_id, state)
