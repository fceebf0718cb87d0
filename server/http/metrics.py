"""``GET /metrics``: the Prometheus exposition of server/metrics.py (docs/operations.md).

Who may scrape: with ``MOODBOARD_METRICS_TOKEN`` set, a caller sending
``Authorization: Bearer <that token>`` (from anywhere); without it, only a
peer on the loopback interface (a Prometheus agent or sidecar on the host).
Behind a reverse proxy on the same host the peer is the forwarded client
(``MOODBOARD_FORWARDED_ALLOW_IPS``), so outside callers are refused there too.
A loopback peer must also ask for this server by name (Host: a loopback
address, ``localhost`` or a host of ``MOODBOARD_PUBLIC_URL``): a browser page
on a name rebound to 127.0.0.1 (DNS rebinding) is a loopback peer too.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from litestar import Request, Response, get
from piccolo.engine.postgres import PostgresEngine
from piccolo.query.functions.aggregate import Count, Min

from server import metrics
from server.access.origins import names_this_server
from server.context import AppContext
from server.errors import Forbidden, Unauthorized
from server.generations.tables import Generation
from server.ops.backup import newest_backup
from server.realtime.hub import Realtime


def _loopback(host: str | None) -> bool:
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_scraper(
    request: Request[Any, Any, Any], token: str | None, own_origins: tuple[str, ...]
) -> None:
    """Raise unless the caller may read the metrics (see the module docstring)."""
    if token is None:
        if not _loopback(request.client.host if request.client else None):
            raise Forbidden(
                "metrics are served to loopback peers only; set MOODBOARD_METRICS_TOKEN"
            )
        # A page on a name rebound to 127.0.0.1 reaches us from the victim's own
        # loopback: the peer says nothing then, the Host it asked for does.
        if not names_this_server(request.headers.get("host"), own_origins):
            raise Forbidden("metrics: the Host header does not name this server")
        return
    scheme, _, sent = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(sent.strip().encode(), token.encode()):
        raise Unauthorized("send Authorization: Bearer <MOODBOARD_METRICS_TOKEN>")


async def refresh(ctx: AppContext, realtime: Realtime | None) -> None:
    """Set the gauges read at scrape time: the loop, memory, the generation queue, backups, pool."""
    metrics.ASYNCIO_TASKS.set(len(asyncio.all_tasks()))
    metrics.PYTHON_HEAP_BLOCKS.set(sys.getallocatedblocks())
    if realtime is not None:
        metrics.WS_BUFFERED_BYTES.set(realtime.sockets.buffered_bytes())
    for status in ("queued", "running"):
        rows = await Generation.select(Count().as_alias("n")).where(Generation.status == status)
        metrics.GENERATIONS_WAITING.labels(status).set(rows[0]["n"])
    oldest = await Generation.select(Min(Generation.created_at).as_alias("at")).where(
        Generation.status == "queued"
    )
    at = oldest[0]["at"] if oldest else None
    if isinstance(at, str):  # SQLite hands an aggregate's timestamp back as text
        at = datetime.fromisoformat(at)
    if at is not None and at.tzinfo is None:
        at = at.replace(tzinfo=UTC)  # SQLite hands back naive UTC
    age = 0.0 if at is None else (datetime.now(UTC) - at).total_seconds()
    metrics.GENERATION_OLDEST_QUEUED.set(max(0.0, age))
    newest = await asyncio.to_thread(newest_backup, Path(ctx.settings.backup_dir))
    metrics.BACKUP_LAST_SUCCESS.set(0 if newest is None else newest.taken.timestamp())
    engine = ctx.engine
    pool = getattr(engine, "pool", None) if isinstance(engine, PostgresEngine) else None
    if pool is not None:
        metrics.DB_POOL_SIZE.set(pool.get_size())
        metrics.DB_POOL_IDLE.set(pool.get_idle_size())
        metrics.DB_POOL_MAX.set(pool.get_max_size())


@get("/metrics", include_in_schema=False)
async def metrics_endpoint(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Prometheus text format, version 0.0.4."""
    ctx: AppContext = request.app.state.ctx
    check_scraper(request, ctx.settings.metrics_token, ctx.settings.own_origins)
    await refresh(ctx, getattr(request.app.state, "realtime", None))
    return Response(metrics.render(), media_type=metrics.CONTENT_TYPE_LATEST)
