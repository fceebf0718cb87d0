"""People and the project's own controls in real Chromium, two people side by side (issue 21).

Invitation links that say who invited you to what (or that they are dead) before any sign-up;
owners managing roles, members and pending invitations from the page; renaming and deleting
rooms and projects; the credits beside Generate; exporting my data.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.browser.board import open_board, shared_board
from tests.browser.conftest import Page, Rest, User, Users, expect

pytestmark = pytest.mark.e2e


def _console_errors(user: User) -> list[str]:
    """Console errors other than the browser's own line for an expected 4xx answer."""
    return [
        line
        for line in user.console
        if line.startswith("error") and "Failed to load resource" not in line
    ]


async def _confirm(page: Page, accept: bool) -> None:
    """Answer the next confirm() the page asks."""

    async def answer(dialog: object) -> None:
        await (dialog.accept() if accept else dialog.dismiss())  # type: ignore[attr-defined]

    page.once("dialog", answer)


async def test_an_invited_person_joins_then_the_owner_manages_them(
    users: Users, rest: Rest
) -> None:
    """The link says who invited whom to what; dead links say so; roles and removal follow live."""
    ann = await users("Ann")
    project = await rest.call(ann, "POST", "/api/projects", {"name": "Harbour Loft"})
    pid = project["id"]
    await rest.call(
        ann, "POST", f"/api/projects/{pid}/rooms", {"name": "Loft", "room_type": "other"}
    )
    spare = await rest.call(
        ann,
        "POST",
        f"/api/projects/{pid}/invitations",
        {"email": "spare@example.com", "role": "viewer"},
    )
    dora = await users("Dora", signed_up=False)
    a = await open_board(ann, pid)

    # Ann tries to add Dora, who has no account yet: the page offers the invitation link
    # instead, in one click. Both invitations are then listed as pending.
    form = a.get_by_test_id("member-form")
    await form.get_by_role("textbox").fill(dora.email)
    await form.get_by_role("combobox").select_option("editor")
    await form.get_by_role("button", name="Add member").click()
    slip = a.get_by_test_id("notice").filter(has_text="No account uses")
    await expect(slip).to_contain_text(dora.email)
    await slip.get_by_test_id("notice-action").click()
    await expect(a.get_by_test_id("invite")).to_contain_text(dora.email)
    link = await a.get_by_test_id("invite-link").input_value()
    pending = a.get_by_test_id("invitation")
    await expect(pending).to_have_count(2)
    await expect(pending.filter(has_text=dora.email)).to_contain_text("editor")

    # Ann revokes the spare one: its link is dead before anyone signs up.
    await pending.filter(has_text="spare@example.com").get_by_test_id("invitation-revoke").click()
    await expect(pending).to_have_count(1)
    d = dora.page
    await d.goto(f"/#/invite/{spare['token']}")
    card = d.get_by_test_id("invitation-landing")
    await expect(card).to_have_attribute("data-state", "dead")
    await expect(card).to_contain_text("revoked")

    # Dora's own link: who invited her to what, her e-mail filled in on the sign-up form.
    await d.goto(link)
    await expect(d.get_by_test_id("invitation-title")).to_have_text(
        "Ann invited you to Harbour Loft"
    )
    signup = d.get_by_test_id("signup-form")
    await expect(signup).to_be_visible()
    await expect(signup.get_by_label("E-mail")).to_have_value(dora.email)
    await signup.get_by_label("Name").fill("Dora")
    await signup.get_by_label("Password").fill("correct horse battery")
    await signup.get_by_role("button", name="Create account").click()
    await expect(d.get_by_test_id("project-name")).to_have_text("Harbour Loft")
    await expect(d.get_by_test_id("connection")).to_have_attribute("data-state", "live")

    # Ann sees Dora join: the invitation is no longer pending; Dora has one colour everywhere.
    dora_row = a.locator('[data-testid="member"]', has_text="Dora")
    await expect(dora_row).to_have_attribute("data-role", "editor")
    await expect(pending).to_have_count(0)
    dora_id = await dora_row.get_attribute("data-user-id")
    colours = set()
    for page in (a, d):
        dot = page.locator(f'[data-testid="member"][data-user-id="{dora_id}"] .dot')
        colours.add(await dot.get_attribute("style"))
    ann_dot = await a.locator(
        f'[data-testid="member"][data-user-id="{ann.id}"] .dot'
    ).get_attribute("style")
    assert len(colours) == 1, colours
    assert ann_dot not in colours, (colours, ann_dot)

    # The used link says so to the next person who opens it, signed out.
    eve = await users("Eve", signed_up=False)
    await eve.page.goto(link)
    await expect(eve.page.get_by_test_id("invitation-landing")).to_have_attribute(
        "data-state", "dead"
    )
    await expect(eve.page.get_by_test_id("invitation-title")).to_contain_text("already used")

    # Ann makes Dora a viewer: Dora's page turns view-only at once. The last owner stays owner.
    await expect(d.get_by_test_id("view-only")).to_be_hidden()
    await dora_row.get_by_test_id("member-role").select_option("viewer")
    await expect(d.get_by_test_id("view-only")).to_be_visible()
    await expect(d.get_by_test_id("add-note")).to_be_hidden()
    await expect(d.get_by_test_id("member-form")).to_be_hidden()
    ann_row = a.locator(f'[data-testid="member"][data-user-id="{ann.id}"]')
    await ann_row.get_by_test_id("member-role").select_option("editor")
    await expect(a.locator('[data-testid="notice"][data-kind="error"]')).to_contain_text(
        "at least one owner"
    )
    await expect(ann_row.get_by_test_id("member-role")).to_have_value("owner")

    # Removing asks first; once confirmed, Dora is told and taken back to her projects.
    await _confirm(a, accept=False)
    await dora_row.get_by_test_id("member-remove").click()
    await expect(dora_row).to_have_count(1)
    await _confirm(a, accept=True)
    await dora_row.get_by_test_id("member-remove").click()
    await expect(dora_row).to_have_count(0)
    await expect(
        d.get_by_test_id("notice").filter(has_text="no longer have access")
    ).to_be_visible()
    await expect(d.get_by_role("heading", name="Your projects")).to_be_visible()
    for user in (ann, dora, eve):
        assert not _console_errors(user), (user.name, _console_errors(user))


