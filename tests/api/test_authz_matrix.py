"""Who may call what: every REST route x every kind of caller -> the status (docs/protocol.md §2.2).

``EXPECTED`` is the matrix, one row per (method, path template) of the app,
one column per caller:

- ``anonymous``: no credentials at all;
- ``service``: a service-account key (POST /api/admin/service-accounts) as Bearer;
  it authenticates the worker API only, so every user endpoint answers 401;
- ``non_member``: a signed-in user with no role on the project;
- ``viewer`` / ``editor`` / ``owner``: direct members of the project;
- ``team_editor``: editor only through a team grant (the owner's team, granted
  ``editor`` with POST /api/projects/{pid}/teams); a plain member of that team;
- ``admin``: a platform admin who is not a member of the project (no special
  rights on it).

For the ``/api/teams/{team_id}`` rows the team is owned by ``owner`` and has
``team_editor`` as a plain member. ``REQUESTS`` says, per row, how to build a
valid request: valid bodies and live targets, so only authorization decides
the status. Every call that changes state acts on state made for that one
call (a fresh project, team, invitation, session or account), so no result
depends on the order of the calls.

``test_matrix_covers_every_route`` fails when a route has no row (a new
endpoint must say who may call it) or a row names a route that does not exist.
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from litestar.routes import HTTPRoute

from server.access.sessions import NewSession, start_session
from server.credits.service import change_balance
from server.types import UserId
from tests.api.conftest import PASSWORD, Account, Api, app_for
from tests.pictures import png

CALLERS = (
    "anonymous",
    "service",
    "non_member",
    "viewer",
    "editor",
    "team_editor",
    "owner",
    "admin",
)
USERS = CALLERS[2:]  # the callers that are signed-in users

# fmt: off
EXPECTED: dict[tuple[str, str], str] = {
    #                                                           anon svc out view edit team own adm
    ("POST",   "/api/auth/register"):                             "201 201 201 201 201 201 201 201",
    ("POST",   "/api/auth/login"):                                "200 200 200 200 200 200 200 200",
    ("POST",   "/api/auth/logout"):                               "401 401 204 204 204 204 204 204",
    ("GET",    "/api/me"):                                        "401 401 200 200 200 200 200 200",
    ("DELETE", "/api/me"):                                        "401 401 204 204 204 204 204 204",
    ("GET",    "/api/me/sessions"):                               "401 401 200 200 200 200 200 200",
    ("DELETE", "/api/me/sessions/{session_id}"):                  "401 401 204 204 204 204 204 204",
    ("GET",    "/api/me/export"):                                 "401 401 200 200 200 200 200 200",
    ("GET",    "/api/projects"):                                  "401 401 200 200 200 200 200 200",
    ("POST",   "/api/projects"):                                  "401 401 201 201 201 201 201 201",
    ("GET",    "/api/projects/{project_id}"):                     "401 401 403 200 200 200 200 403",
    ("PATCH",  "/api/projects/{project_id}"):                     "401 401 403 403 200 200 200 403",
    ("DELETE", "/api/projects/{project_id}"):                     "401 401 403 403 403 403 204 403",
    ("GET",    "/api/projects/{project_id}/members"):             "401 401 403 403 403 403 200 403",
    ("POST",   "/api/projects/{project_id}/members"):             "401 401 403 403 403 403 201 403",
    ("PATCH",  "/api/projects/{project_id}/members/{user_id}"):   "401 401 403 403 403 403 200 403",
    ("DELETE", "/api/projects/{project_id}/members/{user_id}"):   "401 401 403 403 403 403 204 403",
    ("POST",   "/api/projects/{project_id}/invitations"):         "401 401 403 403 403 403 201 403",
    ("GET",    "/api/projects/{project_id}/invitations"):         "401 401 403 403 403 403 200 403",
    ("DELETE", "/api/projects/{project_id}/invitations/{invitation_id}"):
                                                                  "401 401 403 403 403 403 204 403",
    ("GET",    "/api/projects/{project_id}/teams"):               "401 401 403 403 403 403 200 403",
    ("GET",    "/api/projects/{project_id}/rooms"):               "401 401 403 200 200 200 200 403",
    ("POST",   "/api/projects/{project_id}/rooms"):               "401 401 403 403 201 201 201 403",
    ("PATCH",  "/api/projects/{project_id}/rooms/{room_id}"):     "401 401 403 403 200 200 200 403",
    ("DELETE", "/api/projects/{project_id}/rooms/{room_id}"):     "401 401 403 403 204 204 204 403",
    ("GET",    "/api/projects/{project_id}/rooms/{room_id}/items"):
                                                                  "401 401 403 200 200 200 200 403",
    ("POST",   "/api/projects/{project_id}/rooms/{room_id}/items"):
                                                                  "401 401 403 403 201 201 201 403",
    ("PATCH",  "/api/projects/{project_id}/items/{item_id}"):     "401 401 403 403 200 200 200 403",
    ("DELETE", "/api/projects/{project_id}/items/{item_id}"):     "401 401 403 403 204 204 204 403",
    ("GET",    "/api/projects/{project_id}/events"):              "401 401 403 200 200 200 200 403",
    ("POST",   "/api/projects/{project_id}/generations"):         "401 401 403 403 202 202 202 403",
    ("GET",    "/api/projects/{project_id}/generations"):         "401 401 403 200 200 200 200 403",
    ("GET",    "/api/generations/{generation_id}"):               "401 401 403 200 200 200 200 403",
    ("POST",   "/api/generations/{generation_id}/cancel"):        "401 401 403 403 200 200 200 403",
    ("POST",   "/api/projects/{project_id}/teams"):               "401 401 403 403 403 403 201 403",
    ("DELETE", "/api/projects/{project_id}/teams/{team_id}"):     "401 401 403 403 403 403 204 403",
    ("GET",    "/api/invitations/{token}"):                       "200 200 200 200 200 200 200 200",
    ("POST",   "/api/invitations/{token}/accept"):                "401 401 200 200 200 200 200 200",
    ("POST",   "/api/teams"):                                     "401 401 201 201 201 201 201 201",
    ("GET",    "/api/teams"):                                     "401 401 200 200 200 200 200 200",
    ("GET",    "/api/teams/{team_id}"):                           "401 401 403 403 403 200 200 403",
    ("POST",   "/api/teams/{team_id}/members"):                   "401 401 403 403 403 403 201 403",
    ("DELETE", "/api/teams/{team_id}/members/{user_id}"):         "401 401 403 403 403 403 204 403",
    ("POST",   "/api/worker/claim"):                              "401 200 403 403 403 403 403 403",
    ("POST",   "/api/worker/generations/{generation_id}/progress"):
                                                                  "401 200 403 403 403 403 403 403",
    ("POST",   "/api/worker/generations/{generation_id}/complete"):
                                                                  "401 200 403 403 403 403 403 403",
    ("POST",   "/api/worker/generations/{generation_id}/fail"):   "401 200 403 403 403 403 403 403",
    ("POST",   "/api/worker/generations/{generation_id}/asset"):  "401 201 403 403 403 403 403 403",
    ("POST",   "/api/projects/{project_id}/resources"):           "401 401 403 403 201 201 201 403",
    ("GET",    "/api/projects/{project_id}/resources/{resource_id}"):
                                                                  "401 401 403 200 200 200 200 403",
    ("POST",   "/api/admin/service-accounts"):                    "401 401 403 403 403 403 403 201",
    ("GET",    "/api/admin/service-accounts"):                    "401 401 403 403 403 403 403 200",
    ("DELETE", "/api/admin/service-accounts/{account_id}"):       "401 401 403 403 403 403 403 204",
    ("POST",   "/api/admin/service-accounts/{account_id}/rotate"):
                                                                  "401 401 403 403 403 403 403 200",
    ("DELETE", "/api/admin/service-accounts/{account_id}/previous-key"):
                                                                  "401 401 403 403 403 403 403 204",
    ("POST",   "/api/admin/users/{user_id}/credits"):             "401 401 403 403 403 403 403 200",
    ("GET",    "/api/admin/audit"):                               "401 401 403 403 403 403 403 200",
    # Decided by the peer address or MOODBOARD_METRICS_TOKEN, not by the caller's role:
    # these in-process calls come from loopback (tests/api/test_metrics_access.py).
    ("GET",    "/metrics"):                                       "200 200 200 200 200 200 200 200",
}
# fmt: on

# Answer without any credentials; not in the matrix (docs/protocol.md §2.8: liveness, readiness;
# the moodboard page and its static files).
PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/"})
STATIC_ROUTE, STATIC_SAMPLE = "/static/{file_path}", "/static/moodboard-client.js"
PUBLIC_PREFIX = "/schema"  # the OpenAPI document and its viewers


def expected_statuses(key: tuple[str, str]) -> dict[str, int]:
    """One matrix row as ``{caller: status}``."""
    statuses = [int(s) for s in EXPECTED[key].split()]
    assert len(statuses) == len(CALLERS), f"{key}: need one status per caller"
    return dict(zip(CALLERS, statuses, strict=True))


# --- the world every call works in ----------------------------------------------


@dataclass(frozen=True)
class Call:
    """A valid request for one row: path parameters, body, and whose token to send."""

    params: dict[str, str] = field(default_factory=dict)
    json: Any = None
    token: str | None = None  # replaces the caller's usual token (a fresh session of theirs)
    query: dict[str, str] = field(default_factory=dict)
    content: bytes | None = None  # a raw body (sent with ``content_type``) instead of JSON
    content_type: str = "application/octet-stream"


def ok(response: httpx.Response, status: int) -> Any:
    """The JSON of a set-up step's response, which must have succeeded with ``status``."""
    assert response.status_code == status, f"set-up step failed: {response.text}"
    return response.json() if response.content else None


