"""LISTEN for the outside writers' doorbell (PostgreSQL only; docs/architecture.md §2).

The triggers of the "outside-writer triggers" migration ``pg_notify`` the
channel ``moodboard_events`` with ``<project_id>:<seq>`` after logging a
change made outside the server. One dedicated connection per instance (not a
pool connection: LISTEN needs its own session) receives them; the realtime
feed then reads the events from the log. When the connection drops (a
PostgreSQL restart), it reconnects after a backoff with full jitter and asks
for a full heal, since notifications sent meanwhile are gone.

It connects to the direct session URL (``MOODBOARD_DATABASE_LISTEN_URL``,
else ``DATABASE_URL``): a transaction-mode pooler cannot hold a LISTEN. With
several hosts and ``target_session_attrs=read-write`` in that URL, a
reconnect after a failover finds the new primary (a standby cannot LISTEN).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

import asyncpg

from server import metrics
from server.concurrency.backoff import Backoff
from server.log import get_logger, swallowed
from server.tasks import spawn

CHANNEL = "moodboard_events"
log = get_logger(__name__)
RECONNECT_BACKOFF = Backoff(base_s=0.1, cap_s=5.0)


class Listener:
    """Keeps one LISTEN connection alive and forwards each doorbell."""

    def __init__(
        self,
        dsn: str,
        on_notify: Callable[[uuid.UUID, int], None],
        on_reconnect: Callable[[], Coroutine[Any, Any, None]],
        *,
        backoff: Backoff = RECONNECT_BACKOFF,
    ) -> None:
        self.reconnects = 0
        self._dsn = dsn
        self._on_notify = on_notify
        self._on_reconnect = on_reconnect
        self._backoff = backoff
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()

    async def start(self) -> None:
        self._task = spawn(self._run(), name="pg-listener")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _notified(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        project, _, seq = payload.partition(":")
        try:
            self._on_notify(uuid.UUID(project), int(seq))
        except ValueError:
            log.warning("listener.bad_payload", payload=payload[:100])

    async def _run(self) -> None:
        failures = 0
        first = True
        while True:
            connection = None
            try:
                connection = await asyncpg.connect(self._dsn)
                lost = asyncio.Event()
                connection.add_termination_listener(lambda _c, lost=lost: lost.set())
                await connection.add_listener(CHANNEL, self._notified)
                self.connected.set()
                failures = 0
                if not first:
                    self.reconnects += 1
                    metrics.LISTEN_RECONNECTS.inc()
                    log.info("listener.reconnected")
                    await self._on_reconnect()
                first = False
                await lost.wait()
                self.connected.clear()
                log.warning("listener.connection_lost")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.connected.clear()
                delay = self._backoff.delay(failures)
                failures += 1
                log.warning("listener.connect_failed", error=repr(exc), retry_in_s=round(delay, 3))
                first = False
                await asyncio.sleep(delay)
            finally:
                if connection is not None and not connection.is_closed():
                    with swallowed(log, "listener.close_failed"):
                        await connection.close(timeout=1)