async def test_rooms_and_projects_renamed_and_deleted_credits_and_export(
    users: Users, rest: Rest, tmp_path: Path
) -> None:
    """Renames reach the other board; deletes ask first; credits follow a generation; export."""
    ann, ben, pid, _ = await shared_board(users, rest)
    a, b = await open_board(ann, pid), await open_board(ben, pid)

    # The balance beside Generate, and what a picture costs; a generation spends, a cancel refunds.
    credits = a.get_by_test_id("credits")
    await expect(credits).to_have_attribute("data-credits", "100")
    await expect(credits).to_contain_text("100 credits")
    await expect(credits).to_contain_text("10 per picture")
    await a.get_by_test_id("generate-prompt").fill("Oak shelves")
    await a.get_by_test_id("generate-submit").click()
    await expect(credits).to_contain_text("90 credits")
    await a.get_by_test_id("generation-cancel").click()
    await expect(credits).to_contain_text("100 credits")

    # Renaming the room and the project: Ben sees both. Only an owner is offered the delete.
    await a.get_by_test_id("room-rename").click()
    await a.get_by_test_id("rename-input").fill("Galley")
    await a.get_by_test_id("rename-input").press("Enter")
    await expect(b.get_by_test_id("room-tab")).to_have_text("Galley")
    await a.get_by_test_id("project-rename").click()
    await a.get_by_test_id("rename-input").fill("Harbour Loft")
    await a.get_by_test_id("rename-input").press("Enter")
    await expect(b.get_by_test_id("project-name")).to_have_text("Harbour Loft")
    await expect(a.get_by_test_id("project-delete")).to_be_visible()
    await expect(b.get_by_test_id("project-delete")).to_be_hidden()

    # Export my data: a JSON file of what the server keeps about Ann.
    async with a.expect_download() as waiting:
        await a.get_by_test_id("export-data").click()
    download = await waiting.value
    assert re.fullmatch(r"moodboard-export-\d{4}-\d\d-\d\d\.json", download.suggested_filename)
    saved = tmp_path / "export.json"
    await download.save_as(saved)
    exported = json.loads(saved.read_text())
    assert ann.email in json.dumps(exported)
    assert [row["delta"] for row in exported["credit_ledger"]][-2:] == [-10, 10]

    # Deleting the room asks first: dismissed, nothing happens; confirmed, it goes for both.
    await _confirm(a, accept=False)
    await a.get_by_test_id("room-delete").click()
    await expect(b.get_by_test_id("room-tab")).to_have_count(1)
    await _confirm(a, accept=True)
    await a.get_by_test_id("room-delete").click()
    for page in (a, b):
        await expect(page.get_by_test_id("room-tab")).to_have_count(0)
        await expect(page.locator("#board-empty")).to_be_visible()

    # A room's address opened in a fresh browser (a link someone shared) opens that room, not
    # the first one.
    for name in ("Attic", "Porch"):
        room = await rest.call(
            ann, "POST", f"/api/projects/{pid}/rooms", {"name": name, "room_type": "other"}
        )
    cleo = await users("Cleo")
    await rest.call(
        ann, "POST", f"/api/projects/{pid}/members", {"email": cleo.email, "role": "viewer"}
    )
    await cleo.page.goto(f"/#/p/{pid}/{room['id']}")
    await expect(cleo.page.get_by_test_id("room-tab")).to_have_count(2)
    await expect(cleo.page.locator(".room-tab.active")).to_have_text("Porch")

    # Deleting the project: Ann is back at her projects, Ben is told and taken there too.
    await _confirm(a, accept=True)
    await a.get_by_test_id("project-delete").click()
    await expect(a.get_by_role("heading", name="Your projects")).to_be_visible()
    await expect(a.get_by_test_id("project-link")).to_have_count(0)
    await expect(b.get_by_test_id("notice").filter(has_text="was deleted")).to_be_visible()
    await expect(b.get_by_role("heading", name="Your projects")).to_be_visible()
    for user in (ann, ben, cleo):  # a normal session: not even a failed request
        assert not [line for line in user.console if line.startswith("error")], user.console
