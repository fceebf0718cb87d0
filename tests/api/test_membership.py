"""Who may work on a project: invitations, the last-owner rule, team grants, member events.

docs/protocol.md §2.4 (members, invitations, team grants; "a user's role on a
project is the highest of its direct membership and every team grant") and
3.2 (every membership change is an event with the next seq, no gaps).
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from server.events.tables import Event
from server.projects.tables import Invitation, Project, ProjectMember
from tests.api.conftest import Account, Api


def _url(pid: str, rest: str = "") -> str:
    return f"/api/projects/{pid}{rest}"


async def _invite(api: Api, owner: Account, pid: str, email: str, role: str) -> dict[str, Any]:
    response = await api.client.post(
        _url(pid, "/invitations"), json={"email": email, "role": role}, headers=owner.auth
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def _accept(api: Api, who: Account, token: str) -> httpx.Response:
    return await api.client.post(f"/api/invitations/{token}/accept", headers=who.auth)


async def _members(api: Api, owner: Account, pid: str) -> dict[str, str]:
    response = await api.client.get(_url(pid, "/members"), headers=owner.auth)
    assert response.status_code == 200, response.text
    return {m["user_id"]: m["role"] for m in response.json()}


async def _can_read(api: Api, who: Account, pid: str) -> bool:
    status = (await api.client.get(_url(pid), headers=who.auth)).status_code
    assert status in (200, 403)
    return status == 200


async def _listed_roles(api: Api, who: Account) -> dict[str, str]:
    response = await api.client.get("/api/projects", headers=who.auth)
    assert response.status_code == 200, response.text
    return {p["id"]: p["role"] for p in response.json()}


async def _rename(api: Api, who: Account, pid: str, name: str) -> int:
    """PATCH the project's name from its current version; returns the status."""
    project = await Project.select(Project.version).where(Project.id == pid).first()
    assert project is not None
    response = await api.client.patch(
        _url(pid), json={"base_version": project["version"], "name": name}, headers=who.auth
    )
    return response.status_code


async def _set_role(api: Api, who: Account, pid: str, uid: str, role: str) -> httpx.Response:
    return await api.client.patch(
        _url(pid, f"/members/{uid}"), json={"role": role}, headers=who.auth
    )


async def _remove(api: Api, who: Account, pid: str, uid: str) -> httpx.Response:
    return await api.client.delete(_url(pid, f"/members/{uid}"), headers=who.auth)


