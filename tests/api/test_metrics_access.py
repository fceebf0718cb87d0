"""Who may read ``/metrics``: loopback peers by default, or holders of the metrics token."""

from __future__ import annotations

import httpx

from tests.api.conftest import app_for, serving

TOKEN = "scrape-" + "k" * 24
REMOTE = ("203.0.113.9", 40000)


def client_at(app: object, peer: tuple[str, int]) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=peer)  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url="http://testserver.local")


async def test_loopback_peer_reads_metrics_and_remote_peer_is_refused(sqlite_url: str) -> None:
    """Without a token, 127.0.0.1 and ::1 may scrape; any other address gets 403 problem+json."""
    app = app_for(sqlite_url)
    async with serving(app):
        for peer in (("127.0.0.1", 1), ("::1", 1)):
            async with client_at(app, peer) as client:
                response = await client.get("/metrics")
            assert response.status_code == 200, peer
            assert "moodboard_ws_open_sockets" in response.text
        async with client_at(app, REMOTE) as client:
            refused = await client.get("/metrics")
        assert refused.status_code == 403
        assert refused.headers["content-type"] == "application/problem+json"
        assert "moodboard_" not in refused.text


async def test_metrics_token_is_required_from_everyone_when_set(sqlite_url: str) -> None:
    """With MOODBOARD_METRICS_TOKEN, only the right Bearer token reads (even from loopback)."""
    app = app_for(sqlite_url, MOODBOARD_METRICS_TOKEN=TOKEN)
    async with serving(app):
        for peer in (("127.0.0.1", 1), REMOTE):
            async with client_at(app, peer) as client:
                anonymous = await client.get("/metrics")
                wrong = await client.get("/metrics", headers={"Authorization": "Bearer nope"})
                odd = await client.get(
                    "/metrics", headers={"Authorization": "Bearer caf\xe9".encode("latin-1")}
                )
                right = await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
            statuses = (anonymous.status_code, wrong.status_code, odd.status_code)
            assert statuses == (401, 401, 401)
            assert right.status_code == 200
            assert "moodboard_http_requests_total" in right.text
