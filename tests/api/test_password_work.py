"""Password work: argon2 off the event loop, cheap checks first, every guess throttled.

Issue 19 item 2: sign-ups froze every socket (argon2 on the loop), 16
wrong-password logins sent at once all got 401 (the limit was read before any
failure was written), and ``DELETE /api/me`` let a session holder guess the
password without limit.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from argon2 import PasswordHasher
from litestar import Litestar

from server.access import passwords
from server.access.hashing import HashPool
from server.access.tables import AppUser, AuditLog
from server.access.throttle import signup_keys, throttle_keys
from server.errors import RateLimited
from tests.api.conftest import PASSWORD, Api, app_for, serving

LIMIT = 10  # MOODBOARD_LOGIN_FAILURES_PER_MINUTE's default
AT_ONCE = 16
WRONG = "not the right password"


def unique_ip() -> str:
    """An address no other test run uses (IPv6 documentation prefix)."""
    suffix = uuid.uuid4().hex
    return f"2001:db8:{suffix[:4]}:{suffix[4:8]}:{suffix[8:12]}:{suffix[12:16]}::2"


def client_at(app: Litestar, ip: str) -> httpx.AsyncClient:
    """A client of the running ``app`` that connects from address ``ip``."""
    transport = httpx.ASGITransport(app=app, client=(ip, 50123))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver.local")


async def sign_up(client: httpx.AsyncClient, email: str) -> httpx.Response:
    body = {"email": email, "password": PASSWORD, "name": "Someone"}
    return await client.post("/api/auth/register", json=body)


async def wrong_logins_at_once(client: httpx.AsyncClient, email: str) -> list[int]:
    """``AT_ONCE`` wrong-password logins sent together; their statuses."""
    body = {"email": email, "password": WRONG}
    responses = await asyncio.wait_for(
        asyncio.gather(*(client.post("/api/auth/login", json=body) for _ in range(AT_ONCE))),
        60,
    )
    return sorted(r.status_code for r in responses)


# --- the login throttle holds under concurrency ---------------------------------


async def test_concurrent_wrong_logins_are_throttled_past_the_limit(api: Api) -> None:
    """16 wrong logins at once (in-memory counters): 10 are checked (401), the rest get 429."""
    victim = await api.register("victim")
    async with client_at(api.app, unique_ip()) as attacker:
        statuses = await wrong_logins_at_once(attacker, victim.email)
        assert statuses == [401] * LIMIT + [429] * (AT_ONCE - LIMIT)
        right = await attacker.post(
            "/api/auth/login", json={"email": victim.email, "password": PASSWORD}
        )
        assert right.status_code == 429, right.text


async def test_concurrent_wrong_logins_are_throttled_on_redis(
    engine: Any, database_url: str, redis_url: str
) -> None:
    """The same burst against Redis-held counters: 10 checked, 6 refused, the count stays 10."""
    app = app_for(database_url, REDIS_URL=redis_url, MOODBOARD_REDIS_PREFIX="mb:")
    ip = unique_ip()
    email = f"burst-{uuid.uuid4().hex}@example.com"
    names = ["mb:" + key for key in throttle_keys(email, ip) + signup_keys(ip)]
    redis = aioredis.from_url(redis_url)
    try:
        async with serving(app), client_at(app, ip) as attacker:
            assert (await sign_up(attacker, email)).status_code == 201
            statuses = await wrong_logins_at_once(attacker, email)
            assert statuses == [401] * LIMIT + [429] * (AT_ONCE - LIMIT)
            assert int(await redis.get(names[0])) == LIMIT  # refused attempts are not counted
    finally:
        await redis.delete(*names)
        await redis.aclose()


async def test_a_right_password_does_not_count_as_a_failure(api: Api) -> None:
    """Many successful logins from one address never lock it (only failures count)."""
    user = await api.register("regular")
    async with client_at(api.app, unique_ip()) as office:
        for _ in range(LIMIT + 2):
            ok = await office.post(
                "/api/auth/login", json={"email": user.email, "password": PASSWORD}
            )
            assert ok.status_code == 200, ok.text


# --- sign-ups -----------------------------------------------------------------


async def test_sign_ups_with_taken_e_mails_are_throttled_per_address(api: Api) -> None:
    """10 sign-ups with a taken e-mail from one address: 409s, then 429; other addresses go on."""
    taken = await api.register("taken")
    prober_ip = unique_ip()
    async with client_at(api.app, prober_ip) as prober, client_at(api.app, unique_ip()) as other:
        for _ in range(LIMIT):
            assert (await sign_up(prober, taken.email)).status_code == 409
        refused = await sign_up(prober, f"fresh-{uuid.uuid4().hex}@example.com")
        assert refused.status_code == 429, refused.text
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        welcome = await sign_up(other, f"fresh-{uuid.uuid4().hex}@example.com")
        assert welcome.status_code == 201, welcome.text
    throttled = await AuditLog.select(AuditLog.ip).where(AuditLog.action == "signup.throttled")
    assert throttled == [{"ip": prober_ip}]


async def test_successful_sign_ups_do_not_count(api: Api) -> None:
    """A dozen new accounts from one address (an office, a school) are all created."""
    async with client_at(api.app, unique_ip()) as office:
        for _ in range(LIMIT + 2):
            created = await sign_up(office, f"new-{uuid.uuid4().hex}@example.com")
            assert created.status_code == 201, created.text


async def test_a_taken_e_mail_is_refused_before_any_hashing(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Signing up with a taken e-mail answers 409 without hashing the password."""
    taken = await api.register("taken")
    hashes: list[str] = []

    class CountingHasher(PasswordHasher):
        def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
            hashes.append(str(password))
            return super().hash(password, salt=salt)

    monkeypatch.setattr(passwords, "_hasher", CountingHasher())
    assert (await sign_up(api.client, taken.email)).status_code == 409
    assert hashes == []