@dataclass
class World:
    """The users, service key, team and project that the calls of one test act on."""

    api: Api
    users: dict[str, Account]
    target: Account  # the user that member and team-member calls act on
    service_key: str
    team_id: str  # owned by owner; team_editor is a member; granted editor on projects
    project_id: str  # read-only calls use this one
    cache: dict[str, Any] = field(default_factory=dict)  # set-up shared by read-only calls

    @property
    def owner(self) -> Account:
        return self.users["owner"]

    @classmethod
    async def build(cls, api: Api) -> World:
        users = {name: await api.register(name) for name in USERS if name != "admin"}
        users["admin"] = await api.admin()
        created = ok(
            await api.client.post(
                "/api/admin/service-accounts", json={"name": "worker"}, headers=users["admin"].auth
            ),
            201,
        )
        world = cls(
            api=api,
            users=users,
            target=await api.register("target"),
            service_key=created["key"],
            team_id="",
            project_id="",
        )
        world.team_id = await world.fresh_team()
        world.project_id = await world.fresh_project()
        return world

    def token(self, caller: str) -> str | None:
        if caller == "anonymous":
            return None
        if caller == "service":
            return self.service_key
        return self.users[caller].token

    async def fresh_team(self, *others: Account) -> str:
        """A new team owned by owner with team_editor and ``others`` as plain members."""
        team = ok(
            await self.api.client.post(
                "/api/teams", json={"name": "Studio"}, headers=self.owner.auth
            ),
            201,
        )
        for member in (self.users["team_editor"], *others):
            ok(
                await self.api.client.post(
                    f"/api/teams/{team['id']}/members",
                    json={"email": member.email, "role": "member"},
                    headers=self.owner.auth,
                ),
                201,
            )
        team_id: str = team["id"]
        return team_id

    async def fresh_project(self) -> str:
        """A new project of owner's: viewer and editor direct, the team granted editor."""
        project_id: str = (await self.api.project(self.owner))["id"]
        await self.api.add_member(self.owner, project_id, self.users["viewer"], "viewer")
        await self.api.add_member(self.owner, project_id, self.users["editor"], "editor")
        ok(
            await self.api.client.post(
                f"/api/projects/{project_id}/teams",
                json={"team_id": self.team_id, "role": "editor"},
                headers=self.owner.auth,
            ),
            201,
        )
        return project_id

    async def new_session(self, account: Account) -> NewSession:
        """Another session of ``account`` (as a login makes, without its slow password check)."""
        ttl_s = self.api.ctx.settings.session_ttl_s
        return await start_session(
            UserId(uuid.UUID(account.id)), ttl_s=ttl_s, ip=None, user_agent=None
        )

    async def stand_in(self, caller: str) -> Account | None:
        """A new account in the same position as ``caller`` (for calls that use it up)."""
        if caller in ("anonymous", "service"):
            return None
        if caller == "admin":
            return await self.api.admin()
        account = await self.api.register(caller)
        if caller == "owner":
            await self.api.project(account)
        elif caller in ("viewer", "editor"):
            await self.api.add_member(self.owner, await self.fresh_project(), account, caller)
        elif caller == "team_editor":
            ok(
                await self.api.client.post(
                    f"/api/teams/{self.team_id}/members",
                    json={"email": account.email, "role": "member"},
                    headers=self.owner.auth,
                ),
                201,
            )
        return account


