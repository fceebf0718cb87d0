"""The REST half of the client (docs/protocol.md §2): a small typed wrapper over httpx.

Responses decode into the same Structs the server answers with
(``server/http/schemas.py``), so a contract change breaks both sides at once.
Authentication is a bearer token (the default: the one ``register``/``login``
return) or the session cookie (``auth="cookie"``; state-changing calls then
send a same-origin ``Origin``, docs/protocol.md §2.1).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from types import TracebackType
from typing import Any, Literal, Self, TypeVar

import httpx
import msgspec

from server.client.errors import ApiError
from server.http import schemas as s

T = TypeVar("T")
AuthMode = Literal["bearer", "cookie"]
Id = uuid.UUID | str


class RestClient:
    """REST calls of one user (or service account) against one server.

    Use as an async context manager, or call ``aclose``. Every non-2xx answer
    raises :class:`ApiError` with the problem's ``code`` and body. ``http``
    reuses an httpx client (an in-process ASGI one, say); in bearer mode its
    cookie jar is cleared after each call so no cookie rides along.
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        auth: AuthMode = "bearer",
        http: httpx.AsyncClient | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.auth: AuthMode = auth
        self._owns_http = http is None
        self.http = http or httpx.AsyncClient(base_url=self.base_url, timeout=timeout_s)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owns_http:
            await self.http.aclose()

    @property
    def session_cookie(self) -> str | None:
        """The session cookie from the last login (cookie mode), for a socket handshake."""
        value = self.http.cookies.get("moodboard_session")
        return value if isinstance(value, str) else None

    # --- plumbing ---------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """One call (JSON, or raw ``content``); raises :class:`ApiError` unless it succeeded."""
        headers = dict(headers or {})
        if self.auth == "bearer" and self.token is not None:
            headers["Authorization"] = f"Bearer {self.token}"
        if self.auth == "cookie" and method not in ("GET", "HEAD"):
            headers["Origin"] = self.base_url
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        query = None if params is None else {k: v for k, v in params.items() if v is not None}
        response = await self.http.request(
            method, self.base_url + path, json=json, content=content, params=query, headers=headers
        )
        if self.auth == "bearer":
            self.http.cookies.clear()  # bearer mode never rides on a cookie by accident
        if response.is_success:
            return response
        try:
            problem = response.json()
        except ValueError:
            problem = {}
        if not isinstance(problem, dict):
            problem = {}
        raise ApiError(
            response.status_code,
            problem.get("code"),
            str(problem.get("detail") or response.text),
            problem,
        )

    async def _call(self, kind: type[T], method: str, path: str, **kwargs: Any) -> T:
        response = await self.request(method, path, **kwargs)
        return msgspec.json.decode(response.content, type=kind)

    # --- accounts ---------------------------------------------------------------------------

    async def register(self, email: str, password: str, name: str) -> s.AuthResult:
        """Create an account; this client then acts as it."""
        result = await self._call(
            s.AuthResult,
            "POST",
            "/api/auth/register",
            json={"email": email, "password": password, "name": name},
        )
        self.token = result.token
        return result

    async def login(self, email: str, password: str) -> s.AuthResult:
        """Sign in; this client then acts as that user (token, or cookie in cookie mode)."""
        result = await self._call(
            s.AuthResult, "POST", "/api/auth/login", json={"email": email, "password": password}
        )
        self.token = result.token
        return result

    async def logout(self) -> None:
        """Revoke this session everywhere (its sockets close with 4401)."""
        await self.request("POST", "/api/auth/logout")
        self.token = None
        self.http.cookies.clear()

    async def me(self) -> s.User:
        return await self._call(s.User, "GET", "/api/me")

    async def erase_account(self, password: str) -> None:
        """Erase this account (password re-confirmed); the client's token is then void."""
        await self.request("DELETE", "/api/me", json={"password": password})
        self.token = None

    async def grant_credits(self, user_id: Id, delta: int, reason: str) -> s.User:
        """Add (or, negative, remove) a user's credits; platform admins only."""
        return await self._call(
            s.User,
            "POST",
            f"/api/admin/users/{user_id}/credits",
            json={"delta": delta, "reason": reason},
        )

    # --- projects and members -------------------------------------------------------------

    async def create_project(
        self, name: str, *, description: str | None = None, team_id: Id | None = None
    ) -> s.Project:
        body: dict[str, Any] = {"name": name}
        if description is not None:
            body["description"] = description
        if team_id is not None:
            body["team_id"] = str(team_id)
        return await self._call(s.Project, "POST", "/api/projects", json=body)

    async def projects(self) -> list[s.ProjectListed]:
        return await self._call(list[s.ProjectListed], "GET", "/api/projects")

    async def project(self, project_id: Id) -> s.Project:
        return await self._call(s.Project, "GET", f"/api/projects/{project_id}")

    async def update_project(self, project_id: Id, base_version: int, **fields: Any) -> s.Project:
        return await self._call(
            s.Project,
            "PATCH",
            f"/api/projects/{project_id}",
            json={"base_version": base_version, **fields},
        )

    async def delete_project(self, project_id: Id) -> None:
        await self.request("DELETE", f"/api/projects/{project_id}")

    async def members(self, project_id: Id) -> list[s.Member]:
        return await self._call(list[s.Member], "GET", f"/api/projects/{project_id}/members")

    async def add_member(self, project_id: Id, email: str, role: str) -> s.Member:
        return await self._call(
            s.Member,
            "POST",
            f"/api/projects/{project_id}/members",
            json={"email": email, "role": role},
        )

    async def change_member_role(self, project_id: Id, user_id: Id, role: str) -> s.Member:
        return await self._call(
            s.Member, "PATCH", f"/api/projects/{project_id}/members/{user_id}", json={"role": role}
        )

    async def remove_member(self, project_id: Id, user_id: Id) -> None:
        """Remove a member (their sockets get ``left`` with ``access_revoked``)."""
        await self.request("DELETE", f"/api/projects/{project_id}/members/{user_id}")

    # --- rooms and items ------------------------------------------------------------------

    async def rooms(self, project_id: Id) -> list[s.Room]:
        return await self._call(list[s.Room], "GET", f"/api/projects/{project_id}/rooms")

    async def create_room(
        self,
        project_id: Id,
        name: str,
        room_type: str,
        *,
        idempotency_key: str | None = None,
        **fields: Any,
    ) -> s.Room:
        """Create a room; ``fields``: ``attributes``, ``position``, ``id``."""
        return await self._call(
            s.Room,
            "POST",
            f"/api/projects/{project_id}/rooms",
            json={"name": name, "room_type": room_type, **_jsonable(fields)},
            idempotency_key=idempotency_key,
        )

    async def update_room(
        self,
        project_id: Id,
        room_id: Id,
        base_version: int,
        *,
        idempotency_key: str | None = None,
        **fields: Any,
    ) -> s.Room:
        """A versioned change; a stale ``base_version`` may merge, or raise a 409 ApiError."""
        return await self._call(
            s.Room,
            "PATCH",
            f"/api/projects/{project_id}/rooms/{room_id}",
            json={"base_version": base_version, **_jsonable(fields)},
            idempotency_key=idempotency_key,
        )

    async def delete_room(
        self, project_id: Id, room_id: Id, base_version: int, *, idempotency_key: str | None = None
    ) -> None:
        """Delete a room and its items."""
        await self.request(
            "DELETE",
            f"/api/projects/{project_id}/rooms/{room_id}",
            params={"base_version": base_version},
            idempotency_key=idempotency_key,
        )

    async def items(self, project_id: Id, room_id: Id) -> list[s.Item]:
        return await self._call(
            list[s.Item], "GET", f"/api/projects/{project_id}/rooms/{room_id}/items"
        )

    async def create_item(
        self,
        project_id: Id,
        room_id: Id,
        kind: str,
        *,
        idempotency_key: str | None = None,
        **fields: Any,
    ) -> s.Item:
        """Create an item; ``fields``: ``x y w h rotation z data id``."""
        return await self._call(
            s.Item,
            "POST",
            f"/api/projects/{project_id}/rooms/{room_id}/items",
            json={"kind": kind, **_jsonable(fields)},
            idempotency_key=idempotency_key,
        )

    async def update_item(
        self,
        project_id: Id,
        item_id: Id,
        base_version: int,
        *,
        idempotency_key: str | None = None,
        **fields: Any,
    ) -> s.Item:
        """A versioned change; a stale ``base_version`` may merge, or raise a 409 ApiError."""
        return await self._call(
            s.Item,
            "PATCH",
            f"/api/projects/{project_id}/items/{item_id}",
            json={"base_version": base_version, **_jsonable(fields)},
            idempotency_key=idempotency_key,
        )

    async def delete_item(
        self, project_id: Id, item_id: Id, base_version: int, *, idempotency_key: str | None = None
    ) -> None:
        await self.request(
            "DELETE",
            f"/api/projects/{project_id}/items/{item_id}",
            params={"base_version": base_version},
            idempotency_key=idempotency_key,
        )

    async def events(self, project_id: Id, *, after: int = 0, limit: int = 100) -> s.EventPage:
        """Logged events with seq > ``after`` (at most ``limit``) and the project's seq."""
        return await self._call(
            s.EventPage,
            "GET",
            f"/api/projects/{project_id}/events",
            params={"after": after, "limit": limit},
        )

    # --- generations ----------------------------------------------------------------------

    async def request_generation(
        self, project_id: Id, room_id: Id, prompt: str, *, params: dict[str, Any] | None = None
    ) -> s.Generation:
        """Queue a generation (reserves its cost: 402 ApiError when short of credits)."""
        body: dict[str, Any] = {"room_id": str(room_id), "prompt": prompt}
        if params is not None:
            body["params"] = params
        return await self._call(
            s.Generation, "POST", f"/api/projects/{project_id}/generations", json=body
        )

    async def generations(
        self,
        project_id: Id,
        *,
        status: str | None = None,
        limit: int | None = None,
        before: datetime | None = None,
    ) -> list[s.Generation]:
        """The project's generations, newest first."""
        return await self._call(
            list[s.Generation],
            "GET",
            f"/api/projects/{project_id}/generations",
            params={
                "status": status,
                "limit": limit,
                "before": None if before is None else before.isoformat(),
            },
        )

    async def generation(self, generation_id: Id) -> s.Generation:
        return await self._call(s.Generation, "GET", f"/api/generations/{generation_id}")

    async def cancel_generation(self, generation_id: Id) -> s.Generation:
        return await self._call(s.Generation, "POST", f"/api/generations/{generation_id}/cancel")


def _jsonable(fields: dict[str, Any]) -> dict[str, Any]:
    """UUIDs as strings (the rest is JSON already)."""
    return {k: str(v) if isinstance(v, uuid.UUID) else v for k, v in fields.items()}
