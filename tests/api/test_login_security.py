"""Login security: no secrets in logs, CSRF defence, signed cookies, brute-force throttling."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
import structlog
from litestar import Litestar

from server.access.cookies import COOKIE_NAME, sign
from server.access.tables import AuditLog
from server.access.throttle import throttle_keys
from server.log import configure_logging
from tests.api.conftest import PASSWORD, SECRET, Account, Api, app_for, serving
from tests.conftest import free_port

BASE_URL = "http://testserver.local"  # httpx sends Host: testserver.local
SAME_ORIGIN = BASE_URL
LIMIT = 10  # MOODBOARD_LOGIN_FAILURES_PER_MINUTE's default
WRONG = "not the right password"


def client_at(app: Litestar, ip: str, base_url: str = BASE_URL) -> httpx.AsyncClient:
    """A client of the running ``app`` that connects from address ``ip``."""
    transport = httpx.ASGITransport(app=app, client=(ip, 50123))
    return httpx.AsyncClient(transport=transport, base_url=base_url)


def unique_ip() -> str:
    """An address no other test run uses (IPv6 documentation prefix)."""
    suffix = uuid.uuid4().hex
    return f"2001:db8:{suffix[:4]}:{suffix[4:8]}:{suffix[8:12]}:{suffix[12:16]}::1"


async def attempt(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await client.post("/api/auth/login", json={"email": email, "password": password})


async def fail(client: httpx.AsyncClient, email: str, times: int) -> None:
    """``times`` wrong-password attempts, each refused with 401."""
    for _ in range(times):
        response = await attempt(client, email, WRONG)
        assert response.status_code == 401, response.text


def assert_throttled(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "rate_limited"
    assert 1 <= int(response.headers["retry-after"]) <= 60


async def cookie_login(client: httpx.AsyncClient, account: Account) -> None:
    """Log ``account`` in through ``client`` so its jar holds the session cookie."""
    response = await attempt(client, account.email, PASSWORD)
    assert response.status_code == 200, response.text
    assert COOKIE_NAME in client.cookies


# --- secrets never reach the log -------------------------------------------------------


@contextmanager
def json_logs() -> Iterator[None]:
    """JSON logging to (captured) stderr for the block; the previous set-up restored after."""
    root = logging.getLogger()
    saved_root = (root.handlers[:], root.level)
    uvicorn = [logging.getLogger(n) for n in ("uvicorn", "uvicorn.error", "uvicorn.access")]
    saved_uvicorn = [(lg.handlers[:], lg.propagate, lg.disabled) for lg in uvicorn]
    saved_structlog = structlog.get_config()
    configure_logging("json", "info")
    try:
        yield
    finally:
        root.handlers[:], level = saved_root
        root.setLevel(level)
        for lg, (handlers, propagate, disabled) in zip(uvicorn, saved_uvicorn, strict=True):
            lg.handlers[:], lg.propagate, lg.disabled = handlers, propagate, disabled
        structlog.configure(**saved_structlog)


async def test_tokens_and_passwords_never_reach_the_log(
    api: Api, capfd: pytest.CaptureFixture[str]
) -> None:
    """Register, login, bearer and cookie calls, logout: no server log line holds a secret."""
    with json_logs():
        account = await api.register("logged")
        failed = await attempt(api.client, account.email, "a wrong password, logged?")
        assert failed.status_code == 401
        login = await attempt(api.client, account.email, PASSWORD)
        assert login.status_code == 200
        token = login.json()["token"]
        cookie = api.client.cookies[COOKIE_NAME]
        by_cookie = await api.client.post(
            "/api/projects", json={"name": "Logged"}, headers={"Origin": SAME_ORIGIN}
        )
        assert by_cookie.status_code == 201, by_cookie.text
        api.client.cookies.clear()
        # a token in the query string too: the access log prints paths without it
        me = await api.client.get(f"/api/me?access_token={token}", headers=account.auth)
        assert me.status_code == 200
        sessions = await api.client.get("/api/me/sessions", headers=account.auth)
        assert sessions.status_code == 200
        out = await api.client.post("/api/auth/logout", headers=account.auth)
        assert out.status_code == 204
        refused = await api.client.get("/api/me", headers=account.auth)
        assert refused.status_code == 401
        err = capfd.readouterr().err
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    server_lines = [line for line in lines if line.get("logger") != "httpx"]  # the test client
    requests = [(line["method"], line["path"]) for line in lines if line["event"] == "http.request"]
    assert ("POST", "/api/auth/login") in requests  # the requests were logged...
    assert ("GET", "/api/me") in requests
    assert ("POST", "/api/auth/logout") in requests
    logged = "\n".join(json.dumps(line) for line in server_lines)
    for secret in (account.token, token, cookie, PASSWORD, "a wrong password, logged?"):
        assert secret not in logged  # ... without a secret in them
        assert secret.removeprefix("mbs_") not in logged


# --- CSRF: cookie-authenticated writes need an allowed Origin --------------------------


@pytest.mark.parametrize(
    "origin",
    [
        None,
        "https://evil.example",
        "null",
        "http://testserver.local.evil.example",
        "https://testserver.local",  # another scheme is another origin
        "http://testserver.local:8080",
    ],
)
async def test_cookie_write_from_a_foreign_origin_is_forbidden(
    api: Api, origin: str | None
) -> None:
    """POST /api/projects with the cookie and no or a foreign Origin: 403, nothing created."""
    account = await api.register("victim")
    await cookie_login(api.client, account)
    headers = {"Origin": origin} if origin is not None else {}
    response = await api.client.post("/api/projects", json={"name": "Forged"}, headers=headers)
    assert response.status_code == 403, response.text
    assert response.json()["code"] == "forbidden"
    api.client.cookies.clear()
    listed = await api.client.get("/api/projects", headers=account.auth)
    assert listed.json() == []


async def test_cookie_write_from_the_same_origin_is_allowed(api: Api) -> None:
    """POST /api/projects with the cookie and the server's own Origin: 201."""
    account = await api.register("browser")
    await cookie_login(api.client, account)
    response = await api.client.post(
        "/api/projects", json={"name": "Mine"}, headers={"Origin": SAME_ORIGIN}
    )
    assert response.status_code == 201, response.text
    assert response.json()["owner_id"] == account.id