# --- how to make a valid request for each row -----------------------------------

Prepare = Callable[[World, str], Awaitable[Call]]
REQUESTS: dict[tuple[str, str], Prepare] = {}


def request_for(method: str, path: str) -> Callable[[Prepare], Prepare]:
    def register(prepare: Prepare) -> Prepare:
        assert (method, path) not in REQUESTS, f"two requests for {method} {path}"
        REQUESTS[(method, path)] = prepare
        return prepare

    return register


def new_email() -> str:
    return f"matrix-{uuid.uuid4().hex[:12]}@example.com"


@request_for("POST", "/api/auth/register")
async def _register(w: World, caller: str) -> Call:
    return Call(json={"email": new_email(), "password": PASSWORD, "name": "Newcomer"})


@request_for("POST", "/api/auth/login")
async def _login(w: World, caller: str) -> Call:
    return Call(json={"email": w.target.email, "password": PASSWORD})


@request_for("POST", "/api/auth/logout")
async def _logout(w: World, caller: str) -> Call:
    session = await w.new_session(w.users[caller]) if caller in USERS else None
    return Call(token=None if session is None else session.token)


@request_for("GET", "/api/me")
@request_for("GET", "/api/me/sessions")
@request_for("GET", "/api/me/export")
@request_for("GET", "/api/projects")
@request_for("GET", "/api/teams")
@request_for("GET", "/api/admin/audit")
@request_for("GET", "/metrics")
async def _no_arguments(w: World, caller: str) -> Call:
    return Call()


