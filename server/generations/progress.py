"""A running generation's progress events, coalesced: at most one per interval, latest wins.

A worker may report progress many times a second; every report renews the
lease and updates the row, but only the first report of an interval logs a
``generation.progress`` event at once. A later report inside the interval
leaves a *trailing* event behind: when the interval ends it carries the value
the row holds then, unless a report's own event already did (docs/architecture.md
"Generations"). Status changes are never coalesced: they end the job's entry
here (``forget``).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from piccolo.engine.base import Engine

from server.db.engine import write_transaction
from server.events import log as event_log
from server.events.log import EventRecord
from server.events.notify import Notifier
from server.generations.jobs import logged
from server.generations.tables import Generation
from server.log import get_logger
from server.tasks import spawn
from server.types import ProjectId

log = get_logger(__name__)


class ProgressEvents:
    """Per generation: when its last progress event went out, and a pending trailing one."""

    def __init__(self, engine: Engine[Any], interval_s: float) -> None:
        self.engine = engine
        self.interval_s = interval_s
        self._last_emit: dict[uuid.UUID, float] = {}
        self._emitted_version: dict[uuid.UUID, int] = {}
        self._pending: dict[uuid.UUID, asyncio.Task[None]] = {}

    def forget(self, generation_id: uuid.UUID) -> None:
        """The job left ``running``: drop its state (a pending trailing event finds it so)."""
        self._last_emit.pop(generation_id, None)
        self._emitted_version.pop(generation_id, None)

    async def settle(self) -> None:
        """Wait until every pending trailing progress event has gone out."""
        while self._pending:
            await asyncio.gather(*self._pending.values(), return_exceptions=True)

    def may_emit(self, generation_id: uuid.UUID) -> bool:
        """Whether a progress event may go out now (none did within the interval)."""
        last = self._last_emit.get(generation_id)
        return last is None or time.monotonic() - last >= self.interval_s

    def emitted(self, generation_id: uuid.UUID, version: int) -> None:
        """A progress event carrying ``version`` went out now."""
        self._last_emit[generation_id] = time.monotonic()
        self._emitted_version[generation_id] = version

    def trail(self, notifier: Notifier, generation_id: uuid.UUID, project_id: ProjectId) -> None:
        """Make sure a trailing progress event follows when the interval ends."""
        if generation_id in self._pending:
            return
        last = self._last_emit.get(generation_id, time.monotonic())
        delay = max(0.0, last + self.interval_s - time.monotonic())
        self._pending[generation_id] = spawn(
            self._flush(notifier, generation_id, project_id, delay), name="generation-progress"
        )

    async def _flush(
        self, notifier: Notifier, generation_id: uuid.UUID, project_id: ProjectId, delay: float
    ) -> None:
        try:
            event: EventRecord | None = None
            while event is None:
                await asyncio.sleep(delay)
                async with write_transaction(self.engine):
                    await event_log.lock_row(Generation, generation_id)  # the lock order
                    await event_log.lock_project(project_id)
                    row = (
                        await Generation.select(Generation.status, Generation.version)
                        .where(Generation.id == generation_id)
                        .first()
                    )
                    if row is None or row["status"] != "running":
                        return
                    version = int(row["version"])
                    if version <= self._emitted_version.get(generation_id, 0):
                        return  # a report's own event already carried the latest value
                    if not self.may_emit(generation_id):  # one went out meanwhile: wait on
                        last = self._last_emit[generation_id]
                        delay = max(0.0, last + self.interval_s - time.monotonic())
                        continue
                    _, event = await logged(
                        generation_id, project_id, "generation.progress", version
                    )
                    self.emitted(generation_id, version)
            await notifier.events_committed([event])
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("generation.progress_flush_failed", generation_id=str(generation_id))
        finally:
            if self._pending.get(generation_id) is asyncio.current_task():
                del self._pending[generation_id]
