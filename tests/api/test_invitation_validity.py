"""Invitations live only while their maker may still invite with their role (docs/protocol.md §2).

"An invitation is valid until it is used, revoked or expired, and only while the
member who made it still holds a role that may invite with that role: removing
or demoting them ends it." Owners list pending invitations and revoke them
(``GET`` / ``DELETE /api/projects/{pid}/invitations``); every step is audited.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from server.access.tables import AuditLog
from server.projects.tables import Invitation
from tests.api.conftest import PASSWORD, Account, Api


def _url(pid: str, rest: str = "") -> str:
    return f"/api/projects/{pid}{rest}"


async def _invite(api: Api, who: Account, pid: str, role: str) -> dict[str, Any]:
    response = await api.client.post(
        _url(pid, "/invitations"),
        json={"email": "guest@example.com", "role": role},
        headers=who.auth,
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


async def _pending(api: Api, owner: Account, pid: str) -> list[dict[str, Any]]:
    response = await api.client.get(_url(pid, "/invitations"), headers=owner.auth)
    assert response.status_code == 200, response.text
    body: list[dict[str, Any]] = response.json()
    return body


async def _actions(pid: str) -> list[str]:
    rows = (
        await AuditLog.select(AuditLog.action)
        .where(AuditLog.project_id == pid)
        .order_by(AuditLog.id)
    )
    return [row["action"] for row in rows]


async def test_a_removed_owner_cannot_take_the_project_back(api: Api) -> None:
    """An owner's own owner invitation, accepted after their demotion and removal, joins nobody."""
    owner = await api.register("owner")
    rogue = await api.register("rogue")
    pid = (await api.project(owner))["id"]
    await api.add_member(owner, pid, rogue, "owner")
    spare_key = await _invite(api, rogue, pid, "owner")

    demoted = await api.client.patch(
        _url(pid, f"/members/{rogue.id}"), json={"role": "viewer"}, headers=owner.auth
    )
    assert demoted.status_code == 200, demoted.text
    removed = await api.client.delete(_url(pid, f"/members/{rogue.id}"), headers=owner.auth)
    assert removed.status_code == 204, removed.text

    taken_back = await _accept(api, rogue, spare_key["token"])
    assert taken_back.status_code in (404, 410), taken_back.text
    assert await _members(api, owner, pid) == {owner.id: "owner"}
    coup = await api.client.delete(_url(pid, f"/members/{owner.id}"), headers=rogue.auth)
    assert coup.status_code == 403, coup.text
    assert (await api.client.get(_url(pid), headers=rogue.auth)).status_code == 403


async def _team_owner(api: Api, owner: Account, pid: str, who: Account) -> str:
    """Make ``who`` an owner of project ``pid`` through a team of ``owner``'s; the team id."""
    team = (await api.client.post("/api/teams", json={"name": "Crew"}, headers=owner.auth)).json()
    added = await api.client.post(
        f"/api/teams/{team['id']}/members",
        json={"email": who.email, "role": "member"},
        headers=owner.auth,
    )
    assert added.status_code == 201, added.text
    granted = await api.client.post(
        _url(pid, "/teams"), json={"team_id": team["id"], "role": "owner"}, headers=owner.auth
    )
    assert granted.status_code == 201, granted.text
    team_id: str = team["id"]
    return team_id


async def test_an_invitation_dies_when_its_maker_loses_the_role_through_a_team(api: Api) -> None:
    """Owner only through a team grant: once the grant is gone, their invitation is refused."""
    owner = await api.register("owner")
    teammate = await api.register("teammate")
    guest = await api.register("guest")
    pid = (await api.project(owner))["id"]
    team_id = await _team_owner(api, owner, pid, teammate)
    invitation = await _invite(api, teammate, pid, "editor")

    revoked = await api.client.delete(_url(pid, f"/teams/{team_id}"), headers=owner.auth)
    assert revoked.status_code == 204, revoked.text
    refused = await _accept(api, guest, invitation["token"])
    assert refused.status_code in (404, 410), refused.text
    assert guest.id not in await _members(api, owner, pid)
    regranted = await api.client.post(
        _url(pid, "/teams"), json={"team_id": team_id, "role": "owner"}, headers=owner.auth
    )
    assert regranted.status_code == 201, regranted.text
    again = await _accept(api, guest, invitation["token"])  # the role back: still ended
    assert again.status_code in (404, 410), again.text
    assert guest.id not in await _members(api, owner, pid)