@request_for("DELETE", "/api/me")
async def _erase_me(w: World, caller: str) -> Call:
    account = await w.stand_in(caller)
    return Call(json={"password": PASSWORD}, token=None if account is None else account.token)


@request_for("DELETE", "/api/me/sessions/{session_id}")
async def _revoke_session(w: World, caller: str) -> Call:
    account = w.users[caller] if caller in USERS else w.target
    session = await w.new_session(account)  # a second session of the caller's, to revoke
    return Call({"session_id": str(session.id)})


@request_for("POST", "/api/projects")
async def _create_project(w: World, caller: str) -> Call:
    return Call(json={"name": "Cabin", "description": "by the lake"})


@request_for("GET", "/api/projects/{project_id}")
@request_for("GET", "/api/projects/{project_id}/members")
@request_for("GET", "/api/projects/{project_id}/teams")
async def _shared_project(w: World, caller: str) -> Call:
    return Call({"project_id": w.project_id})


@request_for("PATCH", "/api/projects/{project_id}")
async def _patch_project(w: World, caller: str) -> Call:
    project_id = await w.fresh_project()
    project = ok(await w.api.client.get(f"/api/projects/{project_id}", headers=w.owner.auth), 200)
    return Call({"project_id": project_id}, {"base_version": project["version"], "name": "Loft"})


@request_for("DELETE", "/api/projects/{project_id}")
async def _delete_project(w: World, caller: str) -> Call:
    return Call({"project_id": await w.fresh_project()})


async def fresh_room(w: World) -> tuple[str, dict[str, Any]]:
    """A fresh project of owner's (as fresh_project) with one room; (project id, room)."""
    project_id = await w.fresh_project()
    room = ok(
        await w.api.client.post(
            f"/api/projects/{project_id}/rooms",
            json={"name": "Kitchen", "room_type": "kitchen"},
            headers=w.owner.auth,
        ),
        201,
    )
    return project_id, room


async def fresh_item(w: World) -> tuple[str, dict[str, Any]]:
    """A fresh project with a room holding one note; (project id, item)."""
    project_id, room = await fresh_room(w)
    item = ok(
        await w.api.client.post(
            f"/api/projects/{project_id}/rooms/{room['id']}/items",
            json={"kind": "note"},
            headers=w.owner.auth,
        ),
        201,
    )
    return project_id, item


