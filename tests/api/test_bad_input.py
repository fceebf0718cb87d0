"""Bad input is refused with a problem naming the field, and nothing is written.

docs/protocol.md §2.1: \"A body that fails validation is 400 or 422 with
`code: bad_request`, naming the field", and unknown fields are rejected,
never stored. For each endpoint that takes a body, every field in turn gets
a wrong type, an unacceptable value, an oversized string and a NUL
character, and goes missing; an unknown field is added; and the body is sent
as an array, as null, as broken JSON, as a form and not at all. Each answer
must be a 400/422 ``application/problem+json`` with ``code: bad_request``
whose ``detail`` starts with the field's name, and the database must be
exactly as before. The untouched body is sent last and must succeed, so each
refusal is owed to the one change made.

An id in a path that is not a UUID matches no route (``{project_id:uuid}``):
the answer is 404 ``not_found`` problem+json, as for an unknown id.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import pytest

from server.access.tables import UserSession
from server.db.tables import TABLES
from tests.api.conftest import PASSWORD, Account, Api

PROBLEM_JSON = "application/problem+json"
I32_MAX = 2**31 - 1


@dataclass
class World:
    """An owner's project (with a room) shared with a member, the owner's team, and an admin."""

    owner: Account
    member: Account
    admin: Account
    project_id: str
    team_id: str
    room_id: str


@dataclass(frozen=True)
class Field:
    """One body field and what it accepts."""

    name: str
    kind: Literal["str", "int", "number", "uuid", "enum", "object"]
    max_length: int = 0
    bounds: tuple[int, int] = (0, 0)
    required: bool = True
    stored: bool = True  # stored strings refuse NUL (PostgreSQL text cannot hold it)
    positive: bool = False


@dataclass(frozen=True)
class Endpoint:
    """A call that takes a body: where it goes, who sends it, a valid body, its fields."""

    method: str
    path: Callable[[World], str]
    body: Callable[[World], dict[str, Any]]
    fields: tuple[Field, ...]
    who: Literal["owner", "admin", "nobody"] = "owner"


def _email(required: bool = True) -> Field:
    return Field("email", "str", max_length=320, required=required)


def _name(required: bool = True) -> Field:
    return Field("name", "str", max_length=200, required=required)


_ROLE = Field("role", "enum")
_ATTRIBUTES = Field("attributes", "object", required=False)
_PASSWORD = Field("password", "str", max_length=1024, stored=False)
_DESCRIPTION = Field("description", "str", max_length=10_000, required=False)

ENDPOINTS: dict[str, Endpoint] = {
    "register": Endpoint(
        "POST",
        lambda w: "/api/auth/register",
        lambda w: {"email": "newcomer@example.com", "password": PASSWORD, "name": "New"},
        (_email(), _PASSWORD, _name()),
        who="nobody",
    ),
    "login": Endpoint(
        "POST",
        lambda w: "/api/auth/login",
        lambda w: {"email": w.owner.email, "password": PASSWORD},
        (_email(), _PASSWORD),
        who="nobody",
    ),
    "create project": Endpoint(
        "POST",
        lambda w: "/api/projects",
        lambda w: {"name": "Loft", "description": "Top floor", "team_id": w.team_id},
        (_name(), _DESCRIPTION, Field("team_id", "uuid", required=False)),
    ),
    "patch project": Endpoint(
        "PATCH",
        lambda w: f"/api/projects/{w.project_id}",
        lambda w: {"base_version": 1, "name": "Renamed", "description": "New words"},
        (
            Field("base_version", "int", bounds=(1, I32_MAX)),
            _name(required=False),
            _DESCRIPTION,
        ),
    ),
    "add member": Endpoint(
        "POST",
        lambda w: f"/api/projects/{w.project_id}/members",
        lambda w: {"email": w.admin.email, "role": "viewer"},
        (_email(), _ROLE),
    ),
    "invite": Endpoint(
        "POST",
        lambda w: f"/api/projects/{w.project_id}/invitations",
        lambda w: {"email": "guest@example.com", "role": "viewer"},
        (_email(), _ROLE),
    ),
    "create team": Endpoint("POST", lambda w: "/api/teams", lambda w: {"name": "Crew"}, (_name(),)),
    "add team member": Endpoint(
        "POST",
        lambda w: f"/api/teams/{w.team_id}/members",
        lambda w: {"email": w.member.email, "role": "member"},
        (_email(), Field("role", "enum", required=False)),
    ),
    "grant team": Endpoint(
        "POST",
        lambda w: f"/api/projects/{w.project_id}/teams",
        lambda w: {"team_id": w.team_id, "role": "viewer"},
        (Field("team_id", "uuid"), _ROLE),
    ),
    "service account": Endpoint(
        "POST",
        lambda w: "/api/admin/service-accounts",
        lambda w: {"name": "worker-1"},
        (_name(),),
        who="admin",
    ),
    "create room": Endpoint(
        "POST",
        lambda w: f"/api/projects/{w.project_id}/rooms",
        lambda w: {"name": "Den", "room_type": "office", "attributes": {"palette": ["oak"]}},
        (_name(), Field("room_type", "enum", required=False), _ATTRIBUTES),
    ),
    "patch room": Endpoint(
        "PATCH",
        lambda w: f"/api/projects/{w.project_id}/rooms/{w.room_id}",
        lambda w: {"base_version": 1, "name": "Den", "attributes": {"style": "calm"}},
        (Field("base_version", "int", bounds=(1, I32_MAX)), _name(required=False), _ATTRIBUTES),
    ),
    "create item": Endpoint(
        "POST",
        lambda w: f"/api/projects/{w.project_id}/rooms/{w.room_id}/items",
        lambda w: {"kind": "note", "x": 1.5, "w": 10.0, "data": {"text": "oak"}},
        (
            Field("kind", "enum"),
            Field("x", "number", required=False),
            Field("w", "number", required=False, positive=True),
            Field("data", "object", required=False),
        ),
    ),
    "adjust credits": Endpoint(
        "POST",
        lambda w: f"/api/admin/users/{w.member.id}/credits",
        lambda w: {"delta": 5, "reason": "a gift"},
        (
            Field("delta", "int", bounds=(-(10**9), 10**9)),
            Field("reason", "str", max_length=200),
        ),
        who="admin",
    ),
}


@dataclass(frozen=True)
class Bad:
    """A bad request body: what is wrong, the raw bytes, and the field to be named."""

    label: str
    content: bytes
    field: str | None
    content_type: str = "application/json"


def _json(label: str, body: Any, field: str | None) -> Bad:
    return Bad(label, json.dumps(body).encode(), field)


def bad_bodies(valid: dict[str, Any], fields: tuple[Field, ...]) -> list[Bad]:
    """Every single-change corruption of ``valid``, and the bodies that are no object at all."""
    cases: list[Bad] = []
    for f in fields:

        def with_value(value: Any, f: Field = f) -> dict[str, Any]:
            return {**valid, f.name: value}

        if f.required:
            missing = {k: v for k, v in valid.items() if k != f.name}
            cases.append(_json(f"{f.name} missing", missing, f.name))
        if f.kind == "str":
            wrong: list[Any] = [12345, ["text"], {"text": 1}, True]
            too_long = "x" * (f.max_length + 1)
            cases.append(_json(f"{f.name} too long", with_value(too_long), f.name))
            if f.stored:
                cases.append(_json(f"{f.name} with NUL", with_value("a\x00b"), f.name))
        elif f.kind == "int":
            wrong = ["many", 1.5, True, [1], {"n": 1}]
            low, high = f.bounds
            cases.append(_json(f"{f.name} below range", with_value(low - 1), f.name))
            cases.append(_json(f"{f.name} above range", with_value(high + 1), f.name))
            cases.append(_json(f"{f.name} huge", with_value(10**30), f.name))
        elif f.kind == "number":
            wrong = ["far", [1], {"n": 1}]
            # Past a double's range: the JSON decoder refuses it before any field is known.
            overflow = json.dumps(with_value(0.5)).replace("0.5", "1e400").encode()
            cases.append(Bad(f"{f.name} = 1e400", overflow, None))
            if f.positive:
                for value in (0, -1.5):
                    cases.append(_json(f"{f.name} = {value}", with_value(value), f.name))
        elif f.kind == "object":
            wrong = [1, "text", ["a"], True]
            deep: dict[str, Any] = {}
            for _ in range(40):
                deep = {"a": deep}
            cases += [
                _json(f"{f.name} with a NUL value", with_value({"k": ["a\x00"]}), f.name),
                _json(f"{f.name} with a NUL key", with_value({"k\x00": 1}), f.name),
                _json(f"{f.name} nested 40 deep", with_value(deep), f.name),
                _json(f"{f.name} over 16 KiB", with_value({"note": "x" * 16_384}), f.name),
            ]
        elif f.kind == "uuid":
            wrong = [42, ["x"], True]
            for text in ("not-a-uuid", "1234", valid[f.name][:-1], ""):
                cases.append(_json(f"{f.name} = {text!r}", with_value(text), f.name))
        else:
            wrong = [7, ["viewer"], True]
            for text in ("superuser", "OWNER", ""):
                cases.append(_json(f"{f.name} = {text!r}", with_value(text), f.name))
        for value in wrong:
            cases.append(_json(f"{f.name} = {value!r}", with_value(value), f.name))
    cases += [
        _json("unknown field", {**valid, "colour": "red"}, "colour"),
        _json("array of the body", [valid], None),
        _json("null body", None, None),
        _json("string body", "hello", None),
        Bad("broken JSON", b'{"name": "x",', None),
        Bad("form-encoded", b"name=x&email=y", None, "application/x-www-form-urlencoded"),
        Bad("no body", b"", "body"),
    ]
    return cases


async def snapshot() -> dict[str, Any]:
    """Every row of every table (sessions: only how many; using one refreshes it)."""
    state: dict[str, Any] = {}
    for table in TABLES:
        name = table._meta.tablename
        if table is UserSession:
            state[name] = await table.count()
        else:
            state[name] = sorted(repr(sorted(row.items())) for row in await table.select())
    return state


async def make_world(api: Api) -> World:
    owner = await api.register("owner")
    member = await api.register("member")
    admin = await api.admin()
    project = await api.project(owner)
    await api.add_member(owner, project["id"], member, "editor")
    team = await api.client.post("/api/teams", json={"name": "Owners"}, headers=owner.auth)
    assert team.status_code == 201, team.text
    room = await api.client.post(
        f"/api/projects/{project['id']}/rooms", json={"name": "Kitchen"}, headers=owner.auth
    )
    assert room.status_code == 201, room.text
    return World(owner, member, admin, project["id"], team.json()["id"], room.json()["id"])


def problem_mismatch(response: Any, field: str | None, statuses: tuple[int, ...]) -> str | None:
    """Why ``response`` is not the expected problem, or None when it is."""
    if response.status_code not in statuses:
        return f"status {response.status_code}: {response.text[:200]}"
    if response.headers.get("content-type") != PROBLEM_JSON:
        return f"content-type {response.headers.get('content-type')}"
    body = response.json()
    if body.get("status") != response.status_code or not body.get("title"):
        return f"not a problem body: {body}"
    if statuses != (404,) and body.get("code") != "bad_request":
        return f"code {body.get('code')}"
    if field is not None and not str(body.get("detail", "")).startswith(f"{field}: "):
        return f"detail does not name {field!r}: {body.get('detail')!r}"
    return None


@pytest.mark.parametrize("endpoint", list(ENDPOINTS), ids=list(ENDPOINTS))
async def test_bad_body_is_refused_naming_the_field(api: Api, endpoint: str) -> None:
    """Each corrupted body gets 400/422 bad_request naming the field, and writes nothing."""
    spec = ENDPOINTS[endpoint]
    world = await make_world(api)
    headers = {"owner": world.owner.auth, "admin": world.admin.auth, "nobody": {}}[spec.who]
    valid = spec.body(world)
    before = await snapshot()
    failures = []
    for bad in bad_bodies(valid, spec.fields):
        response = await api.client.request(
            spec.method,
            spec.path(world),
            content=bad.content,
            headers={**headers, "content-type": bad.content_type},
        )
        api.client.cookies.clear()
        problem = problem_mismatch(response, bad.field, (400, 422))
        after = await snapshot()
        if problem is not None:
            failures.append(f"{bad.label}: {problem}")
        elif after != before:
            failures.append(f"{bad.label}: refused, but the database changed")
        before = after  # each case is judged on its own
    assert not failures, "\n".join(failures)
    accepted = await api.client.request(spec.method, spec.path(world), json=valid, headers=headers)
    assert accepted.status_code in (200, 201), accepted.text


async def test_huge_string_is_refused_before_it_is_stored(api: Api) -> None:
    """A one-megabyte project name is a 400 naming `name`; no project appears."""
    world = await make_world(api)
    before = await snapshot()
    response = await api.client.post(
        "/api/projects", json={"name": "x" * 2**20}, headers=world.owner.auth
    )
    assert problem_mismatch(response, "name", (400,)) is None, response.text
    assert await snapshot() == before


@pytest.mark.parametrize("depth", [100, 5000])
async def test_deeply_nested_json_is_refused(api: Api, depth: int) -> None:
    """JSON nested past any sane depth is a 4xx bad_request, never a 500, and writes nothing."""
    world = await make_world(api)
    before = await snapshot()
    nested = b'{"a":' * depth + b"1" + b"}" * depth
    for path, body, field in (
        (f"/api/projects/{world.project_id}/rooms", b'{"name":"Den","attributes":%s}', None),
        ("/api/projects", b'{"name":%s}', None),
        ("/api/auth/register", b"[%s]", None),
    ):
        response = await api.client.post(
            path,
            content=body % nested,
            headers={**world.owner.auth, "content-type": "application/json"},
        )
        assert problem_mismatch(response, field, (400, 422)) is None, (path, response.text)
    assert await snapshot() == before


def _invalid_path_calls(w: World) -> list[tuple[str, str, dict[str, Any] | None]]:
    pid, tid = w.project_id, w.team_id
    calls: list[tuple[str, str, dict[str, Any] | None]] = []
    for bad in ("not-a-uuid", pid[:-1], f"{pid}0", "0"):
        calls += [
            ("GET", f"/api/projects/{bad}", None),
            ("PATCH", f"/api/projects/{bad}", {"base_version": 1, "name": "x"}),
            ("DELETE", f"/api/projects/{bad}", None),
            ("GET", f"/api/projects/{bad}/members", None),
            ("POST", f"/api/projects/{bad}/members", {"email": w.admin.email, "role": "viewer"}),
            ("PATCH", f"/api/projects/{pid}/members/{bad}", {"role": "viewer"}),
            ("DELETE", f"/api/projects/{pid}/members/{bad}", None),
            (
                "POST",
                f"/api/projects/{bad}/invitations",
                {"email": "g@example.com", "role": "viewer"},
            ),
            ("POST", f"/api/projects/{bad}/teams", {"team_id": tid, "role": "viewer"}),
            ("DELETE", f"/api/projects/{pid}/teams/{bad}", None),
            ("GET", f"/api/teams/{bad}", None),
            ("POST", f"/api/teams/{bad}/members", {"email": w.member.email, "role": "member"}),
            ("DELETE", f"/api/teams/{tid}/members/{bad}", None),
            ("DELETE", f"/api/me/sessions/{bad}", None),
            ("POST", f"/api/admin/users/{bad}/credits", {"delta": 5, "reason": "a gift"}),
            ("GET", f"/api/projects/{bad}/rooms", None),
            ("PATCH", f"/api/projects/{pid}/rooms/{bad}", {"base_version": 1, "name": "x"}),
            ("GET", f"/api/projects/{pid}/rooms/{bad}/items", None),
            ("PATCH", f"/api/projects/{pid}/items/{bad}", {"base_version": 1, "x": 1}),
            ("GET", f"/api/projects/{bad}/events", None),
        ]
    return calls


async def test_invalid_uuid_in_path_is_a_404_problem(api: Api) -> None:
    """A path id that is not a UUID matches no route: a 404 not_found problem; nothing written."""
    world = await make_world(api)
    before = await snapshot()
    failures = []
    for method, path, body in _invalid_path_calls(world):
        auth = world.admin.auth if path.startswith("/api/admin") else world.owner.auth
        response = await api.client.request(method, path, json=body, headers=auth)
        problem = problem_mismatch(response, None, (404,))
        if problem is None and response.json()["code"] != "not_found":
            problem = f"code {response.json()['code']}"
        if problem is not None:
            failures.append(f"{method} {path}: {problem}")
    assert not failures, "\n".join(failures)
    assert await snapshot() == before


async def test_bad_query_parameters_are_refused(api: Api) -> None:
    """A malformed or out-of-range query parameter is a 400 naming it."""
    world = await make_world(api)
    audit, events = "/api/admin/audit", f"/api/projects/{world.project_id}/events"
    for path, query, field, who in (
        (audit, "actor=not-a-uuid", "actor", world.admin),
        (audit, "after=-1", "after", world.admin),
        (audit, "after=99999999999999999999999", "after", world.admin),
        (audit, "limit=0", "limit", world.admin),
        (audit, "limit=many", "limit", world.admin),
        (audit, "action=a%00b", "action", world.admin),
        (events, "after=-1", "after", world.owner),
        (events, "after=10000000000000000001", "after", world.owner),
        (events, "limit=1001", "limit", world.owner),
    ):
        response = await api.client.get(f"{path}?{query}", headers=who.auth)
        assert problem_mismatch(response, field, (400,)) is None, (path, query, response.text)


async def test_numeric_string_for_a_number_is_refused(api: Api) -> None:
    """Numbers sent as strings are wrong types: 400 naming the field, nothing written."""
    world = await make_world(api)
    room = await api.client.post(
        f"/api/projects/{world.project_id}/rooms", json={"name": "R"}, headers=world.owner.auth
    )
    assert room.status_code == 201
    before = await snapshot()
    cases = [
        (
            "PATCH",
            f"/api/projects/{world.project_id}",
            {"base_version": "1", "name": "N"},
            "base_version",
        ),
        (
            "POST",
            f"/api/projects/{world.project_id}/rooms",
            {"name": "X", "position": "2"},
            "position",
        ),
        (
            "POST",
            f"/api/projects/{world.project_id}/rooms/{room.json()['id']}/items",
            {"kind": "note", "x": "5"},
            "x",
        ),
    ]
    for method, path, body, field in cases:
        response = await api.client.request(method, path, json=body, headers=world.owner.auth)
        assert problem_mismatch(response, field, (400, 422)) is None, response.text
    assert await snapshot() == before
