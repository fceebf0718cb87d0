"""The worker API over HTTP (PROTOCOL.md 2): what ``moodboard worker`` calls.

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
    """A service account's client of the worker API; use as an async context manager."""

    def __init__(self, base_url: str, key: str, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {key}"},
            timeout=timeout_s,
        )

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
        await self._client.aclose()

    async def claim(self, worker_id: str) -> dict[str, Any] | None:
        """The next job, leased to this worker, or None when the queue is empty."""
        response = await self._client.post("/api/worker/claim", json={"worker_id": worker_id})
        if response.status_code == 204:
            return None
        return _json(response)

    async def progress(
        self, generation_id: uuid.UUID, worker_id: str, progress: int, stage: str | None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"progress": progress, "worker_id": worker_id}
        if stage is not None:
            body["stage"] = stage
        return _json(await self._post(generation_id, "progress", body))

    async def upload(
        self, generation_id: uuid.UUID, worker_id: str, content_type: str, data: bytes
    ) -> dict[str, Any]:
        """Store the job's picture as a project resource; the resource (with its ``url``)."""
        response = await self._client.post(
            f"/api/worker/generations/{generation_id}/asset",
            content=data,
            headers={"Content-Type": content_type, "X-Worker-Id": worker_id},
        )
        return _json(response)

    async def complete(
        self, generation_id: uuid.UUID, worker_id: str, result: dict[str, Any]
    ) -> dict[str, Any]:
        body = {"result": result, "worker_id": worker_id}
        return _json(await self._post(generation_id, "complete", body))

    async def fail(
        self, generation_id: uuid.UUID, worker_id: str, error: str, *, retryable: bool
    ) -> dict[str, Any]:
        body = {"error": error, "retryable": retryable, "worker_id": worker_id}
        return _json(await self._post(generation_id, "fail", body))

    async def _post(self, generation_id: uuid.UUID, call: str, body: Any) -> httpx.Response:
        return await self._client.post(f"/api/worker/generations/{generation_id}/{call}", json=body)


def _json(response: httpx.Response) -> dict[str, Any]:
    if response.is_success:
        body: dict[str, Any] = response.json()
        return body
    try:
        detail = str(response.json().get("detail", response.text))
    except ValueError:
        detail = response.text
    if response.status_code == 409:
        raise JobLost(409, detail)
    raise WorkerApiError(response.status_code, detail)