async def fresh_generation(w: World) -> str:
    """A queued generation in a fresh project of owner's (paid from a topped-up balance)."""
    if "topped_up" not in w.cache:
        await change_balance(w.api.ctx.engine, UserId(uuid.UUID(w.owner.id)), 10_000, "test")
        w.cache["topped_up"] = True
    project_id, room = await fresh_room(w)
    generation = ok(
        await w.api.client.post(
            f"/api/projects/{project_id}/generations",
            json={"room_id": room["id"], "prompt": "a reading nook"},
            headers=w.owner.auth,
        ),
        202,
    )
    generation_id: str = generation["id"]
    return generation_id


@request_for("POST", "/api/projects/{project_id}/generations")
async def _request_generation(w: World, caller: str) -> Call:
    project_id, room = await fresh_room(w)
    return Call({"project_id": project_id}, {"room_id": room["id"], "prompt": "a sunny desk"})


@request_for("GET", "/api/generations/{generation_id}")
async def _read_generation(w: World, caller: str) -> Call:
    if "generation" not in w.cache:
        w.cache["generation"] = await fresh_generation(w)
    return Call({"generation_id": w.cache["generation"]})


@request_for("POST", "/api/generations/{generation_id}/cancel")
async def _cancel_generation(w: World, caller: str) -> Call:
    return Call({"generation_id": await fresh_generation(w)})


@request_for("GET", "/api/projects/{project_id}/rooms")
@request_for("GET", "/api/projects/{project_id}/events")
@request_for("GET", "/api/projects/{project_id}/generations")
async def _read_content(w: World, caller: str) -> Call:
    return Call({"project_id": w.project_id})


@request_for("POST", "/api/projects/{project_id}/rooms")
async def _create_room(w: World, caller: str) -> Call:
    return Call(
        {"project_id": await w.fresh_project()}, {"name": "Bedroom", "room_type": "bedroom"}
    )


@request_for("PATCH", "/api/projects/{project_id}/rooms/{room_id}")
async def _patch_room(w: World, caller: str) -> Call:
    project_id, room = await fresh_room(w)
    return Call(
        {"project_id": project_id, "room_id": room["id"]},
        {"base_version": room["version"], "name": "Pantry"},
    )


@request_for("DELETE", "/api/projects/{project_id}/rooms/{room_id}")
async def _delete_room(w: World, caller: str) -> Call:
    project_id, room = await fresh_room(w)
    return Call(
        {"project_id": project_id, "room_id": room["id"]},
        query={"base_version": str(room["version"])},
    )


@request_for("GET", "/api/projects/{project_id}/rooms/{room_id}/items")
async def _list_items(w: World, caller: str) -> Call:
    if "room" not in w.cache:
        w.cache["room"] = ok(
            await w.api.client.post(
                f"/api/projects/{w.project_id}/rooms", json={"name": "Hall"}, headers=w.owner.auth
            ),
            201,
        )
    return Call({"project_id": w.project_id, "room_id": w.cache["room"]["id"]})


@request_for("POST", "/api/projects/{project_id}/rooms/{room_id}/items")
async def _create_item(w: World, caller: str) -> Call:
    project_id, room = await fresh_room(w)
    return Call({"project_id": project_id, "room_id": room["id"]}, {"kind": "color", "x": 5})


@request_for("PATCH", "/api/projects/{project_id}/items/{item_id}")
async def _patch_item(w: World, caller: str) -> Call:
    project_id, item = await fresh_item(w)
    return Call(
        {"project_id": project_id, "item_id": item["id"]},
        {"base_version": item["version"], "x": 42},
    )


@request_for("DELETE", "/api/projects/{project_id}/items/{item_id}")
async def _delete_item(w: World, caller: str) -> Call:
    project_id, item = await fresh_item(w)
    return Call(
        {"project_id": project_id, "item_id": item["id"]},
        query={"base_version": str(item["version"])},
    )


@request_for("POST", "/api/projects/{project_id}/members")
async def _add_member(w: World, caller: str) -> Call:
    project_id = await w.fresh_project()
    return Call({"project_id": project_id}, {"email": w.target.email, "role": "viewer"})


@request_for("PATCH", "/api/projects/{project_id}/members/{user_id}")
async def _change_role(w: World, caller: str) -> Call:
    project_id = await w.fresh_project()
    await w.api.add_member(w.owner, project_id, w.target, "viewer")
    return Call({"project_id": project_id, "user_id": w.target.id}, {"role": "editor"})


@request_for("DELETE", "/api/projects/{project_id}/members/{user_id}")
async def _remove_member(w: World, caller: str) -> Call:
    project_id = await w.fresh_project()
    await w.api.add_member(w.owner, project_id, w.target, "viewer")
    return Call({"project_id": project_id, "user_id": w.target.id})


