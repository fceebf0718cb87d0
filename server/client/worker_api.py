"""The worker API over HTTP (docs/protocol.md §2.6): what ``moodboard worker`` calls.

Every call carries the service-account key as ``Authorization: Bearer``. A
409 on a report means the job is not this worker's any more (canceled,
reclaimed after its lease expired): :class:`JobLost`, and the worker stops
working on it. Other error answers raise :class:`WorkerApiError`.

Several base URLs (instances without a balancer in front) are used in turn:
the client stays on one while it answers; a call it could not deliver there
(connection refused, or 502/503 from a proxy or a draining instance) goes to
the next one at once, and the failed one is skipped for a backoff that grows
with its consecutive failures (``server/concurrency/backoff.py``), then tried
again. Any instance serves any call: they share the queue.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import httpx

from server.client.errors import ApiError
from server.client.rest import RestClient
from server.concurrency.backoff import Backoff
from server.log import get_logger

DEFAULT_TIMEOUT_S = 30.0
# A server that failed is skipped for up to 1, 2, 4 ... 30 s (full jitter).
SERVER_BACKOFF = Backoff(base_s=1.0, cap_s=30.0)
# Answers meaning "not served here, try another": a proxy without a live
# upstream (502), a draining or unready instance (503).
TRY_ANOTHER = frozenset({502, 503})
log = get_logger(__name__)


class WorkerApiError(Exception):
    """The server refused a call (its problem+json ``detail`` and status)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail


class JobLost(WorkerApiError):
    """409: this worker does not hold the generation any more; drop it."""


@dataclass(eq=False, slots=True)
class _Server:
    rest: RestClient
    failures: int = 0
    retry_at: float = 0.0  # time.monotonic() before which it is skipped


class HttpWorkerApi:
    """A service account's client of the worker API; use as an async context manager.

    Built on :class:`~server.client.rest.RestClient`, the one HTTP client of
    the package, with the key as its bearer token. ``base_urls``: one URL (a
    load balancer's, recommended) or several instances', used in turn.
    """

    def __init__(
        self,
        base_urls: str | Sequence[str],
        key: str,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        backoff: Backoff = SERVER_BACKOFF,
    ) -> None:
        urls = [base_urls] if isinstance(base_urls, str) else list(base_urls)
        if not urls:
            raise ValueError("need at least one server URL")
        self._servers = [_Server(RestClient(url, token=key, timeout_s=timeout_s)) for url in urls]
        self._current = 0
        self._backoff = backoff

    async def __aenter__(self) -> HttpWorkerApi:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        for server in self._servers:
            await server.rest.aclose()

    async def claim(self, worker_id: str) -> dict[str, Any] | None:
        """The next job, leased to this worker, or None when the queue is empty."""
        response = await self._call("/api/worker/claim", json={"worker_id": worker_id})
        return None if response.status_code == 204 else _body(response)

    async def progress(
        self, generation_id: uuid.UUID, worker_id: str, progress: int, stage: str | None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"progress": progress, "worker_id": worker_id}
        if stage is not None:
            body["stage"] = stage
        return await self._report(generation_id, "progress", body)

    async def upload(
        self, generation_id: uuid.UUID, worker_id: str, content_type: str, data: bytes
    ) -> dict[str, Any]:
        """Store the job's picture as a project resource; the resource (with its ``url``)."""
        response = await self._call(
            f"/api/worker/generations/{generation_id}/asset",
            content=data,
            headers={"Content-Type": content_type, "X-Worker-Id": worker_id},
        )
        return _body(response)

    async def complete(
        self, generation_id: uuid.UUID, worker_id: str, result: dict[str, Any]
    ) -> dict[str, Any]:
        body = {"result": result, "worker_id": worker_id}
        return await self._report(generation_id, "complete", body)

    async def fail(
        self, generation_id: uuid.UUID, worker_id: str, error: str, *, retryable: bool
    ) -> dict[str, Any]:
        body = {"error": error, "retryable": retryable, "worker_id": worker_id}
        return await self._report(generation_id, "fail", body)

    async def _report(self, generation_id: uuid.UUID, call: str, body: Any) -> dict[str, Any]:
        path = f"/api/worker/generations/{generation_id}/{call}"
        return _body(await self._call(path, json=body))

    async def _call(self, path: str, **kwargs: Any) -> httpx.Response:
        """POST to the current server; on to the next one while a server could not take it."""
        order = self._order()
        for attempt, server in enumerate(order, start=1):
            try:
                response = await server.rest.request("POST", path, **kwargs)
            except ApiError as exc:
                if exc.status in TRY_ANOTHER:
                    self._failed(server, f"{exc.status}: {exc.detail}")
                    if attempt < len(order):
                        continue
                if exc.status == 409:
                    raise JobLost(409, exc.detail) from None
                raise WorkerApiError(exc.status, exc.detail) from None
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                # Nothing was sent: another server may take the call as it is.
                self._failed(server, repr(exc))
                if attempt < len(order):
                    continue
                raise
            self._served(server)
            return response
        raise AssertionError("unreachable: the last server's failure is raised")

    def _order(self) -> list[_Server]:
        """The servers from the current one on; those in backoff only if all are."""
        count = len(self._servers)
        ring = [self._servers[(self._current + n) % count] for n in range(count)]
        now = time.monotonic()
        return [server for server in ring if server.retry_at <= now] or ring

    def _failed(self, server: _Server, error: str) -> None:
        server.failures += 1
        wait = self._backoff.delay(server.failures - 1)
        server.retry_at = time.monotonic() + wait
        if len(self._servers) > 1:
            self._current = (self._servers.index(server) + 1) % len(self._servers)
            log.warning(
                "worker.server_unavailable",
                url=server.rest.base_url,
                error=error,
                failures=server.failures,
                skipped_for_s=round(wait, 2),
            )

    def _served(self, server: _Server) -> None:
        if server.failures:
            log.info("worker.server_back", url=server.rest.base_url)
        server.failures, server.retry_at = 0, 0.0
        self._current = self._servers.index(server)


def _body(response: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = response.json()
    return body
