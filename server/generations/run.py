"""``moodboard worker``: the worker process, stopped gracefully by SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import signal

from server.client.worker_api import HttpWorkerApi
from server.generations.builtin import BuiltinGenerator
from server.generations.worker import Worker, default_worker_id
from server.log import get_logger
from server.settings import Settings

log = get_logger(__name__)


def run_worker(
    settings: Settings,
    *,
    server_urls: tuple[str, ...],
    key: str,
    concurrency: int,
    worker_id: str | None,
) -> int:
    """Work until SIGTERM/SIGINT; running jobs finish within the grace or are released."""

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        async with HttpWorkerApi(server_urls, key) as api:
            worker = Worker(
                api,
                BuiltinGenerator(settings.worker_step_delay_s),
                worker_id=worker_id or default_worker_id(),
                concurrency=concurrency,
                poll_s=settings.worker_poll_s,
                grace_s=settings.worker_grace_s,
            )
            log.info("worker.server", urls=list(server_urls))
            await worker.run(stop)

    asyncio.run(run())
    return 0