@request_for("POST", "/api/projects/{project_id}/invitations")
async def _invite(w: World, caller: str) -> Call:
    return Call({"project_id": w.project_id}, {"email": new_email(), "role": "viewer"})


@request_for("GET", "/api/projects/{project_id}/invitations")
async def _list_invitations(w: World, caller: str) -> Call:
    return Call({"project_id": w.project_id})


@request_for("DELETE", "/api/projects/{project_id}/invitations/{invitation_id}")
async def _revoke_invitation(w: World, caller: str) -> Call:
    invitation = ok(
        await w.api.client.post(
            f"/api/projects/{w.project_id}/invitations",
            json={"email": new_email(), "role": "viewer"},
            headers=w.owner.auth,
        ),
        201,
    )
    return Call({"project_id": w.project_id, "invitation_id": invitation["id"]})


@request_for("POST", "/api/projects/{project_id}/teams")
async def _grant_team(w: World, caller: str) -> Call:
    # Only a member of the team may grant it: put the caller in it, so the role decides.
    in_team = caller in USERS and caller not in ("owner", "team_editor")
    team_id = await w.fresh_team(w.target, *([w.users[caller]] if in_team else []))
    project_id = await w.fresh_project()
    return Call({"project_id": project_id}, {"team_id": team_id, "role": "editor"})


@request_for("DELETE", "/api/projects/{project_id}/teams/{team_id}")
async def _revoke_grant(w: World, caller: str) -> Call:
    return Call({"project_id": await w.fresh_project(), "team_id": w.team_id})


@request_for("POST", "/api/invitations/{token}/accept")
async def _accept_invitation(w: World, caller: str) -> Call:
    project_id = await w.fresh_project()
    invitation = ok(
        await w.api.client.post(
            f"/api/projects/{project_id}/invitations",
            json={"email": new_email(), "role": "viewer"},
            headers=w.owner.auth,
        ),
        201,
    )
    return Call({"token": invitation["token"]})


@request_for("GET", "/api/invitations/{token}")
async def _preview_invitation(w: World, caller: str) -> Call:
    return await _accept_invitation(w, caller)


@request_for("POST", "/api/teams")
async def _create_team(w: World, caller: str) -> Call:
    return Call(json={"name": "Crew"})


@request_for("GET", "/api/teams/{team_id}")
async def _shared_team(w: World, caller: str) -> Call:
    return Call({"team_id": w.team_id})


@request_for("POST", "/api/teams/{team_id}/members")
async def _add_team_member(w: World, caller: str) -> Call:
    team_id = await w.fresh_team()
    return Call({"team_id": team_id}, {"email": w.target.email, "role": "member"})


@request_for("DELETE", "/api/teams/{team_id}/members/{user_id}")
async def _remove_team_member(w: World, caller: str) -> Call:
    team_id = await w.fresh_team(w.target)
    return Call({"team_id": team_id, "user_id": w.target.id})


@request_for("POST", "/api/admin/service-accounts")
async def _create_service_account(w: World, caller: str) -> Call:
    return Call(json={"name": "renderer"})


@request_for("GET", "/api/admin/service-accounts")
async def _list_service_accounts(w: World, caller: str) -> Call:
    return Call()


@request_for("DELETE", "/api/admin/service-accounts/{account_id}")
async def _revoke_service_account(w: World, caller: str) -> Call:
    created = ok(
        await w.api.client.post(
            "/api/admin/service-accounts", json={"name": "spare"}, headers=w.users["admin"].auth
        ),
        201,
    )
    return Call({"account_id": created["id"]})


@request_for("POST", "/api/admin/service-accounts/{account_id}/rotate")
async def _rotate_service_account(w: World, caller: str) -> Call:
    return Call({"account_id": await _spare_service_account(w)}, {"grace_hours": 1})


@request_for("DELETE", "/api/admin/service-accounts/{account_id}/previous-key")
async def _end_previous_service_key(w: World, caller: str) -> Call:
    return Call({"account_id": await _spare_service_account(w)})


async def _spare_service_account(w: World) -> str:
    created = ok(
        await w.api.client.post(
            "/api/admin/service-accounts", json={"name": "spare"}, headers=w.users["admin"].auth
        ),
        201,
    )
    return str(created["id"])


