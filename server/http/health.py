"""Liveness and readiness (docs/protocol.md §2.8: /healthz, /readyz)."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Response, get
from litestar.datastructures import State

from server.db.engine import ping
from server.errors import Unavailable
from server.log import get_logger

READY_TIMEOUT_S = 2.0
log = get_logger(__name__)


@get("/healthz", sync_to_thread=False, include_in_schema=True, tags=["operations"])
def healthz() -> dict[str, str]:
    """Liveness: the process serves HTTP. Says nothing about its dependencies."""
    return {"status": "ok"}


async def _check(name: str, probe: Any) -> tuple[str, str]:
    try:
        await asyncio.wait_for(probe, READY_TIMEOUT_S)
    except Exception as exc:  # any failure means "not ready": report it, don't raise
        log.warning("readyz.check_failed", dependency=name, error=repr(exc))
        return name, f"failed: {type(exc).__name__}"
    return name, "ok"


@get("/readyz", tags=["operations"])
async def readyz(state: State) -> Response[dict[str, Any]]:
    """Readiness: 200 only when the database (and Redis, if configured) answer.

    503 from the first moment of a drain (SIGTERM), whatever the dependencies
    say: a balancer takes the instance out of rotation while its sockets close.
    """
    if state.realtime.draining:
        raise Unavailable("not ready: the instance is draining", checks={"instance": "draining"})
    probes = [_check("database", ping(state.engine))]
    if state.redis is not None:
        probes.append(_check("redis", state.redis.ping()))
    checks = dict(await asyncio.gather(*probes))
    if state.redis is None:
        checks["redis"] = "not configured"
    failed = sorted(name for name, outcome in checks.items() if outcome.startswith("failed"))
    if failed:
        raise Unavailable(f"not ready: {', '.join(failed)} did not answer", checks=checks)
    return Response({"status": "ok", "checks": checks})
