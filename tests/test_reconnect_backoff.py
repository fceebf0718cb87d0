"""The reconnect loops (Redis bus, LISTEN) wait a full-jitter backoff within its bounds."""

from __future__ import annotations

import asyncio
from typing import Any

import structlog

from server.concurrency.backoff import Backoff
from server.events import listener
from server.realtime import bus
from tests.conftest import free_port


def test_both_loops_use_the_shared_schedule_with_their_bounds() -> None:
    """Both start small and stop growing at 5 s; each delay is drawn from [0, ceiling]."""
    for backoff, first in ((bus.RECONNECT_BACKOFF, 0.05), (listener.RECONNECT_BACKOFF, 0.1)):
        assert backoff.ceiling(0) == first
        assert backoff.ceiling(30) == 5.0
        assert backoff.delay(3, lambda: 0.0) == 0.0
        assert backoff.delay(3, lambda: 0.999) <= backoff.ceiling(3) == first * 8


async def test_the_listener_retries_a_dead_server_within_the_backoff_bounds() -> None:
    """Against a port nobody listens on, each retry waits at most min(cap, base * 2**n)."""
    schedule = Backoff(base_s=0.01, cap_s=0.04)
    failures = asyncio.Event()
    delays: list[float] = []

    def record(_logger: Any, _method: str, event: dict[str, Any]) -> dict[str, Any]:
        if event["event"] == "listener.connect_failed":
            delays.append(event["retry_in_s"])
            if len(delays) >= 6:
                failures.set()
        return event

    async def healed() -> None:
        return None

    dead = listener.Listener(
        f"postgresql://postgres@127.0.0.1:{free_port()}/none",
        lambda _project, _seq: None,
        healed,
        backoff=schedule,
    )
    with structlog.testing.capture_logs(processors=[record]):
        await dead.start()
        try:
            await asyncio.wait_for(failures.wait(), 30)
        finally:
            await dead.stop()
    for attempt, delay in enumerate(delays):
        assert 0 <= delay <= schedule.ceiling(attempt) + 0.0005  # logged rounded to 1 ms
    assert not dead.connected.is_set()
