"""The worker API over HTTP (docs/protocol.md §2.6): what ``moodboard worker`` calls.

Every call carries the service-account key as ``Authorization: Bearer``. A
409 on a report means the job is not this worker's any more (canceled,
reclaimed after its lease expired): :class:`JobLost`, and the worker stops
working on it. Other error answers raise :class:`WorkerApiError`.
"""

from __future__ import annotations

import uuid
from types import TracebackType
from typing import Any

import httpx

from server.client.errors import ApiError
from server.client.rest import RestClient

DEFAULT_TIMEOUT_S = 30.0


class WorkerApiError(Exception):
    """The server refused a call (its problem+json ``detail`` and status)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail


class JobLost(WorkerApiError):
    """409: this worker does not hold the generation any more; drop it."""


class HttpWorkerApi:
    """A service account's client of the worker API; use as an async context manager.

    Built on :class:`~server.client.rest.RestClient`, the one HTTP client of
    the package, with the key as its bearer token.
    """

    def __init__(self, base_url: str, key: str, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self._rest = RestClient(base_url, token=key, timeout_s=timeout_s)

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
        await self._rest.aclose()

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
        try:
            return await self._rest.request("POST", path, **kwargs)
        except ApiError as exc:
            if exc.status == 409:
                raise JobLost(409, exc.detail) from None
            raise WorkerApiError(exc.status, exc.detail) from None


def _body(response: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = response.json()
    return body