async def test_cookie_read_needs_no_origin(api: Api) -> None:
    """A GET with the cookie and no Origin is answered (reads are not CSRF-guarded)."""
    account = await api.register("reader")
    await cookie_login(api.client, account)
    for path in ("/api/me", "/api/projects", "/api/me/sessions"):
        response = await api.client.get(path)
        assert response.status_code == 200, (path, response.text)


async def test_bearer_writes_need_no_origin(api: Api) -> None:
    """A state-changing call with the bearer token is not CSRF-checked (no ambient credential)."""
    account = await api.register("script")
    plain = await api.client.post("/api/projects", json={"name": "A"}, headers=account.auth)
    assert plain.status_code == 201, plain.text
    foreign = await api.client.post(
        "/api/projects",
        json={"name": "B"},
        headers={**account.auth, "Origin": "https://elsewhere.example"},
    )
    assert foreign.status_code == 201, foreign.text


async def test_configured_origins_may_write_with_the_cookie(engine: Any, database_url: str) -> None:
    """An Origin listed in MOODBOARD_ALLOWED_ORIGINS may write with the cookie; others may not."""
    app = app_for(
        database_url,
        MOODBOARD_ALLOWED_ORIGINS="https://app.example.com, https://admin.example.com:8443",
    )
    async with serving(app) as client:
        api = Api(app, client)
        account = await api.register("spa")
        await cookie_login(client, account)
        for origin, status in [
            ("https://app.example.com", 201),
            ("https://APP.example.com/", 201),  # origins compare case-insensitively
            ("https://admin.example.com:8443", 201),
            ("https://admin.example.com", 403),  # another port is another origin
            ("https://other.example.com", 403),
            (SAME_ORIGIN, 201),  # the server's own origin stays allowed
        ]:
            response = await client.post(
                "/api/projects", json={"name": "SPA"}, headers={"Origin": origin}
            )
            assert response.status_code == status, (origin, response.text)


async def test_same_origin_is_the_public_url_scheme_included(
    engine: Any, database_url: str
) -> None:
    """With an https public URL, the same origin is https://host; http://host is foreign."""
    app = app_for(database_url, MOODBOARD_PUBLIC_URL="https://testserver.local")
    async with serving(app, base_url="https://testserver.local") as client:
        account = await Api(app, client).register("tls")
        await cookie_login(client, account)
        http = await client.post(
            "/api/projects", json={"name": "X"}, headers={"Origin": "http://testserver.local"}
        )
        assert http.status_code == 403
        https = await client.post(
            "/api/projects", json={"name": "X"}, headers={"Origin": "https://testserver.local"}
        )
        assert https.status_code == 201, https.text


async def test_cookie_logout_and_revocation_are_csrf_guarded(api: Api) -> None:
    """Logout and session revocation by cookie without Origin are 403 (no forced sign-out)."""
    account = await api.register("guarded")
    await cookie_login(api.client, account)
    logout = await api.client.post("/api/auth/logout")
    assert logout.status_code == 403
    listed = (await api.client.get("/api/me/sessions")).json()
    revoke = await api.client.delete(f"/api/me/sessions/{listed[0]['id']}")
    assert revoke.status_code == 403
    assert (await api.client.get("/api/me")).status_code == 200  # still signed in