async def _events(pid: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = (
        await Event.select()
        .where(Event.project_id == pid)
        .order_by(Event.seq)
        .output(load_json=True)
    )
    return rows


async def _project_seq(api: Api, owner: Account, pid: str) -> int:
    seq: int = (await api.client.get(_url(pid), headers=owner.auth)).json()["seq"]
    return seq


# --- invitations -------------------------------------------------------------


async def test_invitation_is_accepted_once(api: Api) -> None:
    """An accepted invitation makes a member with its role; the same token again is 410."""
    owner = await api.register("owner")
    guest = await api.register("guest")
    latecomer = await api.register("latecomer")
    pid = (await api.project(owner))["id"]
    created = await _invite(api, owner, pid, guest.email, "editor")
    assert set(created) == {"id", "token", "expires_at"}
    expires = datetime.fromisoformat(created["expires_at"])
    assert expires > datetime.now(UTC) + timedelta(hours=1)

    accepted = await _accept(api, guest, created["token"])
    assert accepted.status_code == 200, accepted.text
    member = accepted.json()
    assert (member["user_id"], member["role"], member["project_id"]) == (guest.id, "editor", pid)
    assert (await _members(api, owner, pid))[guest.id] == "editor"
    assert await _can_read(api, guest, pid)
    assert await _rename(api, guest, pid, "by the guest") == 200

    for who in (guest, latecomer):
        again = await _accept(api, who, created["token"])
        assert again.status_code == 410, again.text
        assert again.headers["content-type"].startswith("application/problem+json")
    assert not await _can_read(api, latecomer, pid)
    assert latecomer.id not in await _members(api, owner, pid)


async def test_expired_or_unknown_invitation_is_refused(api: Api) -> None:
    """An expired invitation is 410 and joins nobody; an unknown token is 404."""
    owner = await api.register("owner")
    guest = await api.register("guest")
    pid = (await api.project(owner))["id"]
    created = await _invite(api, owner, pid, guest.email, "viewer")
    await Invitation.update(
        {Invitation.expires_at: datetime.now(UTC) - timedelta(minutes=1)}
    ).where(Invitation.id == created["id"])
    expired = await _accept(api, guest, created["token"])
    assert expired.status_code == 410, expired.text
    assert not await _can_read(api, guest, pid)
    assert guest.id not in await _members(api, owner, pid)
    row = await Invitation.select(Invitation.used_at).where(Invitation.id == created["id"]).first()
    assert row is not None
    assert row["used_at"] is None

    unknown = await _accept(api, guest, "inv_" + uuid.uuid4().hex)
    assert unknown.status_code == 404, unknown.text
    assert unknown.json()["code"] == "not_found"


async def test_invitation_token_is_stored_only_hashed(api: Api) -> None:
    """No column of the invitation row holds the token the owner was shown."""
    owner = await api.register("owner")
    pid = (await api.project(owner))["id"]
    created = await _invite(api, owner, pid, "someone@example.com", "viewer")
    token = created["token"]
    rows = await Invitation.select().where(Invitation.id == created["id"])
    assert len(rows) == 1
    for column, value in rows[0].items():
        assert token not in str(value), column
    assert len(token) >= 32


async def test_only_owners_invite(api: Api) -> None:
    """An editor or a stranger creating an invitation gets 403 and nothing is stored."""
    owner = await api.register("owner")
    editor = await api.register("editor")
    stranger = await api.register("stranger")
    pid = (await api.project(owner))["id"]
    await api.add_member(owner, pid, editor, "editor")
    for who in (editor, stranger):
        response = await api.client.post(
            _url(pid, "/invitations"),
            json={"email": "x@example.com", "role": "owner"},
            headers=who.auth,
        )
        assert response.status_code == 403, response.text
    assert await Invitation.count() == 0


async def test_concurrent_accepts_of_one_invitation_have_one_winner(api: Api) -> None:
    """Two users accepting the same token at once: exactly one joins, the other gets 410."""
    owner = await api.register("owner")
    first = await api.register("first")
    second = await api.register("second")
    pid = (await api.project(owner))["id"]
    created = await _invite(api, owner, pid, first.email, "editor")
    results = await asyncio.gather(
        _accept(api, first, created["token"]), _accept(api, second, created["token"])
    )
    assert sorted(r.status_code for r in results) == [200, 410], [r.text for r in results]
    winner = (first, second)[[r.status_code for r in results].index(200)]
    members = await _members(api, owner, pid)
    assert set(members) == {owner.id, winner.id}
    kinds = [e["kind"] for e in await _events(pid)]
    assert kinds.count("member.created") == 2  # the owner's and the winner's


# --- the last owner ----------------------------------------------------------


async def test_last_owner_cannot_leave_or_be_demoted(api: Api) -> None:
    """The only owner demoting or removing themself gets 409 conflict; with two owners both work."""
    owner = await api.register("owner")
    second = await api.register("second")
    pid = (await api.project(owner))["id"]
    for response in (
        await _set_role(api, owner, pid, owner.id, "editor"),
        await _remove(api, owner, pid, owner.id),
    ):
        assert response.status_code == 409, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["code"] == "conflict"
    assert await _members(api, owner, pid) == {owner.id: "owner"}

    await api.add_member(owner, pid, second, "owner")
    demoted = await _set_role(api, owner, pid, owner.id, "editor")
    assert demoted.status_code == 200, demoted.text
    assert demoted.json()["role"] == "editor"
    # Now ``second`` is the last owner and is protected in turn.
    assert (await _set_role(api, second, pid, second.id, "viewer")).status_code == 409
    assert (await _set_role(api, second, pid, owner.id, "owner")).status_code == 200
    left = await _remove(api, owner, pid, owner.id)
    assert left.status_code == 204, left.text
    assert await _members(api, second, pid) == {second.id: "owner"}
    assert not await _can_read(api, owner, pid)


async def test_owners_demoting_each_other_at_once_leave_an_owner(api: Api) -> None:
    """Two owners demoting (or removing) each other concurrently: one wins, one owner remains."""
    a = await api.register("a")
    b = await api.register("b")
    for attempt in ("demote", "remove"):
        pid = (await api.project(a, name=attempt))["id"]
        await api.add_member(a, pid, b, "owner")
        if attempt == "demote":
            results = await asyncio.gather(
                _set_role(api, a, pid, b.id, "viewer"), _set_role(api, b, pid, a.id, "viewer")
            )
            ok = 200
        else:
            results = await asyncio.gather(_remove(api, a, pid, b.id), _remove(api, b, pid, a.id))
            ok = 204
        statuses = [r.status_code for r in results]
        # The loser either finds it is the last owner's turn (409) or, once demoted
        # before its permission check ran, no longer manages members (403).
        assert statuses.count(ok) == 1, statuses
        assert set(statuses) - {ok} <= {403, 409}, statuses
        rows = await ProjectMember.select(ProjectMember.role).where(ProjectMember.project_id == pid)
        assert [r["role"] for r in rows].count("owner") == 1


# --- team grants -------------------------------------------------------------


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
        _url(pid, "/teams"), json={"team_id": tid, "role": role}, headers=owner.auth
    )
    assert response.status_code == 201, response.text
    assert (response.json()["team_id"], response.json()["role"]) == (tid, role)


