"""The generation worker: claim -> generate -> report, with a pluggable generator.

``moodboard worker`` runs :class:`Worker` over HTTP (server/client/worker_api.py,
a service-account key); ``moodboard serve`` in embedded mode runs it in
process over :class:`InProcessWorkerApi`, which calls the queue directly. Both
speak :class:`WorkerBackend`.

- ``concurrency`` slots each loop: claim (or wait ``poll_s`` when the queue is
  empty), generate, upload the picture, complete. A heartbeat renews the lease
  while a generator works between reports.
- A 409 on any report (:class:`JobLost`: canceled, or reclaimed after the
  lease expired) drops the job at once; the worker never completes a job it
  lost. A generator error fails the job as retryable (the queue's attempt cap
  ends it).
- Shutdown (SIGTERM): no new claims; a running job gets ``grace_s`` to finish,
  then it is released (``fail`` with ``retryable``: back to the queue).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from server.client.worker_api import JobLost
from server.concurrency.backoff import Backoff
from server.errors import Conflict
from server.events.notify import Notifier
from server.generations.queue import GenerationQueue, Owner
from server.log import get_logger
from server.tasks import spawn

log = get_logger(__name__)

ProgressReport = Callable[[int, str | None], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Job:
    """A claimed generation, as a generator sees it."""

    id: uuid.UUID
    project_id: uuid.UUID
    prompt: str
    params: dict[str, Any] = field(default_factory=dict)
    room: dict[str, Any] | None = None
    lease_expires_at: datetime | None = None

    @classmethod
    def from_claim(cls, claimed: dict[str, Any]) -> Job:
        expires = claimed.get("lease_expires_at")
        return cls(
            id=uuid.UUID(str(claimed["id"])),
            project_id=uuid.UUID(str(claimed["project_id"])),
            prompt=claimed["prompt"],
            params=claimed.get("params") or {},
            room=claimed.get("room"),
            lease_expires_at=(
                datetime.fromisoformat(expires.replace("Z", "+00:00"))
                if isinstance(expires, str)
                else expires
            ),
        )


@dataclass(frozen=True, slots=True)
class Picture:
    """What a generator makes: the image bytes and what to say about them."""

    data: bytes
    content_type: str
    width: int
    height: int
    metadata: dict[str, Any] = field(default_factory=dict)


class Generator(Protocol):
    """Makes a picture for a job, reporting progress (0..100, stage) as it goes."""

    name: str

    async def generate(self, job: Job, report: ProgressReport) -> Picture: ...


class WorkerBackend(Protocol):
    """The worker API (docs/protocol.md §2.6); every report raises JobLost on a 409."""

    async def claim(self, worker_id: str) -> dict[str, Any] | None: ...

    async def progress(
        self, generation_id: uuid.UUID, worker_id: str, progress: int, stage: str | None
    ) -> dict[str, Any]: ...

    async def upload(
        self, generation_id: uuid.UUID, worker_id: str, content_type: str, data: bytes
    ) -> dict[str, Any]: ...

    async def complete(
        self, generation_id: uuid.UUID, worker_id: str, result: dict[str, Any]
    ) -> dict[str, Any]: ...

    async def fail(
        self, generation_id: uuid.UUID, worker_id: str, error: str, *, retryable: bool
    ) -> dict[str, Any]: ...


class InProcessWorkerApi:
    """The worker API as direct queue calls (embedded mode's in-process worker)."""

    def __init__(self, queue: GenerationQueue, notifier: Callable[[], Notifier]) -> None:
        self._queue = queue
        self._notifier = notifier

    @staticmethod
    def _owner(worker_id: str) -> Owner:
        return Owner(account_id=None, worker_id=worker_id)

    async def claim(self, worker_id: str) -> dict[str, Any] | None:
        return await self._queue.claim(self._notifier(), self._owner(worker_id))

    async def progress(
        self, generation_id: uuid.UUID, worker_id: str, progress: int, stage: str | None
    ) -> dict[str, Any]:
        with _lost():
            return await self._queue.progress(
                self._notifier(),
                generation_id,
                self._owner(worker_id),
                progress=progress,
                stage=stage,
            )

    async def upload(
        self, generation_id: uuid.UUID, worker_id: str, content_type: str, data: bytes
    ) -> dict[str, Any]:
        with _lost():
            return await self._queue.store_asset(
                generation_id,
                self._owner(worker_id),
                content_type=content_type,
                data=data,
                metadata={},
            )

    async def complete(
        self, generation_id: uuid.UUID, worker_id: str, result: dict[str, Any]
    ) -> dict[str, Any]:
        with _lost():
            return await self._queue.complete(
                self._notifier(), generation_id, self._owner(worker_id), result=result
            )

    async def fail(
        self, generation_id: uuid.UUID, worker_id: str, error: str, *, retryable: bool
    ) -> dict[str, Any]:
        with _lost():
            return await self._queue.fail(
                self._notifier(),
                generation_id,
                self._owner(worker_id),
                error=error,
                retryable=retryable,
            )


# After failed claims (no server answers), the next one waits up to 1, 2, 4 ... 30 s.
CLAIM_BACKOFF = Backoff(base_s=1.0, cap_s=30.0)


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    """Wait ``seconds``, or less if ``stop`` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


@contextlib.contextmanager
def _lost() -> Any:
    try:
        yield
    except Conflict as exc:
        raise JobLost(409, exc.detail) from exc


def default_worker_id() -> str:
    """host:pid, so an operator can tell the workers apart in the table."""
    return f"{socket.gethostname()}:{os.getpid()}"


class Worker:
    """``concurrency`` loops of claim -> generate -> report, until ``stop`` is set."""

    def __init__(
        self,
        api: WorkerBackend,
        generator: Generator,
        *,
        worker_id: str,
        concurrency: int = 1,
        poll_s: float = 1.0,
        grace_s: float = 10.0,
    ) -> None:
        self.api = api
        self.generator = generator
        self.worker_id = worker_id
        self.concurrency = concurrency
        self.poll_s = poll_s
        self.grace_s = grace_s

    async def run(self, stop: asyncio.Event) -> None:
        """Work until ``stop`` is set; running jobs finish within the grace or are released."""
        log.info("worker.started", worker_id=self.worker_id, concurrency=self.concurrency)
        await asyncio.gather(
            *(self._slot(f"{self.worker_id}/{n}", stop) for n in range(self.concurrency))
        )
        log.info("worker.stopped", worker_id=self.worker_id)

    async def _slot(self, worker_id: str, stop: asyncio.Event) -> None:
        failures = 0  # claims in a row that failed: the wait after each grows (CLAIM_BACKOFF)
        while not stop.is_set():
            try:
                claimed = await self.api.claim(worker_id)
            except Exception as exc:
                failures += 1
                wait = max(self.poll_s, CLAIM_BACKOFF.delay(failures - 1))
                log.warning(
                    "worker.claim_failed",
                    worker_id=worker_id,
                    error=str(exc) or repr(exc),
                    failures=failures,
                    retry_in_s=round(wait, 2),
                )
                await _pause(stop, wait)
                continue
            failures = 0
            if claimed is None:  # an empty queue: not worth a log line (one a second)
                await _pause(stop, self.poll_s)
                continue
            await self._run(Job.from_claim(claimed), worker_id, stop)

    async def _run(self, job: Job, worker_id: str, stop: asyncio.Event) -> None:
        work = asyncio.create_task(self._work(job, worker_id))
        stopping = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({work, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if work.done():
                return
            log.info("worker.draining", generation_id=str(job.id), grace_s=self.grace_s)
            done, _ = await asyncio.wait({work}, timeout=self.grace_s)
            if done:
                return
            work.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await work
            await self._report(job, worker_id, "the worker stopped before finishing", True)
        finally:
            stopping.cancel()
            if work.done() and not work.cancelled() and work.exception() is not None:
                log.error(
                    "worker.job_crashed", generation_id=str(job.id), error=str(work.exception())
                )

    async def _work(self, job: Job, worker_id: str) -> None:
        last: list[Any] = [0, None]

        async def report(progress: int, stage: str | None) -> None:
            last[:] = [progress, stage]
            await self.api.progress(job.id, worker_id, progress, stage)

        heartbeat = spawn(self._heartbeat(job, worker_id, last), name="worker-heartbeat")
        try:
            picture = await self.generator.generate(job, report)
            resource = await self.api.upload(job.id, worker_id, picture.content_type, picture.data)
            result = {
                **picture.metadata,
                "url": resource["url"],
                "asset_id": resource["id"],
                "width": picture.width,
                "height": picture.height,
                "content_type": picture.content_type,
            }
            await self.api.complete(job.id, worker_id, result)
            log.info("worker.job_done", generation_id=str(job.id), asset_id=resource["id"])
        except JobLost as exc:
            log.warning("worker.job_lost", generation_id=str(job.id), detail=exc.detail)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("worker.job_failed", generation_id=str(job.id))
            await self._report(job, worker_id, f"{type(exc).__name__}: {exc}"[:2000], True)
        finally:
            heartbeat.cancel()

    async def _heartbeat(self, job: Job, worker_id: str, last: list[Any]) -> None:
        """Renew the lease (same progress again) while the generator works between reports."""
        expires = job.lease_expires_at
        left = (expires - datetime.now(UTC)).total_seconds() if expires else 30.0
        interval = max(0.2, left / 3)
        while True:
            await asyncio.sleep(interval)
            try:
                await self.api.progress(job.id, worker_id, int(last[0]), last[1])
            except JobLost:
                return  # the job's own next report says so too
            except Exception as exc:
                log.warning("worker.heartbeat_failed", generation_id=str(job.id), error=str(exc))

    async def _report(self, job: Job, worker_id: str, error: str, retryable: bool) -> None:
        """Fail (or release) the job; a lost job or an unreachable server is only logged."""
        try:
            await self.api.fail(job.id, worker_id, error, retryable=retryable)
            log.info("worker.job_released", generation_id=str(job.id), retryable=retryable)
        except Exception as exc:
            log.warning("worker.release_failed", generation_id=str(job.id), error=str(exc))