@request_for("POST", "/api/admin/users/{user_id}/credits")
async def _adjust_credits(w: World, caller: str) -> Call:
    return Call({"user_id": w.target.id}, {"delta": 5, "reason": "authz matrix"})


async def claimed_generation(w: World, project_id: str | None = None) -> str:
    """A fresh generation claimed by the matrix's service account (in ``project_id``'s room)."""
    if project_id is None:
        generation_id = await fresh_generation(w)
    else:
        room = ok(
            await w.api.client.post(
                f"/api/projects/{project_id}/rooms", json={"name": "Den"}, headers=w.owner.auth
            ),
            201,
        )
        generation_id = ok(
            await w.api.client.post(
                f"/api/projects/{project_id}/generations",
                json={"room_id": room["id"], "prompt": "a den"},
                headers=w.owner.auth,
            ),
            202,
        )["id"]
    for _ in range(200):  # older queued jobs of other rows come first: claim past them
        claimed = ok(await claim_as_service(w), 200)
        if claimed["id"] == generation_id:
            return generation_id
    raise AssertionError("the fresh generation was never claimed")


async def claim_as_service(w: World) -> httpx.Response:
    return await w.api.client.post(
        "/api/worker/claim",
        json={"worker_id": "matrix"},
        headers={"Authorization": f"Bearer {w.service_key}"},
    )


@request_for("POST", "/api/worker/claim")
async def _claim(w: World, caller: str) -> Call:
    await fresh_generation(w)  # so the queue is not empty
    return Call(json={"worker_id": "matrix"})


async def _worker_target(w: World, caller: str) -> str:
    if caller == "service":
        return await claimed_generation(w)
    if "generation" not in w.cache:
        w.cache["generation"] = await fresh_generation(w)
    generation_id: str = w.cache["generation"]
    return generation_id


@request_for("POST", "/api/worker/generations/{generation_id}/progress")
async def _progress(w: World, caller: str) -> Call:
    return Call({"generation_id": await _worker_target(w, caller)}, {"progress": 30})


@request_for("POST", "/api/worker/generations/{generation_id}/complete")
async def _complete(w: World, caller: str) -> Call:
    return Call({"generation_id": await _worker_target(w, caller)}, {"result": {"n": 1}})


@request_for("POST", "/api/worker/generations/{generation_id}/fail")
async def _fail(w: World, caller: str) -> Call:
    return Call({"generation_id": await _worker_target(w, caller)}, {"error": "out of ink"})


@request_for("POST", "/api/worker/generations/{generation_id}/asset")
async def _asset(w: World, caller: str) -> Call:
    return Call(
        {"generation_id": await _worker_target(w, caller)},
        content=b"<svg xmlns='http://www.w3.org/2000/svg'/>",
        content_type="image/svg+xml",
    )


@request_for("POST", "/api/projects/{project_id}/resources")
async def _upload(w: World, caller: str) -> Call:
    return Call({"project_id": w.project_id}, content=png(), content_type="image/png")


@request_for("GET", "/api/projects/{project_id}/resources/{resource_id}")
async def _read_resource(w: World, caller: str) -> Call:
    if "resource" not in w.cache:
        generation_id = await claimed_generation(w, w.project_id)
        w.cache["resource"] = ok(
            await w.api.client.post(
                f"/api/worker/generations/{generation_id}/asset",
                content=b"<svg xmlns='http://www.w3.org/2000/svg'/>",
                headers={
                    "Authorization": f"Bearer {w.service_key}",
                    "Content-Type": "image/svg+xml",
                },
            ),
            201,
        )["id"]
    return Call({"project_id": w.project_id, "resource_id": w.cache["resource"]})


# --- running a call ---------------------------------------------------------------

PROBLEM_CODES = {401: "unauthorized", 403: "forbidden"}


async def send(api: Api, method: str, path: str, call: Call, token: str | None) -> httpx.Response:
    """Send one call with only ``token`` as credentials (never a leftover cookie)."""
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    body: dict[str, Any] = {"json": call.json}
    if call.content is not None:
        body = {"content": call.content}
        headers["Content-Type"] = call.content_type
    api.client.cookies.clear()
    response = await api.client.request(
        method, path.format(**call.params), headers=headers, params=call.query, **body
    )
    api.client.cookies.clear()
    return response


