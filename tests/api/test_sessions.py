"""Sessions (docs/protocol.md §2.3): login, cookie, listing, revocation, logout, expiry, storage."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from http.cookies import SimpleCookie
from typing import Any

import httpx
import pytest
from litestar import Litestar

from server.access.cookies import COOKIE_NAME
from server.access.sessions import TOUCH_INTERVAL
from server.access.tables import UserSession
from server.db.tables import TABLES
from server.http.auth import SIGNED_IN_HINT
from tests.api.conftest import PASSWORD, Account, Api, app_for, serving

SAME_ORIGIN = {"Origin": "http://testserver.local"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def set_cookie(response: httpx.Response) -> tuple[str, dict[str, str | bool]]:
    """The session cookie's value and its attributes (lower-cased names) from Set-Cookie."""
    headers = [h for h in response.headers.get_list("set-cookie") if h.startswith(COOKIE_NAME)]
    assert len(headers) == 1, response.headers.get_list("set-cookie")
    parsed = SimpleCookie()
    parsed.load(headers[0])
    morsel = parsed[COOKIE_NAME]
    attributes: dict[str, str | bool] = {k: v for k, v in morsel.items() if v}
    return morsel.value, attributes


def client_at(app: Litestar, ip: str, user_agent: str) -> httpx.AsyncClient:
    """Another browser on the running ``app``: its own address, user agent and cookie jar."""
    transport = httpx.ASGITransport(app=app, client=(ip, 50123))
    return httpx.AsyncClient(
        transport=transport, base_url="http://testserver.local", headers={"User-Agent": user_agent}
    )


async def login(
    client: httpx.AsyncClient, email: str, user_agent: str | None = None
) -> httpx.Response:
    headers = {"User-Agent": user_agent} if user_agent else {}
    response = await client.post(
        "/api/auth/login", json={"email": email, "password": PASSWORD}, headers=headers
    )
    assert response.status_code == 200, response.text
    return response


