"""A pumped socket on picows (Cython), when installed: the fastest receiver available.

W1 has the generator receive every delivery; with the ``websockets`` client
that costs more CPU per frame than the server spends sending it, and the
generator, not the server, would be measured. picows parses frames in C and
calls back per frame; this class offers the same interface as
``harness.Conn`` for sockets that are only pumped (join, send, pump, abort).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

from load_tests.bench.harness import Frame, Handler, Target, decode, encode, ignore

OPEN_TIMEOUT_S = 60.0


class FastConn(WSListener):
    """One client socket on picows; frames go to ``handler`` unless a reply is awaited."""

    def __init__(self) -> None:
        super().__init__()
        self.transport: WSTransport | None = None
        self.project_id: str | None = None
        self.joined_seq = 0
        self.handler: Handler = ignore
        self.closed = False
        self._want: str | None = None  # the ref awaited; None: the `ready` frame
        self._reply: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()

    @classmethod
    async def open(cls, target: Target) -> FastConn:
        _, conn = await ws_connect(
            cls,
            target.ws_url,
            extra_headers={"Authorization": f"Bearer {target.token}"},
            websocket_handshake_timeout=OPEN_TIMEOUT_S,
        )
        assert isinstance(conn, FastConn)
        ready = await asyncio.wait_for(conn._reply, OPEN_TIMEOUT_S)
        if ready.type != "ready":
            raise RuntimeError(f"expected ready, got {ready}")
        return conn

    # -- picows callbacks --------------------------------------------------

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type == WSMsgType.TEXT:
            message = decode(frame.get_payload_as_bytes())
            reply = self._reply
            if not reply.done() and (
                message.type == "ready" if self._want is None else message.ref == self._want
            ):
                reply.set_result(message)
                return
            self.handler(message, time.perf_counter())
        elif frame.msg_type == WSMsgType.CLOSE:
            self.closed = True
            transport.send_close(frame.get_close_code())
            transport.disconnect()

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self.closed = True
        if not self._reply.done():
            self._reply.set_exception(ConnectionError("the server closed the socket"))

    # -- the Conn interface ------------------------------------------------

    async def send(self, frame: dict[str, Any]) -> None:
        if self.closed or self.transport is None:
            raise ConnectionError("socket closed")
        self.transport.send(WSMsgType.TEXT, encode(frame))

    async def join(self, project_id: str, last_seq: int | None = None) -> Frame:
        frame: dict[str, Any] = {"type": "join", "ref": "j", "project_id": project_id}
        if last_seq is not None:
            frame["last_seq"] = last_seq
        self._want = "j"
        self._reply = asyncio.get_running_loop().create_future()
        await self.send(frame)
        reply = await asyncio.wait_for(self._reply, OPEN_TIMEOUT_S)
        if reply.type != "joined":
            raise RuntimeError(f"join failed: {reply}")
        self.project_id, self.joined_seq = project_id, reply.seq or 0
        return reply

    def pump(self, handler: Handler = ignore) -> None:
        self.handler = handler

    async def replay(
        self, project_id: str, last_seq: int, limit_s: float
    ) -> tuple[Frame, list[int]]:
        """Join with ``last_seq``; ``joined`` and the seqs of the events that follow it."""
        seqs: list[int] = []
        until: list[int] = []  # the seq `joined` announces, once known
        caught_up = asyncio.get_running_loop().create_future()

        def collect(frame: Frame, at: float) -> None:
            if frame.type == "event" and frame.seq is not None:
                seqs.append(frame.seq)
                if until and frame.seq >= until[0] and not caught_up.done():
                    caught_up.set_result(None)

        # Set before joining: the replayed events may arrive with `joined` itself.
        self.handler = collect
        reply = await self.join(project_id, last_seq)
        want = reply.seq or 0
        if reply.mode == "replay" and want > (seqs[-1] if seqs else last_seq):
            until.append(want)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(caught_up, limit_s)
        self.handler = ignore
        return reply, seqs

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.disconnect(graceful=False)