def mismatch(response: httpx.Response, expected: int) -> str | None:
    """What is wrong with ``response`` when ``expected`` was due, or None."""
    if response.status_code != expected:
        return f"expected {expected}, got {response.status_code}: {response.text[:200]}"
    code = PROBLEM_CODES.get(expected)
    if code is not None:
        if response.headers.get("content-type") != "application/problem+json":
            return f"{expected} is not problem+json: {response.headers.get('content-type')}"
        if response.json().get("code") != code:
            return f"{expected} has code {response.json().get('code')!r}, not {code!r}"
    return None


# --- the tests ----------------------------------------------------------------------


def app_routes(tmp_path: Path) -> set[tuple[str, str]]:
    """Every (method, path template) the app serves; path parameters without their types."""
    app = app_for(f"sqlite:///{tmp_path / 'routes.sqlite3'}")  # built, never started
    routes: set[tuple[str, str]] = set()
    for route in app.routes:
        if not isinstance(route, HTTPRoute):  # the socket and mounted ASGI apps are not REST
            continue
        path = re.sub(r"\{(\w+):[^}]*\}", r"{\1}", route.path)
        for handler in route.route_handlers:
            for method in handler.http_methods - {"OPTIONS", "HEAD"}:
                routes.add((method, path))
    return routes


def is_public(path: str) -> bool:
    return path in {*PUBLIC_PATHS, STATIC_ROUTE, PUBLIC_PREFIX} or path.startswith(
        PUBLIC_PREFIX + "/"
    )


def test_matrix_covers_every_route(tmp_path: Path) -> None:
    """Every route of the app has a matrix row and a request, and every row is a real route."""
    routes = app_routes(tmp_path)
    guarded = {(m, p) for m, p in routes if not is_public(p)}
    missing = sorted(guarded - EXPECTED.keys())
    stale = sorted(EXPECTED.keys() - guarded)
    assert not missing, f"routes without a row in EXPECTED (who may call them?): {missing}"
    assert not stale, f"rows in EXPECTED for routes the app does not have: {stale}"
    assert REQUESTS.keys() == EXPECTED.keys(), (
        f"rows without a request: {sorted(EXPECTED.keys() - REQUESTS.keys())}; "
        f"requests without a row: {sorted(REQUESTS.keys() - EXPECTED.keys())}"
    )
    for key in EXPECTED:
        expected_statuses(key)  # well-formed: one status per caller
    assert {p for _, p in routes} >= {*PUBLIC_PATHS, STATIC_ROUTE}


async def test_public_endpoints_answer_without_credentials(api: Api) -> None:
    """/healthz, /readyz, the page, its files and the OpenAPI document answer 200 to anyone."""
    api.client.cookies.clear()
    for path in (*sorted(PUBLIC_PATHS), STATIC_SAMPLE, f"{PUBLIC_PREFIX}/openapi.json"):
        response = await api.client.get(path)
        assert response.status_code == 200, f"GET {path}: {response.status_code} {response.text}"


async def test_authorization_matrix(api: Api) -> None:
    """Each route answers each caller as its row says; a missing or deleted project, with 403."""
    world = await World.build(api)
    deleted = await world.fresh_project()
    ok(await api.client.delete(f"/api/projects/{deleted}", headers=world.owner.auth), 204)
    failures: list[str] = []
    for (method, path), prepare in REQUESTS.items():
        for caller, expected in expected_statuses((method, path)).items():
            call = await prepare(world, caller)
            token = world.token(caller) if call.token is None else call.token
            response = await send(api, method, path, call, token)
            problem = mismatch(response, expected)
            if problem is not None:
                failures.append(f"{method} {path} as {caller}: {problem}")
        if "{project_id}" not in path:
            continue
        # docs/protocol.md §2.1: a project the caller cannot read answers exactly like one that
        # does not exist, so even its owner gets 403 once it is deleted.
        call = await prepare(world, "owner")
        for gone, project_id in (("missing", str(uuid.uuid4())), ("deleted", deleted)):
            on_gone = dataclasses.replace(call, params={**call.params, "project_id": project_id})
            response = await send(api, method, path, on_gone, world.owner.token)
            problem = mismatch(response, 403)
            if problem is not None:
                failures.append(f"{method} {path} on a {gone} project, as owner: {problem}")
    assert not failures, f"{len(failures)} authorization mismatches:\n" + "\n".join(failures)