# --- the event loop stays free while hashes run -------------------------------


async def test_the_loop_answers_while_hashes_are_in_flight(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With sign-ups' hashes held mid-way, a concurrent request still completes at once."""
    release, entered = threading.Event(), threading.Event()
    in_flight = [0]
    lock = threading.Lock()

    class HeldHasher(PasswordHasher):
        def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
            with lock:
                in_flight[0] += 1
            entered.set()
            try:
                release.wait(timeout=5)  # on the loop's own thread this would stall everything
                return super().hash(password, salt=salt)
            finally:
                with lock:
                    in_flight[0] -= 1

    monkeypatch.setattr(passwords, "_hasher", HeldHasher())
    sign_ups = [
        asyncio.create_task(sign_up(api.client, f"held-{n}-{uuid.uuid4().hex}@example.com"))
        for n in range(3)
    ]
    try:
        assert await asyncio.wait_for(asyncio.to_thread(entered.wait, 10), 15)
        health = await asyncio.wait_for(api.client.get("/healthz"), 5)
        assert health.status_code == 200
        with lock:
            assert in_flight[0] >= 1  # answered while a hash was still held
        assert not release.is_set()
    finally:
        release.set()
        results = await asyncio.wait_for(asyncio.gather(*sign_ups), 60)
    assert [r.status_code for r in results] == [201, 201, 201]


async def test_the_pool_refuses_work_beyond_its_bound() -> None:
    """A pool with room for one job refuses a second with 429 while the first runs."""
    pool = HashPool(workers=1, max_waiting=1)
    release, started = threading.Event(), threading.Event()

    def held() -> str:
        started.set()
        release.wait(timeout=5)
        return "done"

    first = asyncio.create_task(pool.run(held))
    assert await asyncio.wait_for(asyncio.to_thread(started.wait, 5), 10)
    with pytest.raises(RateLimited):
        await pool.run(lambda: "second")
    release.set()
    assert await asyncio.wait_for(first, 10) == "done"
    assert await asyncio.wait_for(pool.run(lambda: "third"), 10) == "third"
    assert pool.waiting == 0


# --- DELETE /api/me -----------------------------------------------------------


async def test_account_deletion_password_is_throttled_like_a_login(api: Api) -> None:
    """10 wrong passwords on DELETE /api/me are 401; the 11th, even right, is 429; all kept."""
    user = await api.register("careful")
    async with client_at(api.app, unique_ip()) as holder:
        for _ in range(LIMIT):
            wrong = await holder.request(
                "DELETE", "/api/me", json={"password": WRONG}, headers=user.auth
            )
            assert wrong.status_code == 401, wrong.text
        right = await holder.request(
            "DELETE", "/api/me", json={"password": PASSWORD}, headers=user.auth
        )
        assert right.status_code == 429, right.text
        assert 1 <= int(right.headers["retry-after"]) <= 60
    row = await AppUser.select(AppUser.deleted_at).where(AppUser.id == user.id).first()
    assert row is not None
    assert row["deleted_at"] is None
    actions = await AuditLog.select(AuditLog.action).where(AuditLog.actor_id == user.id)
    assert {"action": "account.delete_throttled"} in actions


async def test_account_deletion_guesses_and_login_guesses_share_one_budget(api: Api) -> None:
    """Wrong passwords on DELETE /api/me count against logging in to that account too."""
    user = await api.register("shared")
    async with client_at(api.app, unique_ip()) as one, client_at(api.app, unique_ip()) as two:
        for _ in range(LIMIT):
            wrong = await one.request(
                "DELETE", "/api/me", json={"password": WRONG}, headers=user.auth
            )
            assert wrong.status_code == 401, wrong.text
        login = await two.post("/api/auth/login", json={"email": user.email, "password": PASSWORD})
        assert login.status_code == 429, login.text