async def session_rows(user_id: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = await UserSession.select().where(
        UserSession.user_id == uuid.UUID(user_id)
    )
    return rows


async def session_id_of(token: str) -> uuid.UUID:
    row = (
        await UserSession.select(UserSession.id)
        .where(UserSession.token_hash == hashlib.sha256(token.encode()).hexdigest())
        .first()
    )
    assert row is not None
    session_id: uuid.UUID = row["id"]
    return session_id


def aware(value: datetime) -> datetime:
    # SQLite hands timestamps back naive; they were written as UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


async def test_login_returns_a_token_and_an_httponly_lax_cookie(api: Api) -> None:
    """Login answers {user, token} and sets an HttpOnly, SameSite=Lax, non-Secure cookie on http."""
    account = await api.register("ann")
    response = await login(api.client, account.email)
    body = response.json()
    assert body["user"]["id"] == account.id
    assert body["user"]["email"] == account.email
    token = body["token"]
    assert token.startswith("mbs_")
    assert token != account.token
    value, attributes = set_cookie(response)
    assert value.rpartition(".")[0] == token  # the token plus its signature
    assert attributes["httponly"] is True
    assert str(attributes["samesite"]).lower() == "lax"
    assert attributes["path"] == "/"
    assert int(str(attributes["max-age"])) == api.ctx.settings.session_ttl_s
    assert "secure" not in attributes
    # Beside it, a hint the page can read (so that it asks /api/me only when signed in):
    # nothing secret in it, the same lifetime.
    hints = [h for h in response.headers.get_list("set-cookie") if h.startswith(SIGNED_IN_HINT)]
    assert len(hints) == 1
    hint = SimpleCookie()
    hint.load(hints[0])
    assert hint[SIGNED_IN_HINT].value == "1"
    assert not hint[SIGNED_IN_HINT]["httponly"]
    assert int(hint[SIGNED_IN_HINT]["max-age"]) == api.ctx.settings.session_ttl_s


@pytest.mark.parametrize(
    ("base_url", "env", "secure"),
    [
        ("https://testserver.local", {}, True),
        ("http://testserver.local", {"MOODBOARD_COOKIE_SECURE": "true"}, True),
        ("https://testserver.local", {"MOODBOARD_COOKIE_SECURE": "false"}, False),
    ],
    ids=["https", "forced-on", "forced-off"],
)
async def test_cookie_is_secure_over_https(
    engine: Any, database_url: str, base_url: str, env: dict[str, str], secure: bool
) -> None:
    """The cookie is Secure over https, or as MOODBOARD_COOKIE_SECURE says when it is set."""
    app = app_for(database_url, **env)
    async with serving(app, base_url=base_url) as client:
        api = Api(app, client)
        account = await api.register("sec")
        response = await login(client, account.email)
        _, attributes = set_cookie(response)
        assert ("secure" in attributes) is secure
        assert attributes["httponly"] is True
        if base_url.startswith("https"):
            me = await client.get("/api/me")  # the browser sends it back over https
            assert me.status_code == 200, me.text
            assert me.json()["id"] == account.id


async def test_me_works_with_the_bearer_token_and_with_the_cookie(api: Api) -> None:
    """GET /api/me answers the user for the bearer token and for the cookie; 401 with neither."""
    account = await api.register("bo")
    token = (await login(api.client, account.email)).json()["token"]
    by_cookie = await api.client.get("/api/me")
    assert by_cookie.status_code == 200, by_cookie.text
    assert by_cookie.json()["email"] == account.email
    api.client.cookies.clear()
    by_bearer = await api.client.get("/api/me", headers=bearer(token))
    assert by_bearer.status_code == 200, by_bearer.text
    assert by_bearer.json() == by_cookie.json()
    anonymous = await api.client.get("/api/me")
    assert anonymous.status_code == 401
    assert anonymous.json()["code"] == "unauthorized"


async def test_sessions_list_records_address_and_agent_and_marks_the_current_one(
    api: Api,
) -> None:
    """GET /api/me/sessions lists live sessions newest first with ip, user agent, `current`."""
    account = await api.register("cy")
    async with (
        client_at(api.app, "203.0.113.7", "Firefox/140 (laptop)") as laptop,
        client_at(api.app, "2001:db8::42", "Safari/19 (phone)") as phone,
    ):
        first = (await login(laptop, account.email)).json()["token"]
        second = (await login(phone, account.email)).json()["token"]
        response = await phone.get("/api/me/sessions")  # with the phone's cookie
        assert response.status_code == 200, response.text
        from_laptop = await laptop.get("/api/me/sessions")
    sessions = response.json()
    assert [(s["ip"], s["user_agent"], s["current"]) for s in sessions[:2]] == [
        ("2001:db8::42", "Safari/19 (phone)", True),
        ("203.0.113.7", "Firefox/140 (laptop)", False),
    ]
    assert [s["id"] for s in sessions] == [
        str(await session_id_of(t)) for t in (second, first, account.token)
    ]
    assert [s["current"] for s in from_laptop.json()] == [False, True, False]
    for session in sessions:
        assert set(session) == {
            "id",
            "created_at",
            "last_seen_at",
            "expires_at",
            "ip",
            "user_agent",
            "current",
        }
    for secret in (account.token, first, second):
        assert secret not in response.text
        assert hashlib.sha256(secret.encode()).hexdigest() not in response.text


async def test_revoking_a_session_makes_its_token_unauthorized(api: Api) -> None:
    """DELETE /api/me/sessions/{id}: 204; that token then gets 401, the caller's keeps working."""
    account = await api.register("di")
    other = (await login(api.client, account.email)).json()["token"]
    api.client.cookies.clear()
    other_id = await session_id_of(other)
    response = await api.client.delete(f"/api/me/sessions/{other_id}", headers=account.auth)
    assert response.status_code == 204, response.text
    revoked = await api.client.get("/api/me", headers=bearer(other))
    assert revoked.status_code == 401
    assert revoked.json()["code"] == "unauthorized"
    assert (await api.client.get("/api/me", headers=account.auth)).status_code == 200
    listed = await api.client.get("/api/me/sessions", headers=account.auth)
    assert [s["id"] for s in listed.json()] == [str(await session_id_of(account.token))]
    again = await api.client.delete(f"/api/me/sessions/{other_id}", headers=account.auth)
    assert again.status_code == 404
    assert other_id in api.ctx.notifier.revoked  # its sockets are told to close


async def test_revoking_the_current_session_signs_the_caller_out(api: Api) -> None:
    """A user may revoke the very session they call with; that token is dead afterwards."""
    account = await api.register("ed")
    own_id = await session_id_of(account.token)
    response = await api.client.delete(f"/api/me/sessions/{own_id}", headers=account.auth)
    assert response.status_code == 204, response.text
    assert (await api.client.get("/api/me", headers=account.auth)).status_code == 401


async def test_another_users_session_cannot_be_revoked(api: Api) -> None:
    """DELETE of someone else's session id is 404 (as if unknown) and leaves it working."""
    victim = await api.register("fay")
    attacker = await api.register("gus")
    victim_session = await session_id_of(victim.token)
    response = await api.client.delete(f"/api/me/sessions/{victim_session}", headers=attacker.auth)
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    unknown = await api.client.delete(f"/api/me/sessions/{uuid.uuid4()}", headers=attacker.auth)
    assert unknown.json() == response.json()  # nothing tells the two apart
    assert (await api.client.get("/api/me", headers=victim.auth)).status_code == 200


async def test_logout_revokes_only_the_current_session(api: Api) -> None:
    """Logout (bearer) 204s, kills that token, clears the cookie; other sessions keep working."""
    account = await api.register("hal")
    first = (await login(api.client, account.email)).json()["token"]
    second = (await login(api.client, account.email)).json()["token"]
    api.client.cookies.clear()
    response = await api.client.post("/api/auth/logout", headers=bearer(first))
    assert response.status_code == 204, response.text
    value, attributes = set_cookie(response)
    assert value == ""
    assert int(str(attributes["max-age"])) == 0
    assert (await api.client.get("/api/me", headers=bearer(first))).status_code == 401
    assert (await api.client.get("/api/me", headers=bearer(second))).status_code == 200
    assert (await api.client.get("/api/me", headers=account.auth)).status_code == 200
    again = await api.client.post("/api/auth/logout", headers=bearer(first))
    assert again.status_code == 401


async def test_logout_with_the_cookie_clears_it_from_the_browser(api: Api) -> None:
    """A browser logging out (cookie + same Origin) loses its cookie, and the session is dead."""
    account = await api.register("ida")
    token = (await login(api.client, account.email)).json()["token"]
    assert COOKIE_NAME in api.client.cookies
    response = await api.client.post("/api/auth/logout", headers=SAME_ORIGIN)
    assert response.status_code == 204, response.text
    assert COOKIE_NAME not in api.client.cookies
    assert SIGNED_IN_HINT not in api.client.cookies  # the page then asks nothing on load
    assert (await api.client.get("/api/me")).status_code == 401
    assert (await api.client.get("/api/me", headers=bearer(token))).status_code == 401


async def test_an_expired_session_is_unauthorized(api: Api) -> None:
    """A session whose expires_at has passed gets 401 and is no longer listed."""
    account = await api.register("jo")
    other = (await login(api.client, account.email)).json()["token"]
    api.client.cookies.clear()
    past = datetime.now(UTC) - timedelta(seconds=1)
    await UserSession.update({UserSession.expires_at: past}).where(
        UserSession.id == await session_id_of(other)
    )
    response = await api.client.get("/api/me", headers=bearer(other))
    assert response.status_code == 401
    assert response.json()["code"] == "unauthorized"
    listed = await api.client.get("/api/me/sessions", headers=account.auth)
    assert [s["id"] for s in listed.json()] == [str(await session_id_of(account.token))]


async def test_activity_pushes_expiry_forward(api: Api) -> None:
    """A request after more than a minute of quiet moves expires_at to now + the session TTL."""
    account = await api.register("kit")
    session_id = await session_id_of(account.token)
    soon = datetime.now(UTC) + timedelta(hours=1)
    quiet_since = datetime.now(UTC) - TOUCH_INTERVAL - timedelta(seconds=30)
    await UserSession.update(
        {UserSession.expires_at: soon, UserSession.last_seen_at: quiet_since}
    ).where(UserSession.id == session_id)
    before = datetime.now(UTC)
    assert (await api.client.get("/api/me", headers=account.auth)).status_code == 200
    row = (await session_rows(account.id))[0]
    ttl = timedelta(seconds=api.ctx.settings.session_ttl_s)
    assert aware(row["expires_at"]) >= before + ttl
    assert aware(row["last_seen_at"]) >= before
    listed = (await api.client.get("/api/me/sessions", headers=account.auth)).json()
    assert datetime.fromisoformat(listed[0]["expires_at"]) >= before + ttl


async def test_activity_within_a_minute_does_not_rewrite_the_session(api: Api) -> None:
    """Requests less than a minute apart leave expires_at alone (no write per request)."""
    account = await api.register("lu")
    session_id = await session_id_of(account.token)
    soon = datetime.now(UTC) + timedelta(hours=1)
    await UserSession.update(
        {UserSession.expires_at: soon, UserSession.last_seen_at: datetime.now(UTC)}
    ).where(UserSession.id == session_id)
    assert (await api.client.get("/api/me", headers=account.auth)).status_code == 200
    row = (await session_rows(account.id))[0]
    assert abs(aware(row["expires_at"]) - soon) < timedelta(seconds=1)


async def dump_every_table() -> str:
    """Every row of every table, as one string."""
    dumps = []
    for table in TABLES:
        rows = await table.select()
        dumps.append(f"{table._meta.tablename}: {rows!r}")
    return "\n".join(dumps)


async def test_tokens_and_passwords_are_never_stored_in_clear(api: Api) -> None:
    """No column of any table holds a session token or password; token_hash is its SHA-256 hex."""
    account = await api.register("mo")
    login_response = await login(api.client, account.email)
    cookie_value, _ = set_cookie(login_response)
    token = login_response.json()["token"]
    tokens = [account.token, token]
    dump = await dump_every_table()
    assert account.email in dump  # the dump does hold the data it should
    for secret in (*tokens, cookie_value, PASSWORD):
        assert secret not in dump
    # nor the random part alone (without the mbs_ prefix)
    assert all(t.removeprefix("mbs_") not in dump for t in tokens)
    rows = await session_rows(account.id)
    assert sorted(r["token_hash"] for r in rows) == sorted(
        hashlib.sha256(t.encode()).hexdigest() for t in tokens
    )


async def test_session_tokens_are_unique_per_login(api: Api) -> None:
    """Each login makes a new session with its own token (never a reused one)."""
    account: Account = await api.register("ned")
    tokens = {(await login(api.client, account.email)).json()["token"] for _ in range(3)}
    assert len(tokens | {account.token}) == 4
    assert len(await session_rows(account.id)) == 4