def tamper(value: str) -> str:
    """``value`` with its last character changed."""
    return value[:-1] + ("A" if value[-1] != "A" else "B")


@pytest.mark.parametrize("how", ["signature", "token", "other-secret", "unsigned", "unknown"])
async def test_a_tampered_cookie_is_unauthorized(api: Api, how: str) -> None:
    """A session cookie whose signature does not match (or names no session) gets 401."""
    account = await api.register("forger")
    await cookie_login(api.client, account)
    genuine = api.client.cookies[COOKIE_NAME]
    token, _, mac = genuine.rpartition(".")
    forged = {
        "signature": f"{token}.{tamper(mac)}",
        "token": f"{tamper(token)}.{mac}",
        "other-secret": sign(token, "x" * 40),
        "unsigned": token,
        "unknown": sign("mbs_" + "A" * 43, SECRET),  # well signed, but no such session
    }[how]
    api.client.cookies.clear()
    sent = await api.client.get("/api/me", headers={"Cookie": f"{COOKIE_NAME}={genuine}"})
    assert sent.status_code == 200  # the genuine cookie, sent the same way, is accepted
    response = await api.client.get("/api/me", headers={"Cookie": f"{COOKIE_NAME}={forged}"})
    assert response.status_code == 401
    assert response.json()["code"] == "unauthorized"


# --- brute-force defence ------------------------------------------------------------


async def test_wrong_password_and_unknown_email_look_the_same(api: Api) -> None:
    """A wrong password and an unknown e-mail get the same 401 problem body."""
    account = await api.register("known")
    wrong = await attempt(api.client, account.email, WRONG)
    unknown = await attempt(api.client, f"nobody-{uuid.uuid4().hex}@example.com", WRONG)
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.headers["content-type"] == unknown.headers["content-type"]
    assert wrong.headers["content-type"].startswith("application/problem+json")
    assert wrong.json() == unknown.json()
    assert wrong.json()["code"] == "unauthorized"
    assert COOKIE_NAME not in wrong.cookies


async def test_an_account_locks_after_ten_failures_in_a_minute(api: Api) -> None:
    """After 10 failures the 11th login, even with the right password, is 429 with Retry-After."""
    assert api.ctx.settings.login_failures_per_minute == LIMIT
    victim = await api.register("victim")
    bystander = await api.register("bystander")
    async with (
        client_at(api.app, "198.51.100.1") as attacker,
        client_at(api.app, "198.51.100.2") as elsewhere,
    ):
        await fail(attacker, victim.email, LIMIT)  # each of the ten is still a plain 401
        assert_throttled(await attempt(attacker, victim.email, PASSWORD))
        # The account is locked from everywhere, and the attacker's address for every account.
        assert_throttled(await attempt(elsewhere, victim.email, PASSWORD))
        assert_throttled(await attempt(attacker, bystander.email, PASSWORD))
        # Another account from another address is not affected.
        ok = await attempt(elsewhere, bystander.email, PASSWORD)
        assert ok.status_code == 200, ok.text
    # Sessions already open keep working: the lock is on logging in, not on the account.
    assert (await api.client.get("/api/me", headers=victim.auth)).status_code == 200


async def test_one_address_is_limited_across_many_accounts(api: Api) -> None:
    """Failures from one address over many e-mails (credential stuffing) lock that address."""
    account = await api.register("target")
    async with (
        client_at(api.app, "192.0.2.66") as stuffer,
        client_at(api.app, "192.0.2.67") as honest,
    ):
        for n in range(LIMIT):
            response = await attempt(stuffer, f"guess-{n}-{uuid.uuid4().hex}@example.com", WRONG)
            assert response.status_code == 401
        assert_throttled(await attempt(stuffer, account.email, PASSWORD))
        assert_throttled(await attempt(stuffer, f"new-{uuid.uuid4().hex}@example.com", WRONG))
        ok = await attempt(honest, account.email, PASSWORD)  # the account itself is fine
        assert ok.status_code == 200, ok.text