def _access_notices(api: Api) -> list[tuple[str, set[str] | None]]:
    notifier: Any = api.ctx.notifier
    return [
        (str(pid), None if users is None else {str(u) for u in users})
        for pid, users in notifier.access
    ]


async def test_team_grant_gives_its_role_to_team_members(api: Api) -> None:
    """Members of an editor team can edit; of a viewer team can read but not edit (403)."""
    owner = await api.register("owner")
    editor = await api.register("editor")
    viewer = await api.register("viewer")
    pid = (await api.project(owner))["id"]
    editors = await _team(api, owner, editor)
    viewers = await _team(api, owner, viewer)
    assert not await _can_read(api, editor, pid)

    api.ctx.notifier.access.clear()  # type: ignore[attr-defined]
    await _grant(api, owner, pid, editors, "editor")
    await _grant(api, owner, pid, viewers, "viewer")
    notices = _access_notices(api)
    assert any(p == pid and users is not None and editor.id in users for p, users in notices)
    assert any(p == pid and users is not None and viewer.id in users for p, users in notices)

    assert await _rename(api, editor, pid, "by the team") == 200
    assert await _can_read(api, viewer, pid)
    assert await _rename(api, viewer, pid, "by a viewer") == 403
    assert (await _listed_roles(api, editor))[pid] == "editor"
    assert (await _listed_roles(api, viewer))[pid] == "viewer"
    members = await api.client.get(_url(pid, "/members"), headers=editor.auth)
    assert members.status_code == 403  # an inherited editor does not manage members


async def test_effective_role_is_the_highest_of_direct_and_team(api: Api) -> None:
    """A direct viewer in an editor team edits; losing the grant leaves them a viewer."""
    owner = await api.register("owner")
    user = await api.register("user")
    pid = (await api.project(owner))["id"]
    await api.add_member(owner, pid, user, "viewer")
    assert await _rename(api, user, pid, "as viewer") == 403
    tid = await _team(api, owner, user)
    await _grant(api, owner, pid, tid, "editor")
    assert (await _listed_roles(api, user))[pid] == "editor"
    assert await _rename(api, user, pid, "as editor") == 200

    revoked = await api.client.delete(_url(pid, f"/teams/{tid}"), headers=owner.auth)
    assert revoked.status_code == 204, revoked.text
    assert (await _listed_roles(api, user))[pid] == "viewer"
    assert await _rename(api, user, pid, "as viewer again") == 403


