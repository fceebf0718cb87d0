"""ASGI middleware: a request id on every log line, and one access-log line per request.

The access line carries the path without its query string and no headers, so
tokens and cookies never reach the log (docs/security.md "Tokens").
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Awaitable
from typing import Any

import structlog
from litestar.enums import ScopeType
from litestar.types import ASGIApp, HTTPScope, Message, Receive, Scope, Send

from server import metrics
from server.log import get_logger

_CLIENT_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
log = get_logger("server.http")


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            candidate = value.decode("latin-1")
            if _CLIENT_REQUEST_ID.match(candidate):
                return candidate
    return uuid.uuid4().hex


# Answers that only say "nothing new", asked again and again: an idle worker's empty
# claim (one a second, 86,400 lines a day), a balancer's or the image's health checks.
# Logged at debug; any other status of the same paths stays at info.
ROUTINE_POLLS = frozenset({("/api/worker/claim", 204), ("/healthz", 200), ("/readyz", 200)})


class RequestContextMiddleware:
    """Bind ``request_id`` for the request's duration and log how it ended."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        if scope["type"] != ScopeType.HTTP:  # a socket's lines carry its connection_id
            # (bound by server/realtime/endpoint.py). The app's own awaitable, not one
            # awaited here: no coroutine of this middleware for a socket's whole life.
            return self.app(scope, receive, send)
        return self._http(scope, receive, send)

    async def _http(self, scope: HTTPScope, receive: Receive, send: Send) -> None:
        request_id = _request_id(scope)
        status: dict[str, Any] = {"code": None}
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                headers = list(message.get("headers", ()))
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                metrics.http_answered(scope.get("method"), status["code"], started)
                routine = (scope.get("path"), status["code"]) in ROUTINE_POLLS
                (log.debug if routine else log.info)(
                    "http.request",
                    method=scope.get("method"),
                    path=scope.get("path"),
                    status=status["code"],
                    duration_ms=round((time.perf_counter() - started) * 1000, 2),
                )
