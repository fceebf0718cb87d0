"""Running the app under uvicorn, with a graceful drain of the sockets on SIGTERM."""

from __future__ import annotations

import asyncio
import gc
import signal
import socket
from collections.abc import Callable
from types import FrameType
from typing import Any

import uvicorn

from server.app import create_app
from server.realtime.hub import Realtime
from server.settings import Settings
from server.tasks import spawn
from server.transport.fast_paths import FastPaths, probe, report
from server.transport.guard import guarded_protocol
from server.transport.lean import LeanWebSocketProtocol
from server.transport.upgrade import WebSocketProtocol
from server.transport.wire import expose_send

YOUNG_COLLECTION_ALLOCATIONS = 5_000  # CPython's default is 700 (see DrainingServer.startup)


class DrainingServer(uvicorn.Server):
    """uvicorn, but SIGTERM first closes the sockets with 1012 in batches over a window.

    uvicorn alone closes every socket in the same millisecond when it stops, and
    thousands of clients then reconnect at once. Here the first SIGTERM starts
    the drain and uvicorn's own shutdown follows it (docs/protocol.md §1: sockets
    closed with 1012 within 10 s, then exit).
    """

    def __init__(
        self, config: uvicorn.Config, realtime: Callable[[], Realtime], window_s: float
    ) -> None:
        super().__init__(config)
        self._realtime = realtime
        self._window_s = window_s
        self._draining = False

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        # Before the first socket: whether the fast paths work with these library versions.
        config, ws = self.config, self.config.ws_protocol_class
        paths = await probe(
            config.http_protocol_class, ws, per_message_deflate=config.ws_per_message_deflate
        )
        upgrade_wanted = ws is not None and issubclass(ws, WebSocketProtocol)
        report(paths, wanted=FastPaths(direct_write=True, fast_upgrade=upgrade_wanted))
        await super().startup(sockets)
        # Everything built so far (the app, its routes and models, the modules) lives
        # as long as the process. Frozen, the garbage collector no longer walks it:
        # a full collection then takes a few ms instead of 50-100 ms, during which
        # no socket would be served.
        gc.freeze()
        # Young collections run after 5,000 allocations instead of 700. Serving a
        # socket allocates many objects that live across an await (a database or
        # Redis round trip): collected that often, they survive into the older
        # generations, and those promotions are what starts full collections, each
        # walking every live socket. A reconnect storm measured 0.94-0.96 ms of CPU
        # per resume instead of 0.98-1.01. The older generations keep CPython's
        # thresholds: deferring full collections themselves stalled a 1,000-socket
        # fan-out past its p99 (docs/benchmarks.md, docs/performance.md "Round 3").
        gc.set_threshold(YOUNG_COLLECTION_ALLOCATIONS, *gc.get_threshold()[1:])

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._draining or not self.started:
            super().handle_exit(sig, frame)
            return
        self._draining = True
        # At once, in the signal handler: from here /readyz answers 503 and new upgrades
        # are refused with 503 (a balancer retries them elsewhere), before the drain task runs.
        self._realtime().draining = True
        loop = asyncio.get_event_loop()
        loop.call_soon_threadsafe(lambda: spawn(self._drain(sig, frame), name="drain"))

    async def _drain(self, sig: int, frame: FrameType | None) -> None:
        try:
            await self._realtime().drain(self._window_s)
        finally:
            super().handle_exit(sig, frame)


def run_server(settings: Settings, *, host: str, port: int) -> None:
    """Serve until SIGTERM/SIGINT; a requested, completed shutdown returns normally (exit 0)."""
    # uvicorn handles the signals itself, then re-raises them to the handlers
    # that were there before it: these make that re-raise harmless.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    app = create_app(settings)
    config = uvicorn.Config(
        expose_send(app),  # fan-out frames go straight to the transport (transport/wire.py)
        host=host,
        port=port,
        log_config=None,  # ours (server/log.py): structured, secrets redacted
        access_log=False,  # it prints query strings; our middleware logs requests
        # Drops its parser after an upgrade (no reference cycle per socket), and, with
        # WebSocketProtocol, hands it the request httptools parsed (MOODBOARD_FAST_UPGRADE).
        # With a deadline for request headers and a cap on open connections (guard.py).
        http=guarded_protocol(
            max_connections=settings.max_connections,
            header_timeout_s=settings.header_timeout_s,
        ),
        # Both keep only what an open socket needs (lean.py).
        ws=WebSocketProtocol if settings.fast_upgrade else LeanWebSocketProtocol,
        ws_max_size=64 * 1024,  # larger frames close with 1009 (docs/protocol.md §3.5)
        ws_ping_interval=20.0,
        ws_ping_timeout=30.0,  # a peer that does not answer a ping in 30 s is dropped
        # Compression costs memory per socket, and a compressed frame could not be
        # serialized once for every socket (transport/wire.py).
        ws_per_message_deflate=False,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        # After the drain (every socket closed or aborted), what is left: HTTP requests
        # in flight. The whole stop stays within docs/protocol.md §1's 10 s.
        timeout_graceful_shutdown=2,
        server_header=False,
    )
    realtime: Callable[[], Any] = lambda: app.state.realtime  # noqa: E731 - set in the lifespan
    DrainingServer(config, realtime, settings.drain_window_s).run()
