"""The startup probe of the transport fast paths (server/transport/fast_paths.py).

With the locked uvicorn and websockets both paths must be on: if a library
upgrade turns one off, the first test fails here (and the server's startup
line and ``moodboard_transport_fast_path`` say so in production).
"""

from __future__ import annotations

from typing import Any

import structlog
from prometheus_client import REGISTRY
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from server.transport.fast_paths import FastPaths, probe, report
from server.transport.upgrade import UpgradingHttpProtocol, WebSocketProtocol

BOTH = FastPaths(direct_write=True, fast_upgrade=True)


async def test_both_fast_paths_are_on_with_the_locked_libraries() -> None:
    """serve.py's protocols, on the installed uvicorn and websockets, take both fast paths."""
    assert await probe(UpgradingHttpProtocol, WebSocketProtocol) == BOTH


async def test_the_fast_upgrade_setting_off_leaves_the_direct_write_on() -> None:
    """MOODBOARD_FAST_UPGRADE=false (uvicorn's own WebSocket protocol) only skips the upgrade."""
    paths = await probe(UpgradingHttpProtocol, WebSocketsSansIOProtocol)
    assert paths == FastPaths(direct_write=True, fast_upgrade=False)


async def test_a_uvicorn_that_no_longer_calls_the_upgrade_hook_is_seen() -> None:
    """If uvicorn's HTTP protocol stopped calling our override, the probe says the path is off."""
    paths = await probe(HttpToolsProtocol, WebSocketProtocol)
    assert paths == FastPaths(direct_write=True, fast_upgrade=False)


class WrappedSend(WebSocketProtocol):
    """As if uvicorn handed the app a wrapper instead of its protocol's bound ``send``."""

    async def run_asgi(self) -> None:
        bound = self.send

        async def send(message: Any) -> None:
            await bound(message)

        self.send = send  # type: ignore[method-assign]
        await super().run_asgi()


async def test_a_uvicorn_whose_send_is_no_longer_its_protocols_is_seen() -> None:
    """Frames then go through ASGI send (still arriving); the probe says direct write is off."""
    paths = await probe(UpgradingHttpProtocol, WrappedSend)
    assert paths == FastPaths(direct_write=False, fast_upgrade=True)


def test_the_report_is_one_record_and_the_gauge() -> None:
    """One structured line at startup, a warning when a wanted path is off; the gauge follows."""
    lost = FastPaths(direct_write=False, fast_upgrade=True)
    with structlog.testing.capture_logs() as records:
        report(lost, wanted=BOTH)
    assert [(r["event"], r["log_level"], r["direct_write"]) for r in records] == [
        ("transport.fast_paths", "warning", False)
    ]
    assert {"uvicorn", "websockets", "fast_upgrade"} <= set(records[0])
    gauge = "moodboard_transport_fast_path"
    assert REGISTRY.get_sample_value(gauge, {"path": "direct_write"}) == 0
    assert REGISTRY.get_sample_value(gauge, {"path": "fast_upgrade"}) == 1
    with structlog.testing.capture_logs() as records:
        report(BOTH, wanted=BOTH)
    assert [r["log_level"] for r in records] == ["info"]
    assert REGISTRY.get_sample_value(gauge, {"path": "direct_write"}) == 1
