"""The worker API (docs/protocol.md §2.6): claim, progress, complete, fail; service keys only.

"This worker" is the service account that claimed the generation (and, when
the body names one, the ``worker_id`` of the claim). A report on a job the
worker does not hold any more answers 409 and changes nothing. The asset
upload is an extension (docs/generations.md): it stores a picture as a
project resource while the worker holds the job.
"""

from __future__ import annotations

import uuid
from typing import Any, cast

from litestar import Controller, Request, Response, post
from litestar.di import NamedDependency, Provide
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT

from server.access.cookies import COOKIE_NAME
from server.access.principal import ServicePrincipal
from server.access.service_keys import authenticate_service
from server.access.tokens import token_kind
from server.errors import Forbidden, TooLarge, Unauthorized
from server.generations.queue import Owner
from server.http.deps import Ctx, bearer_token, provide_ctx, strictly
from server.http.schemas import (
    ClaimBody,
    ClaimedGeneration,
    CompleteBody,
    FailBody,
    Generation,
    ProgressBody,
    Resource,
    to,
)

SERVICE_ONLY = "the worker API needs a service-account key (POST /api/admin/service-accounts)"


async def provide_worker(request: Request[Any, Any, Any]) -> ServicePrincipal:
    """The calling service account; 401 without a valid key, 403 for a user's credentials."""
    token = bearer_token(request)
    if token is None:
        if COOKIE_NAME in request.cookies:  # a signed-in user's browser
            raise Forbidden(SERVICE_ONLY)
        raise Unauthorized("send 'Authorization: Bearer <service-account key>'")
    if token_kind(token) != "service":
        raise Forbidden(SERVICE_ONLY)
    principal = await authenticate_service(token)
    if principal is None:
        raise Unauthorized("the service-account key is unknown or revoked")
    return principal


Worker = NamedDependency[ServicePrincipal]


def _owner(worker: ServicePrincipal, worker_id: str | None) -> Owner:
    return Owner(account_id=worker.account_id, worker_id=worker_id)


class WorkerController(Controller):
    path = "/api/worker"
    tags = ["worker"]
    dependencies = {"worker": Provide(provide_worker)}

    @post(
        "/claim",
        status_code=HTTP_200_OK,
        responses={HTTP_204_NO_CONTENT: ResponseSpec(None, description="The queue is empty.")},
    )
    async def claim(
        self, data: JSONBody[ClaimBody], worker: Worker, ctx: Ctx
    ) -> Response[ClaimedGeneration]:
        """The fairest queued job, now leased to this worker; 204 when the queue is empty."""
        claimed = await ctx.queue.claim(ctx.notifier, _owner(worker, data.worker_id))
        if claimed is None:
            return Response(cast(ClaimedGeneration, None), status_code=HTTP_204_NO_CONTENT)
        return Response(to(ClaimedGeneration, claimed))

    @post("/generations/{generation_id:uuid}/progress", status_code=HTTP_200_OK)
    async def progress(
        self,
        request: Request[Any, Any, Any],
        generation_id: FromPath[uuid.UUID],
        data: JSONBody[ProgressBody],
        worker: Worker,
        ctx: Ctx,
    ) -> Generation:
        """Progress 0..100 (and the stage); renews the lease. 409: not this worker's job."""
        data = await strictly(request, data)
        entity = await ctx.queue.progress(
            ctx.notifier,
            generation_id,
            _owner(worker, data.worker_id),
            progress=data.progress,
            stage=data.stage,
        )
        return to(Generation, entity)

    @post("/generations/{generation_id:uuid}/complete", status_code=HTTP_200_OK)
    async def complete(
        self,
        generation_id: FromPath[uuid.UUID],
        data: JSONBody[CompleteBody],
        worker: Worker,
        ctx: Ctx,
    ) -> Generation:
        """The job succeeded with ``result``. 409: not this worker's job (or canceled)."""
        entity = await ctx.queue.complete(
            ctx.notifier, generation_id, _owner(worker, data.worker_id), result=data.result
        )
        return to(Generation, entity)

    @post("/generations/{generation_id:uuid}/fail", status_code=HTTP_200_OK)
    async def fail(
        self,
        request: Request[Any, Any, Any],
        generation_id: FromPath[uuid.UUID],
        data: JSONBody[FailBody],
        worker: Worker,
        ctx: Ctx,
    ) -> Generation:
        """The job failed: requeued when ``retryable`` and attempts remain, else failed + refund."""
        data = await strictly(request, data)
        entity = await ctx.queue.fail(
            ctx.notifier,
            generation_id,
            _owner(worker, data.worker_id),
            error=data.error,
            retryable=data.retryable,
        )
        return to(Generation, entity)

    @post("/generations/{generation_id:uuid}/asset", status_code=HTTP_201_CREATED)
    async def asset(
        self, request: Request[Any, Any, Any], generation_id: FromPath[uuid.UUID], worker: Worker
    ) -> Resource:
        """Store the job's picture (raw body, its Content-Type) as a project resource."""
        ctx = provide_ctx(request)
        content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        data = await request.body()
        if len(data) > ctx.settings.storage_max_upload_bytes:
            raise TooLarge(
                f"body: {len(data)} bytes; the limit is {ctx.settings.storage_max_upload_bytes}"
            )
        worker_id = request.headers.get("x-worker-id")
        stored = await ctx.queue.store_asset(
            generation_id,
            _owner(worker, worker_id),
            content_type=content_type,
            data=data,
            metadata={},
        )
        return to(Resource, stored)