async def test_removing_the_grant_takes_access_away(api: Api) -> None:
    """Deleting a team's grant: its members get 403 and the project leaves their list."""
    owner = await api.register("owner")
    user = await api.register("user")
    pid = (await api.project(owner))["id"]
    tid = await _team(api, owner, user)
    await _grant(api, owner, pid, tid, "editor")
    assert await _can_read(api, user, pid)
    assert pid in await _listed_roles(api, user)

    api.ctx.notifier.access.clear()  # type: ignore[attr-defined]
    revoked = await api.client.delete(_url(pid, f"/teams/{tid}"), headers=owner.auth)
    assert revoked.status_code == 204, revoked.text
    assert not await _can_read(api, user, pid)
    assert await _rename(api, user, pid, "too late") == 403
    assert pid not in await _listed_roles(api, user)
    assert any(p == pid and users and user.id in users for p, users in _access_notices(api))
    again = await api.client.delete(_url(pid, f"/teams/{tid}"), headers=owner.auth)
    assert again.status_code == 404
    assert await _can_read(api, owner, pid)  # the owner's own membership is untouched


async def test_leaving_the_team_takes_access_away(api: Api) -> None:
    """Removing a user from a team: they lose the team's projects; the others keep them."""
    owner = await api.register("owner")
    user = await api.register("user")
    stays = await api.register("stays")
    pid = (await api.project(owner))["id"]
    tid = await _team(api, owner, user, stays)
    await _grant(api, owner, pid, tid, "viewer")
    assert await _can_read(api, user, pid)

    api.ctx.notifier.access.clear()  # type: ignore[attr-defined]
    removed = await api.client.delete(f"/api/teams/{tid}/members/{user.id}", headers=owner.auth)
    assert removed.status_code == 204, removed.text
    assert not await _can_read(api, user, pid)
    assert pid not in await _listed_roles(api, user)
    assert await _can_read(api, stays, pid)
    assert (pid, {user.id}) in _access_notices(api)


# --- membership events -------------------------------------------------------


async def test_membership_changes_are_events_without_gaps(api: Api) -> None:
    """Add, role change, removal and invitation are member.* events with consecutive seqs."""
    owner = await api.register("owner")
    member = await api.register("member")
    guest = await api.register("guest")
    pid = (await api.project(owner))["id"]
    api.ctx.notifier.events.clear()  # type: ignore[attr-defined]

    await api.add_member(owner, pid, member, "viewer")
    assert (await _set_role(api, owner, pid, member.id, "editor")).status_code == 200
    # Refused or empty changes take no seq: the last owner, a no-op, an unknown member.
    assert (await _set_role(api, owner, pid, owner.id, "viewer")).status_code == 409
    assert (await _set_role(api, owner, pid, member.id, "editor")).status_code == 200
    assert (await _remove(api, owner, pid, str(uuid.uuid4()))).status_code == 404
    assert (await _remove(api, owner, pid, member.id)).status_code == 204
    created = await _invite(api, owner, pid, guest.email, "viewer")
    assert (await _accept(api, guest, created["token"])).status_code == 200

    events = await _events(pid)
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert await _project_seq(api, owner, pid) == len(events) == 6
    assert [(e["kind"], str(e["entity_id"])) for e in events] == [
        ("project.created", pid),
        ("member.created", owner.id),
        ("member.created", member.id),
        ("member.updated", member.id),
        ("member.deleted", member.id),
        ("member.created", guest.id),
    ]
    assert events[2]["data"] == {"user_id": member.id, "name": "member", "role": "viewer"}
    assert events[3]["data"]["role"] == "editor"
    assert events[4]["data"] == {}
    assert events[5]["data"]["role"] == "viewer"
    assert str(events[2]["actor_id"]) == owner.id
    assert str(events[5]["actor_id"]) == guest.id
    published = [e.seq for e in api.ctx.notifier.events if str(e.project_id) == pid]  # type: ignore[attr-defined]
    assert published == [3, 4, 5, 6]
