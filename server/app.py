"""The composition root: ``create_app(settings)`` wires routes, resources and errors."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin

from server import __version__
from server.access.throttle import (
    FallbackLoginThrottle,
    LoginThrottle,
    MemoryLoginThrottle,
    RedisLoginThrottle,
)
from server.context import AppContext
from server.db.database import Database
from server.events.listener import Listener
from server.generations.builtin import BuiltinGenerator
from server.generations.queue import GenerationQueue
from server.generations.worker import InProcessWorkerApi, Worker
from server.http.admin import AdminController
from server.http.api_docs import api_docs
from server.http.auth import AuthController
from server.http.content import ContentController
from server.http.deps import DEPENDENCIES
from server.http.generations import GenerationController, ProjectGenerationController
from server.http.health import healthz, readyz
from server.http.me import MeController
from server.http.members import InvitationController, MemberController
from server.http.metrics import metrics_endpoint
from server.http.middleware import RequestContextMiddleware
from server.http.openapi import document_problems
from server.http.pages import index, static_files
from server.http.problems import EXCEPTION_HANDLERS
from server.http.projects import ProjectController
from server.http.resources import ResourceController
from server.http.teams import TeamController
from server.http.worker import WorkerController
from server.log import get_logger
from server.ops.loop_lag import sample_forever
from server.ops.maintenance import run_periodically
from server.realtime.bus import Broker, MemoryBroker, RedisBroker
from server.realtime.bus_sharded import ShardedRedisBroker
from server.realtime.endpoint import new_instance_id, ws_endpoint
from server.realtime.hub import Realtime
from server.realtime.presence import MemoryPresence, PresenceStore, RedisPresence
from server.redis_topology import parse_redis_url, redis_client
from server.settings import Settings
from server.tasks import spawn

log = get_logger(__name__)


INPROCESS_GRACE_S = 2.0  # SIGTERM: the sockets' drain comes first, then this


async def _inprocess_worker(
    app: Litestar, settings: Settings, queue: GenerationQueue, stop: asyncio.Event
) -> None:
    """The built-in worker inside ``serve`` (embedded mode): queue calls, no HTTP."""
    api = InProcessWorkerApi(queue, lambda: app.state.ctx.notifier)
    worker = Worker(
        api,
        BuiltinGenerator(settings.worker_step_delay_s),
        worker_id=f"inprocess-{app.state.realtime.instance_id}",
        concurrency=settings.worker_concurrency,
        poll_s=settings.worker_poll_s,
        grace_s=min(settings.worker_grace_s, INPROCESS_GRACE_S),
    )
    try:
        await worker.run(stop)
    except Exception:
        log.exception("worker.inprocess_crashed")


def create_app(settings: Settings) -> Litestar:
    """Build the ASGI application for ``settings``.

    Resources with a lifetime (the Database with its pool, the Redis client)
    open in the app's lifespan and live on ``app.state``.
    """

    @asynccontextmanager
    async def resources(app: Litestar) -> AsyncIterator[None]:
        async with Database.of(
            settings.database, pool_size=settings.db_pool_size, edit_batch=settings.edit_batch
        ) as database:
            engine = database.engine
            topology = parse_redis_url(settings.redis_url) if settings.redis_url else None
            redis = redis_client(topology, settings.redis_pool_size)
            sharded = topology is not None and topology.sharded
            prefix = settings.redis_prefix
            local_throttle = MemoryLoginThrottle(settings.login_failures_per_minute)
            throttle: LoginThrottle = (
                FallbackLoginThrottle(
                    RedisLoginThrottle(redis, settings.login_failures_per_minute, prefix),
                    local_throttle,
                )
                if redis is not None
                else local_throttle
            )
            instance_id = new_instance_id()
            broker: Broker = (
                MemoryBroker()
                if redis is None
                else ShardedRedisBroker(redis, prefix=prefix)
                if sharded
                else RedisBroker(redis, prefix=prefix)
            )
            presence: PresenceStore = (
                RedisPresence(
                    redis,
                    instance_id,
                    ttl_s=settings.presence_ttl_s,
                    prefix=prefix,
                    sharded=sharded,
                )
                if redis is not None
                else MemoryPresence()
            )
            realtime = Realtime(
                broker=broker,
                presence=presence,
                instance_id=instance_id,
                max_sockets_per_user=settings.max_sockets_per_user,
                presence_flush_s=settings.presence_flush_s,
                write_delay_s=settings.write_delay_s,
                feed_heal_s=settings.feed_heal_s,
                access_check_s=settings.access_check_s,
            )
            await realtime.start()
            listener = (
                Listener(
                    settings.database.session_url, realtime.feeds.catch_up, realtime.feeds.heal
                )
                if settings.database.kind == "postgres"
                else None
            )
            if listener is not None:
                await listener.start()
            maintenance = (
                spawn(
                    run_periodically(
                        engine,
                        settings.maintenance_policy,
                        settings.maintenance_interval_s,
                        redis,
                        prefix,
                    ),
                    name="maintenance",
                )
                if settings.maintenance_interval_s > 0
                else None
            )
            queue = GenerationQueue(
                engine,
                lease_s=settings.generation_lease_s,
                max_attempts=settings.generation_max_attempts,
                storage_dir=settings.storage_dir,
            )
            app.state.engine = engine
            app.state.redis = redis
            app.state.realtime = realtime
            app.state.ctx = AppContext(
                settings=settings,
                database=database,
                redis=redis,
                throttle=throttle,
                notifier=realtime,
                queue=queue,
            )
            # Expired leases go back to the queue even while no worker claims.
            worker_stop = asyncio.Event()
            sweeper = spawn(
                queue.sweep_forever(
                    realtime, max(1.0, settings.generation_lease_s / 3), worker_stop
                ),
                name="generation-sweeper",
            )
            worker = (
                spawn(_inprocess_worker(app, settings, queue, worker_stop), name="worker")
                if settings.inprocess_worker
                else None
            )
            lag_sampler = spawn(sample_forever(), name="loop-lag")
            log.info(
                "server.started",
                database=settings.database.redacted,
                broker="in-process" if topology is None else f"redis ({topology.kind})",
                redis_prefix=prefix if topology is not None else None,
                embedded=settings.embedded,
            )
            try:
                yield
            finally:
                worker_stop.set()  # the worker and the sweeper finish what they are doing
                if worker is not None:
                    await worker
                await sweeper
                await queue.close()
                await realtime.drain(0.0)  # anything the SIGTERM drain did not close
                for task in (maintenance, lag_sampler):
                    if task is not None:
                        task.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await task
                if listener is not None:
                    await listener.stop()
                await realtime.stop()
                if redis is not None:
                    await redis.aclose()

    app = Litestar(
        route_handlers=[
            healthz,
            readyz,
            metrics_endpoint,
            AuthController,
            MeController,
            ProjectController,
            MemberController,
            InvitationController,
            TeamController,
            AdminController,
            ContentController,
            ResourceController,
            WorkerController,
            ProjectGenerationController,
            GenerationController,
            ws_endpoint,
            index,
            static_files(),
            api_docs(),
        ],
        dependencies=DEPENDENCIES,
        lifespan=[resources],
        middleware=[RequestContextMiddleware],
        exception_handlers=EXCEPTION_HANDLERS,
        openapi_config=OpenAPIConfig(
            title="Moodboard Realtime",
            version=__version__,
            path="/schema",
            # The swagger-ui page is ours (server/http/api_docs.py): no CDN, a strict CSP.
            render_plugins=[JsonRenderPlugin()],
        ),
        logging_config=None,  # server/log.py configures logging, once, for everything
        debug=False,
    )
    document_problems(app)  # errors are problem+json; Litestar's schema says otherwise
    return app
