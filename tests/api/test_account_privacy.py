"""A user's data: export, account erasure (docs/security.md), and the admin audit log.

docs/protocol.md §2.3: ``GET /api/me/export`` returns the user's data,
``DELETE /api/me {password}`` erases the account (401 on a wrong password),
``GET /api/admin/audit?actor=&action=&after=&limit=`` pages through the audit log.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from server.access.tables import AppUser, AuditLog, Team, TeamMember
from server.events.tables import Event
from server.projects.tables import Project
from tests.api.conftest import PASSWORD, Account, Api

ERASED = "Deleted user"


async def _login(api: Api, who: Account) -> str:
    response = await api.client.post(
        "/api/auth/login", json={"email": who.email, "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    api.client.cookies.clear()  # the tests authenticate with bearer tokens only
    token: str = response.json()["token"]
    return token


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _team(api: Api, owner: Account, *members: Account) -> str:
    response = await api.client.post("/api/teams", json={"name": "Studio"}, headers=owner.auth)
    assert response.status_code == 201, response.text
    tid: str = response.json()["id"]
    for who in members:
        added = await api.client.post(
            f"/api/teams/{tid}/members", json={"email": who.email}, headers=owner.auth
        )
        assert added.status_code == 201, added.text
    return tid


async def _grant(api: Api, owner: Account, pid: str, tid: str, role: str) -> None:
    response = await api.client.post(
        f"/api/projects/{pid}/teams", json={"team_id": tid, "role": role}, headers=owner.auth
    )
    assert response.status_code == 201, response.text


async def _erase(api: Api, who: Account, password: str) -> httpx.Response:
    return await api.client.request(
        "DELETE", "/api/me", json={"password": password}, headers=who.auth
    )


async def _listed(api: Api, who: Account) -> dict[str, str]:
    response = await api.client.get("/api/projects", headers=who.auth)
    assert response.status_code == 200, response.text
    return {p["id"]: p["role"] for p in response.json()}


async def _events(pid: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = (
        await Event.select()
        .where(Event.project_id == pid)
        .order_by(Event.seq)
        .output(load_json=True)
    )
    return rows


async def _user_row(user_id: str) -> dict[str, Any]:
    row: dict[str, Any] | None = await AppUser.select().where(AppUser.id == user_id).first()
    assert row is not None
    return row


# --- export ------------------------------------------------------------------


async def test_export_returns_the_users_data_without_secrets(api: Api) -> None:
    """The export holds the profile, memberships, teams, ledger and sessions, never a token."""
    user = await api.register("exporter")
    other = await api.register("other")
    second_token = await _login(api, user)
    own = await api.project(user, name="Own flat")
    theirs = await api.project(other, name="Their flat")
    await api.add_member(other, theirs["id"], user, "viewer")
    tid = await _team(api, user)

    assert (await api.client.get("/api/me/export")).status_code == 401
    response = await api.client.get("/api/me/export", headers=user.auth)
    assert response.status_code == 200, response.text
    export = response.json()
    assert (export["user"]["id"], export["user"]["email"]) == (user.id, user.email)
    assert export["user"]["name"] == "exporter"
    assert export["user"]["credits"] == 100
    memberships = {(m["project_id"], m["project_name"], m["role"]) for m in export["memberships"]}
    assert memberships == {(own["id"], "Own flat", "owner"), (theirs["id"], "Their flat", "viewer")}
    assert [(t["team_id"], t["role"]) for t in export["teams"]] == [(tid, "owner")]
    assert [(e["delta"], e["reason"], e["balance"]) for e in export["credit_ledger"]] == [
        (100, "signup", 100)
    ]
    sessions = await api.client.get("/api/me/sessions", headers=user.auth)
    assert {s["id"] for s in export["sessions"]} == {s["id"] for s in sessions.json()}
    assert len(export["sessions"]) == 2
    for session in export["sessions"]:
        assert not {"token", "token_hash"} & set(session)
    text = response.text
    for secret in (user.token, second_token):
        assert secret not in text
    assert "password" not in text
    assert "argon2" not in text
    assert other.email not in text  # someone else's data is not in it


# --- erasure -----------------------------------------------------------------


async def test_wrong_password_erases_nothing(api: Api) -> None:
    """DELETE /api/me with a wrong password is 401; the account and its projects stay."""
    user = await api.register("keeper")
    project = await api.project(user)
    before = await _user_row(user.id)
    response = await _erase(api, user, "not my password at all")
    assert response.status_code == 401, response.text
    assert response.json()["code"] == "unauthorized"
    me = await api.client.get("/api/me", headers=user.auth)
    assert me.status_code == 200
    assert (me.json()["email"], me.json()["name"]) == (user.email, "keeper")
    assert await _user_row(user.id) == before
    readable = await api.client.get(f"/api/projects/{project['id']}", headers=user.auth)
    assert readable.status_code == 200
    assert (await _listed(api, user)) == {project["id"]: "owner"}
    assert len(api.ctx.notifier.revoked) == 0  # type: ignore[attr-defined]


async def test_erasure_revokes_sessions_and_anonymises_the_account(api: Api) -> None:
    """After DELETE /api/me: every token is 401, the row is a tombstone, audit IPs are gone."""
    user = await api.register("zebedee")
    second_token = await _login(api, user)
    sessions = (await api.client.get("/api/me/sessions", headers=user.auth)).json()
    assert len(sessions) == 2
    audited = await AuditLog.select(AuditLog.ip).where(AuditLog.actor_id == user.id)
    assert any(row["ip"] is not None for row in audited)  # register and login kept one

    response = await _erase(api, user, PASSWORD)
    assert response.status_code == 204, response.text
    for token in (user.token, second_token):
        assert (await api.client.get("/api/me", headers=_bearer(token))).status_code == 401
    revoked = {str(s) for s in api.ctx.notifier.revoked}  # type: ignore[attr-defined]
    assert {s["id"] for s in sessions} <= revoked

    row = await _user_row(user.id)
    assert row["deleted_at"] is not None
    assert (row["name"], row["password_hash"], row["avatar_url"]) == (ERASED, "", None)
    assert user.email not in row["email"]
    audited = await AuditLog.select(AuditLog.ip, AuditLog.details).where(
        AuditLog.actor_id == user.id
    )
    assert audited
    assert all(r["ip"] is None for r in audited)
    relogin = await api.client.post(
        "/api/auth/login", json={"email": user.email, "password": PASSWORD}
    )
    assert relogin.status_code == 401

    again = await api.client.post(
        "/api/auth/register", json={"email": user.email, "password": PASSWORD, "name": "New"}
    )
    assert again.status_code == 201, again.text
    assert again.json()["user"]["id"] != user.id
    assert again.json()["user"]["credits"] == 100


async def test_erasure_hands_projects_over_or_deletes_them(api: Api) -> None:
    """A solely owned project passes to an editor before a viewer; one with no other member goes."""
    leaver = await api.register("zebedee")
    viewer = await api.register("viewer")
    editor = await api.register("editor")
    outsider = await api.register("outsider")
    host = await api.register("host")
    shared = (await api.project(leaver, name="shared"))["id"]
    await api.add_member(leaver, shared, viewer, "viewer")  # longest-standing, but a viewer
    await api.add_member(leaver, shared, editor, "editor")
    alone = (await api.project(leaver, name="alone"))["id"]
    tid = await _team(api, leaver, outsider)  # access through a team is not membership
    await _grant(api, leaver, alone, tid, "viewer")
    assert (await _listed(api, outsider)) == {alone: "viewer"}
    guest_of = (await api.project(host, name="hosted"))["id"]
    await api.add_member(host, guest_of, leaver, "editor")
    named = [e for e in await _events(guest_of) if e["kind"] == "member.created"]
    assert any(e["data"].get("name") == "zebedee" for e in named)
    api.ctx.notifier.events.clear()  # type: ignore[attr-defined]

    assert (await _erase(api, leaver, PASSWORD)).status_code == 204

    heir_view = await api.client.get(f"/api/projects/{shared}", headers=editor.auth)
    assert heir_view.status_code == 200
    assert heir_view.json()["owner_id"] == editor.id
    members = await api.client.get(f"/api/projects/{shared}/members", headers=editor.auth)
    assert members.status_code == 200, members.text
    assert {m["user_id"]: m["role"] for m in members.json()} == {
        editor.id: "owner",
        viewer.id: "viewer",
    }
    assert (await _listed(api, editor))[shared] == "owner"
    assert (await _listed(api, viewer))[shared] == "viewer"

    assert (
        await api.client.get(f"/api/projects/{alone}", headers=outsider.auth)
    ).status_code == 403
    assert alone not in await _listed(api, outsider)
    gone = await Project.select(Project.deleted_at).where(Project.id == alone).first()
    assert gone is not None
    assert gone["deleted_at"] is not None

    hosted = await api.client.get(f"/api/projects/{guest_of}/members", headers=host.auth)
    assert [m["user_id"] for m in hosted.json()] == [host.id]

    for pid in (shared, guest_of):
        events = await _events(pid)
        seq = (await Project.select(Project.seq).where(Project.id == pid).first() or {})["seq"]
        assert [e["seq"] for e in events] == list(range(1, seq + 1))  # no gap
        left = [e for e in events if str(e["entity_id"]) == leaver.id]
        assert left[-1]["kind"] == "member.deleted"  # subscribers learn the member left
    shared_events = await _events(shared)
    handed = [e for e in shared_events if e["kind"] == "member.updated"]
    assert [(str(e["entity_id"]), e["data"]["role"]) for e in handed] == [(editor.id, "owner")]

    member_events = (
        await Event.select(Event.data)
        .where((Event.entity == "member") & (Event.entity_id == leaver.id))
        .output(load_json=True)
    )
    assert member_events
    assert all(e["data"].get("name", ERASED) == ERASED for e in member_events)
    assert any(e["data"].get("name") == ERASED for e in member_events)
    everything = await Event.select(Event.data).output(load_json=True)
    assert "zebedee" not in json.dumps([e["data"] for e in everything])
    published = {(str(e.project_id), e.kind) for e in api.ctx.notifier.events}  # type: ignore[attr-defined]
    assert {(shared, "member.updated"), (alone, "project.deleted")} <= published


async def _teams(api: Api, who: Account) -> dict[str, str]:
    response = await api.client.get("/api/teams", headers=who.auth)
    assert response.status_code == 200, response.text
    return {t["id"]: t["role"] for t in response.json()}


async def test_erasure_hands_teams_over_or_deletes_them(api: Api) -> None:
    """A solely owned team passes to its longest-standing member; one with no other member goes."""
    leaver = await api.register("leaver")
    first, second, co_owner = [await api.register(n) for n in ("first", "second", "co")]
    handed = await _team(api, leaver, first, second)
    lonely = await _team(api, leaver)
    shared = await _team(api, co_owner)
    promoted = await api.client.post(
        f"/api/teams/{shared}/members",
        json={"email": leaver.email, "role": "owner"},
        headers=co_owner.auth,
    )
    assert promoted.status_code in (200, 201), promoted.text

    assert (await _erase(api, leaver, PASSWORD)).status_code == 204

    assert (await _teams(api, first))[handed] == "owner"
    assert (await _teams(api, second))[handed] == "member"
    # The new owner can run the team: add someone.
    newcomer = await api.register("newcomer")
    added = await api.client.post(
        f"/api/teams/{handed}/members", json={"email": newcomer.email}, headers=first.auth
    )
    assert added.status_code == 201, added.text
    assert await Team.select().where(Team.id == lonely).first() is None
    assert (await _teams(api, co_owner))[shared] == "owner"
    left = await TeamMember.select().where(TeamMember.user_id == leaver.id)
    assert left == []


async def test_erasure_leaves_deleted_projects_alone(api: Api) -> None:
    """A project already deleted is neither handed over nor deleted again by an erasure."""
    leaver = await api.register("leaver")
    other = await api.register("other")
    pid = (await api.project(leaver))["id"]
    await api.add_member(leaver, pid, other, "editor")
    assert (await api.client.delete(f"/api/projects/{pid}", headers=leaver.auth)).status_code == 204
    before = await Project.select().where(Project.id == pid).first()
    events_before = await _events(pid)

    assert (await _erase(api, leaver, PASSWORD)).status_code == 204
    assert await Project.select().where(Project.id == pid).first() == before
    assert [e["seq"] for e in await _events(pid)] == [e["seq"] for e in events_before]
    assert (await api.client.get(f"/api/projects/{pid}", headers=other.auth)).status_code == 403


# --- the audit log -----------------------------------------------------------


async def _audit(api: Api, who: Account, **params: Any) -> httpx.Response:
    return await api.client.get("/api/admin/audit", params=params, headers=who.auth)


async def _access_story(api: Api) -> tuple[Account, Account, Account, str]:
    """An admin shares a project four ways; returns (admin, member, guest, project id)."""
    admin = await api.admin()
    member = await api.register("member")
    guest = await api.register("guest")
    pid = (await api.project(admin))["id"]
    await api.add_member(admin, pid, member, "editor")
    invited = await api.client.post(
        f"/api/projects/{pid}/invitations",
        json={"email": guest.email, "role": "viewer"},
        headers=admin.auth,
    )
    assert invited.status_code == 201, invited.text
    accepted = await api.client.post(
        f"/api/invitations/{invited.json()['token']}/accept", headers=guest.auth
    )
    assert accepted.status_code == 200, accepted.text
    tid = await _team(api, admin)
    await _grant(api, admin, pid, tid, "viewer")
    worker = await api.client.post(
        "/api/admin/service-accounts", json={"name": "renderer"}, headers=admin.auth
    )
    assert worker.status_code == 201, worker.text
    return admin, member, guest, pid


async def test_audit_log_records_access_changes(api: Api) -> None:
    """Adding a member, inviting, accepting, granting a team, creating a worker: all audited."""
    admin, member, guest, pid = await _access_story(api)
    response = await _audit(api, admin, limit=500)
    assert response.status_code == 200, response.text
    entries = response.json()
    by_action = {e["action"]: e for e in entries}
    expected = {
        "member.added": admin.id,
        "invitation.created": admin.id,
        "invitation.accepted": guest.id,
        "team_grant.set": admin.id,
        "service_account.created": admin.id,
    }
    for action, actor in expected.items():
        assert action in by_action, action
        assert by_action[action]["actor_id"] == actor
    assert by_action["member.added"]["target_id"] == member.id
    assert by_action["member.added"]["project_id"] == pid
    assert by_action["member.added"]["details"] == {"role": "editor"}
    assert by_action["invitation.accepted"]["project_id"] == pid
    assert by_action["service_account.created"]["details"] == {"name": "renderer"}
    ids = [e["id"] for e in entries]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)


async def test_audit_log_pages_with_after(api: Api) -> None:
    """Pages of ``limit`` entries, each starting after the last id seen, cover the log once."""
    admin, *_ = await _access_story(api)
    everything = (await _audit(api, admin, limit=500)).json()
    assert len(everything) > 6
    pages: list[list[dict[str, Any]]] = []
    after = 0
    while True:
        page = (await _audit(api, admin, after=after, limit=3)).json()
        if not page:
            break
        assert len(page) <= 3
        assert all(e["id"] > after for e in page)
        pages.append(page)
        after = page[-1]["id"]
        assert len(pages) <= len(everything)  # the loop ends
    assert [e for page in pages for e in page] == everything
    assert all(len(page) == 3 for page in pages[:-1])


async def test_audit_log_filters_by_actor_and_action(api: Api) -> None:
    """``actor`` and ``action`` select exactly the matching entries, alone or together."""
    admin, member, guest, _ = await _access_story(api)
    everything = (await _audit(api, admin, limit=500)).json()

    added = (await _audit(api, admin, action="member.added")).json()
    assert added == [e for e in everything if e["action"] == "member.added"]
    assert len(added) == 1

    by_guest = (await _audit(api, admin, actor=guest.id)).json()
    assert by_guest == [e for e in everything if e["actor_id"] == guest.id]
    assert {"user.registered", "invitation.accepted"} <= {e["action"] for e in by_guest}

    both = (await _audit(api, admin, actor=admin.id, action="team_grant.set")).json()
    assert [(e["actor_id"], e["action"]) for e in both] == [(admin.id, "team_grant.set")]
    assert (await _audit(api, admin, actor=member.id, action="team_grant.set")).json() == []


async def test_audit_log_is_for_admins_only(api: Api) -> None:
    """A platform user gets 403, an anonymous caller 401, a bad limit 400."""
    admin = await api.admin()
    user = await api.register("user")
    refused = await _audit(api, user)
    assert refused.status_code == 403, refused.text
    assert refused.json()["code"] == "forbidden"
    assert (await api.client.get("/api/admin/audit")).status_code == 401
    for limit in (0, 501):
        bad = await _audit(api, admin, limit=limit)
        assert bad.status_code == 400, bad.text
        assert bad.json()["code"] == "bad_request"