async def test_an_invitation_dies_when_its_maker_leaves_the_team(api: Api) -> None:
    """Owner through a team, then out of the team: their invitation is refused."""
    owner = await api.register("owner")
    teammate = await api.register("teammate")
    guest = await api.register("guest")
    pid = (await api.project(owner))["id"]
    team_id = await _team_owner(api, owner, pid, teammate)
    invitation = await _invite(api, teammate, pid, "viewer")
    left = await api.client.delete(
        f"/api/teams/{team_id}/members/{teammate.id}", headers=teammate.auth
    )
    assert left.status_code == 204, left.text
    refused = await _accept(api, guest, invitation["token"])
    assert refused.status_code in (404, 410), refused.text
    assert guest.id not in await _members(api, owner, pid)


async def test_an_erased_makers_invitation_is_refused_when_accepted(api: Api) -> None:
    """A maker who erased their account: the check at accept time refuses it with 410."""
    owner = await api.register("owner")
    second = await api.register("second")
    guest = await api.register("guest")
    pid = (await api.project(owner))["id"]
    await api.add_member(owner, pid, second, "owner")
    invitation = await _invite(api, second, pid, "editor")
    erased = await api.client.request(
        "DELETE", "/api/me", json={"password": PASSWORD}, headers=second.auth
    )
    assert erased.status_code == 204, erased.text
    refused = await _accept(api, guest, invitation["token"])
    assert refused.status_code == 410, refused.text
    assert guest.id not in await _members(api, owner, pid)
    row = (
        await Invitation.select(Invitation.used_at).where(Invitation.id == invitation["id"]).first()
    )
    assert row is not None
    assert row["used_at"] is None  # not used up by the refused attempt


async def test_a_maker_demoted_directly_but_owner_through_a_team_keeps_their_invitations(
    api: Api,
) -> None:
    """Only the effective role counts: a direct demotion of a team owner ends nothing."""
    owner = await api.register("owner")
    second = await api.register("second")
    guest = await api.register("guest")
    pid = (await api.project(owner))["id"]
    await api.add_member(owner, pid, second, "owner")
    await _team_owner(api, owner, pid, second)
    invitation = await _invite(api, second, pid, "editor")
    demoted = await api.client.patch(
        _url(pid, f"/members/{second.id}"), json={"role": "viewer"}, headers=owner.auth
    )
    assert demoted.status_code == 200, demoted.text
    accepted = await _accept(api, guest, invitation["token"])
    assert accepted.status_code == 200, accepted.text
    assert (await _members(api, owner, pid))[guest.id] == "editor"


async def test_a_demoted_makers_invitation_is_refused(api: Api) -> None:
    """An owner demoted to editor (still a member): their viewer invitation no longer works."""
    owner = await api.register("owner")
    second = await api.register("second")
    guest = await api.register("guest")
    pid = (await api.project(owner))["id"]
    await api.add_member(owner, pid, second, "owner")
    invitation = await _invite(api, second, pid, "viewer")
    demoted = await api.client.patch(
        _url(pid, f"/members/{second.id}"), json={"role": "editor"}, headers=owner.auth
    )
    assert demoted.status_code == 200, demoted.text

    refused = await _accept(api, guest, invitation["token"])
    assert refused.status_code in (404, 410), refused.text
    assert guest.id not in await _members(api, owner, pid)
    # Promoted again, the maker does not bring the old invitation back: demotion ended it.
    promoted = await api.client.patch(
        _url(pid, f"/members/{second.id}"), json={"role": "owner"}, headers=owner.auth
    )
    assert promoted.status_code == 200, promoted.text
    again = await _accept(api, guest, invitation["token"])
    assert again.status_code in (404, 410), again.text
    assert guest.id not in await _members(api, owner, pid)


async def test_a_valid_makers_invitation_still_works(api: Api) -> None:
    """A second owner who keeps the role: their invitation is accepted as before."""
    owner = await api.register("owner")
    second = await api.register("second")
    guest = await api.register("guest")
    pid = (await api.project(owner))["id"]
    await api.add_member(owner, pid, second, "owner")
    invitation = await _invite(api, second, pid, "editor")
    accepted = await _accept(api, guest, invitation["token"])
    assert accepted.status_code == 200, accepted.text
    assert (await _members(api, owner, pid))[guest.id] == "editor"


