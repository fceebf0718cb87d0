"""The HTTP skeleton: liveness, readiness, problem+json errors, and logs without secrets."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from server.app import create_app
from server.log import configure_logging
from server.settings import load_settings
from tests.conftest import create_pg_database, drop_pg_database, free_port

SECRET = "app-test-" + hashlib.sha256(b"tests/test_app.py").hexdigest()


def _app(database_url: str, redis_url: str | None = None) -> Any:
    env = {"DATABASE_URL": database_url, "MOODBOARD_SECRET_KEY": SECRET}
    if redis_url:
        env["REDIS_URL"] = redis_url
    return create_app(load_settings(env))


async def test_healthz_and_readyz(database_url: str, redis_url: str) -> None:
    """With the database and Redis up, /healthz and /readyz answer 200 and say what they checked."""
    async with AsyncTestClient(_app(database_url, redis_url)) as client:
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        ready = await client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json() == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}}


async def test_readyz_embedded_has_no_redis(sqlite_url: str) -> None:
    """In embedded mode readiness checks only the database."""
    async with AsyncTestClient(_app(sqlite_url)) as client:
        ready = await client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["checks"] == {"database": "ok", "redis": "not configured"}


async def test_readyz_names_a_dead_redis(sqlite_url: str) -> None:
    """Redis configured but not answering: 503 problem+json naming redis."""
    dead = f"redis://127.0.0.1:{free_port()}/0"
    async with AsyncTestClient(_app(sqlite_url, dead)) as client:
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert ready.headers["content-type"].startswith("application/problem+json")
        body = ready.json()
        assert body["status"] == 503
        assert body["code"] == "internal"
        assert "redis" in body["detail"]
        assert "database" not in body["detail"]
        assert body["checks"]["database"] == "ok"
        assert body["checks"]["redis"].startswith("failed")
        assert (await client.get("/healthz")).status_code == 200  # alive, just not ready


async def test_readyz_names_a_lost_database(pg_url: str) -> None:
    """The database goes away while serving: 503 naming the database; liveness stays 200."""
    url = await create_pg_database("moodboard_lost")
    try:
        async with AsyncTestClient(_app(url)) as client:
            assert (await client.get("/readyz")).status_code == 200
            await drop_pg_database(url)
            ready = await client.get("/readyz")
            assert ready.status_code == 503
            assert "database" in ready.json()["detail"]
            assert (await client.get("/healthz")).status_code == 200
    finally:
        await drop_pg_database(url)


async def test_errors_are_problem_json(sqlite_url: str) -> None:
    """Unknown routes and wrong methods answer RFC 9457 bodies with a protocol code."""
    async with AsyncTestClient(_app(sqlite_url)) as client:
        missing = await client.get("/api/nothing-here")
        assert missing.status_code == 404
        assert missing.headers["content-type"].startswith("application/problem+json")
        assert missing.json()["code"] == "not_found"
        wrong = await client.post("/healthz")
        assert wrong.status_code == 405
        assert wrong.json()["code"] == "bad_request"
        assert {"type", "status", "title", "detail", "code"} <= set(wrong.json())


async def test_logs_carry_request_ids_and_never_secrets(
    sqlite_url: str, capfd: pytest.CaptureFixture[str]
) -> None:
    """Each request logs one JSON line with its id; tokens and cookies never appear."""
    configure_logging("json", "info")
    token = "tok_" + "z" * 40
    async with AsyncTestClient(_app(sqlite_url)) as client:
        response = await client.get(  # not /healthz: a 200 there is logged at debug only
            f"/api/me?token={token}",
            headers={
                "Authorization": f"Bearer {token}",
                "Cookie": f"moodboard_session={token}",
                "X-Request-ID": "req-123",
            },
        )
        assert response.headers["x-request-id"] == "req-123"
    from server.log import get_logger

    get_logger("test").info("login.attempt", password=token, nested={"api_key": token})
    err = capfd.readouterr().err
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert lines
    assert len(lines) == len(err.splitlines())
    # The test's own HTTP client (httpx) logs the URL it requested: not the server.
    server_lines = [line for line in lines if line.get("logger") != "httpx"]
    assert token not in json.dumps(server_lines)
    access = [line for line in lines if line["event"] == "http.request"]
    assert access
    assert access[-1]["request_id"] == "req-123"
    assert access[-1]["path"] == "/api/me"
    attempt = next(line for line in lines if line["event"] == "login.attempt")
    assert attempt["password"] == "[redacted]"
    assert attempt["nested"] == {"api_key": "[redacted]"}