async def test_failed_and_throttled_logins_are_audited(api: Api) -> None:
    """login.failed (with the account, address, e-mail) and login.throttled land in audit_log."""
    account = await api.register("audited")
    ghost = f"ghost-{uuid.uuid4().hex}@example.com"
    async with (
        client_at(api.app, "198.51.100.9") as attacker,
        client_at(api.app, "198.51.100.10") as prober,
    ):
        await fail(attacker, account.email, LIMIT)
        assert_throttled(await attempt(attacker, account.email, PASSWORD))
        assert (await attempt(prober, ghost, WRONG)).status_code == 401
    rows = await (
        AuditLog.select(
            AuditLog.action, AuditLog.actor_id, AuditLog.actor_kind, AuditLog.ip, AuditLog.details
        )
        .where(AuditLog.action.is_in(["login.failed", "login.throttled"]))
        .order_by(AuditLog.id)
        .output(load_json=True)
    )
    failed = [r for r in rows if r["action"] == "login.failed"]
    throttled = [r for r in rows if r["action"] == "login.throttled"]
    assert len(failed) == LIMIT + 1
    for row in failed[:LIMIT]:
        assert str(row["actor_id"]) == account.id
        assert row["actor_kind"] == "user"
        assert row["ip"] == "198.51.100.9"
        assert row["details"] == {"email": account.email}
    assert failed[-1]["actor_id"] is None
    assert failed[-1]["actor_kind"] == "anonymous"
    assert (failed[-1]["ip"], failed[-1]["details"]) == ("198.51.100.10", {"email": ghost})
    assert [(r["ip"], r["details"]) for r in throttled] == [
        ("198.51.100.9", {"email": account.email})
    ]


@asynccontextmanager
async def redis_keys_cleaned(redis_url: str, keys: list[str]) -> AsyncIterator[aioredis.Redis]:
    """A Redis client; the throttle's ``keys`` (prefixed ``mb:``, set by the test) go at the end."""
    client = aioredis.from_url(redis_url)
    names = ["mb:" + key for key in keys]
    try:
        await client.delete(*names)
        yield client
    finally:
        await client.delete(*names)
        await client.aclose()


async def test_redis_throttle_is_shared_by_every_instance(
    engine: Any, database_url: str, redis_url: str
) -> None:
    """Two app instances on one Redis share the failure count: 5 + 5 failures lock both."""
    app_a = app_for(database_url, REDIS_URL=redis_url, MOODBOARD_REDIS_PREFIX="mb:")
    app_b = app_for(database_url, REDIS_URL=redis_url, MOODBOARD_REDIS_PREFIX="mb:")
    ip_a, ip_b, ip_c = unique_ip(), unique_ip(), unique_ip()
    email = f"shared-{uuid.uuid4().hex}@example.com"
    keys = [
        *throttle_keys(email, ip_a),
        *throttle_keys(email, ip_b)[1:],
        *throttle_keys(email, ip_c)[1:],
    ]
    async with (
        redis_keys_cleaned(redis_url, keys) as redis,
        serving(app_a),
        serving(app_b),
        client_at(app_a, ip_a) as on_a,
        client_at(app_b, ip_b) as on_b,
        client_at(app_b, ip_c) as on_b_elsewhere,
    ):
        # Through B: Piccolo tables are bound process-wide to the engine of the app started
        # last, and registering writes in a transaction on the serving app's own engine.
        registered = await on_b.post(
            "/api/auth/register", json={"email": email, "password": PASSWORD, "name": "Shared"}
        )
        assert registered.status_code == 201, registered.text
        half = LIMIT // 2
        await fail(on_a, email, half)
        await fail(on_b, email, LIMIT - half)  # the tenth failure in all is still a 401
        # Neither instance saw 10 failures itself, yet both refuse now.
        assert_throttled(await attempt(on_a, email, PASSWORD))
        assert_throttled(await attempt(on_b, email, PASSWORD))
        assert_throttled(await attempt(on_b_elsewhere, email, PASSWORD))
        account_key = "mb:" + throttle_keys(email, None)[0]
        assert int(await redis.get(account_key)) == LIMIT
        assert 0 < await redis.ttl(account_key) <= 60  # the window ends by itself
        assert int(await redis.get(f"mb:login:ip:{ip_a}")) == half
        # A lock Redis no longer holds (the window ended) lets the right password in again.
        await redis.delete(account_key)
        assert (await attempt(on_a, email, PASSWORD)).status_code == 200


async def test_logins_go_on_while_redis_is_down(engine: Any, database_url: str) -> None:
    """Redis down: logging in still works, and each instance still throttles on its own."""
    dead = f"redis://127.0.0.1:{free_port()}/0"
    app = app_for(database_url, REDIS_URL=dead)
    email = f"redisless-{uuid.uuid4().hex}@example.com"
    async with serving(app), client_at(app, unique_ip()) as client:
        registered = await client.post(
            "/api/auth/register", json={"email": email, "password": PASSWORD, "name": "R"}
        )
        assert registered.status_code == 201, registered.text
        assert (await attempt(client, email, PASSWORD)).status_code == 200
        await fail(client, email, LIMIT)
        assert_throttled(await attempt(client, email, PASSWORD))