async def test_owners_list_and_revoke_pending_invitations(api: Api) -> None:
    """GET lists pending invitations (never tokens); DELETE revokes one: accepting it is 404."""
    owner = await api.register("owner")
    guest = await api.register("guest")
    pid = (await api.project(owner))["id"]
    first = await _invite(api, owner, pid, "viewer")
    second = await _invite(api, owner, pid, "editor")
    used = await _invite(api, owner, pid, "viewer")
    assert (await _accept(api, guest, used["token"])).status_code == 200

    pending = await _pending(api, owner, pid)
    assert {p["id"] for p in pending} == {first["id"], second["id"]}
    listed = next(p for p in pending if p["id"] == second["id"])
    assert set(listed) == {"id", "email", "role", "invited_by", "created_at", "expires_at"}
    assert (listed["email"], listed["role"], listed["invited_by"]) == (
        "guest@example.com",
        "editor",
        owner.id,
    )
    assert all(second["token"] not in str(value) for value in listed.values())

    revoked = await api.client.delete(_url(pid, f"/invitations/{second['id']}"), headers=owner.auth)
    assert revoked.status_code == 204, revoked.text
    assert [p["id"] for p in await _pending(api, owner, pid)] == [first["id"]]
    late = await api.register("late")
    refused = await _accept(api, late, second["token"])
    assert refused.status_code == 404, refused.text
    assert late.id not in await _members(api, owner, pid)
    again = await api.client.delete(_url(pid, f"/invitations/{second['id']}"), headers=owner.auth)
    assert again.status_code == 404, again.text
    spent = await api.client.delete(_url(pid, f"/invitations/{used['id']}"), headers=owner.auth)
    assert spent.status_code == 404, spent.text
    actions = await _actions(pid)
    assert actions.count("invitation.created") == 3
    assert "invitation.accepted" in actions
    assert "invitation.revoked" in actions


async def test_only_owners_list_or_revoke_invitations(api: Api) -> None:
    """An editor can neither see the pending invitations nor revoke one (403)."""
    owner = await api.register("owner")
    editor = await api.register("editor")
    pid = (await api.project(owner))["id"]
    await api.add_member(owner, pid, editor, "editor")
    invitation = await _invite(api, owner, pid, "viewer")
    listed = await api.client.get(_url(pid, "/invitations"), headers=editor.auth)
    assert listed.status_code == 403, listed.text
    revoked = await api.client.delete(
        _url(pid, f"/invitations/{invitation['id']}"), headers=editor.auth
    )
    assert revoked.status_code == 403, revoked.text
    assert [p["id"] for p in await _pending(api, owner, pid)] == [invitation["id"]]


async def test_removing_a_maker_ends_their_invitations_in_the_audit_log(api: Api) -> None:
    """Removing a member who made invitations revokes them, and the audit log says so."""
    owner = await api.register("owner")
    second = await api.register("second")
    guest = await api.register("guest")
    pid = (await api.project(owner))["id"]
    await api.add_member(owner, pid, second, "owner")
    invitation = await _invite(api, second, pid, "viewer")
    removed = await api.client.delete(_url(pid, f"/members/{second.id}"), headers=owner.auth)
    assert removed.status_code == 204, removed.text
    refused = await _accept(api, guest, invitation["token"])
    assert refused.status_code in (404, 410), refused.text
    assert "invitation.revoked" in await _actions(pid)


async def test_the_link_shows_what_it_offers_until_it_is_dead(api: Api) -> None:
    """GET /api/invitations/{token}, signed out: project, inviter, e-mail, role; then 410/404."""
    owner = await api.register("Alice")
    guest = await api.register("guest")
    pid = (await api.project(owner, "Harbour Loft"))["id"]
    live = await _invite(api, owner, pid, "editor")
    revoked = await _invite(api, owner, pid, "viewer")
    expired = await _invite(api, owner, pid, "viewer")
    await Invitation.update(
        {Invitation.expires_at: datetime.now(UTC) - timedelta(minutes=1)}
    ).where(Invitation.id == expired["id"])
    revoke = await api.client.delete(_url(pid, f"/invitations/{revoked['id']}"), headers=owner.auth)
    assert revoke.status_code == 204, revoke.text

    api.client.cookies.clear()
    seen = await api.client.get(f"/api/invitations/{live['token']}")
    assert seen.status_code == 200, seen.text
    assert seen.json() == {
        "project_id": pid,
        "project_name": "Harbour Loft",
        "invited_by_name": "Alice",
        "email": "guest@example.com",
        "role": "editor",
        "expires_at": live["expires_at"],
    }
    assert (await _accept(api, guest, live["token"])).status_code == 200
    used = await api.client.get(f"/api/invitations/{live['token']}")
    assert (used.status_code, used.json()["detail"]) == (410, "this invitation was already used")
    late = await api.client.get(f"/api/invitations/{expired['token']}")
    assert (late.status_code, late.json()["detail"]) == (410, "this invitation has expired")
    for token in (revoked["token"], "not-a-token"):
        gone = await api.client.get(f"/api/invitations/{token}")
        assert gone.status_code == 404, gone.text
