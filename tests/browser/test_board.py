"""Two people on one board in real Chromium: live edits, races, offline edits (issue 7)."""

from __future__ import annotations

import asyncio
import re

import pytest

from tests.browser.board import add_note, drag, item, open_board, settled, shared_board
from tests.browser.conftest import Rest, Users, expect

pytestmark = pytest.mark.e2e


async def test_a_new_user_signs_up_shares_a_project_and_edits_live(users: Users) -> None:
    """Sign up, make a project, room and note, add a member in the page; they see it all live."""
    ben = await users("Ben")
    ann = await users("Ann")
    await ann.context.clear_cookies()  # Ann starts signed out and signs up in the page
    page = ann.page
    await page.goto("/")
    await page.get_by_test_id("tab-signup").click()
    form = page.get_by_test_id("signup-form")
    await form.get_by_label("Name").fill("Ann")
    await form.get_by_label("E-mail").fill(ann.email.replace("@", "+ui@"))
    await form.get_by_label("Password").fill("correct horse battery")
    await form.get_by_role("button", name="Create account").click()
    await expect(page.get_by_test_id("connection")).to_have_attribute("data-state", "live")

    await page.get_by_test_id("project-form").get_by_role("textbox").fill("Summer house")
    await page.get_by_role("button", name="Create project").click()
    await expect(page.get_by_test_id("project-name")).to_have_text("Summer house")
    await page.get_by_test_id("room-form").get_by_role("textbox").fill("Kitchen")
    await page.get_by_role("button", name="+ Room").click()
    await expect(page.get_by_test_id("room-tab")).to_have_text("Kitchen")
    await page.get_by_test_id("add-note").click()
    await expect(page.get_by_test_id("item")).to_have_count(1)
    members = page.get_by_test_id("member-form")
    await members.get_by_role("textbox").fill(ben.email)
    await members.get_by_role("button", name="Add member").click()
    await expect(page.get_by_test_id("members").get_by_text("Ben")).to_be_visible()
    await settled(page)

    project_id = re.search(r"#/p/([0-9a-f-]+)", page.url)
    assert project_id is not None
    other = await open_board(ben, project_id.group(1))
    await expect(other.get_by_test_id("room-tab")).to_have_text("Kitchen")
    await expect(other.get_by_test_id("note-text")).to_have_text("New note")
    await expect(other.get_by_test_id("here-user")).to_have_count(2)
    await expect(page.get_by_test_id("here-user")).to_have_count(2)

    note_id = await page.get_by_test_id("item").get_attribute("data-id")
    assert note_id is not None
    start = int(await item(other, note_id).get_attribute("data-x") or "0")
    await drag(page, note_id, 150, 60)
    await expect(item(other, note_id)).to_have_attribute("data-x", str(start + 150))
    # Ann's pointer shows on Ben's board while she moves over it.
    await page.mouse.move(600, 500)
    await expect(other.get_by_test_id("cursor")).to_have_count(1)
    await expect(other.get_by_test_id("cursor")).to_contain_text("Ann")
    await other.close()  # Ben leaves: Ann's list of who is here follows
    await expect(page.get_by_test_id("here-user")).to_have_count(1)

    # Back to the list and into the project again: it is joined afresh, quietly.
    await page.get_by_role("link", name="Moodboard").click()
    await page.get_by_test_id("project-link").click()
    await expect(page.get_by_test_id("item")).to_have_count(1)
    await page.wait_for_function("() => window.moodboard.page.handle.state === 'live'")
    await expect(page.locator('[data-testid="notice"][data-kind="error"]')).to_have_count(0)

    # Logging out leaves nothing of Ann's boards in this browser.
    assert await page.evaluate("Object.keys(localStorage).some(k => k.startsWith('moodboard.'))")
    await page.get_by_test_id("logout").click()
    await expect(page.get_by_test_id("login-form")).to_be_visible()
    assert not await page.evaluate(
        "Object.keys(localStorage).some(k => k.startsWith('moodboard.'))"
    )


async def test_an_invitation_link_brings_a_new_person_into_the_project(
    users: Users, rest: Rest
) -> None:
    """An owner invites an e-mail nobody uses: the link lets them sign up and join; no errors."""
    ann, _, project_id, _ = await shared_board(users, rest)
    cleo = await users("Cleo", signed_up=False)
    a = await open_board(ann, project_id)
    members = a.get_by_test_id("member-form")
    await members.get_by_role("textbox").fill(cleo.email)
    await members.get_by_role("button", name="Invite by link").click()
    await expect(a.get_by_test_id("invite")).to_contain_text(cleo.email)
    link = await a.get_by_test_id("invite-link").input_value()

    page = cleo.page
    await page.goto(link)
    await page.get_by_test_id("tab-signup").click()
    # A signed-out first visit asks nothing it would be refused (no 401 in the console).
    assert not [line for line in cleo.console if line.startswith("error")], cleo.console
    form = page.get_by_test_id("signup-form")
    await form.get_by_label("Name").fill("Cleo")
    await form.get_by_label("E-mail").fill(cleo.email)
    await form.get_by_label("Password").fill("correct horse battery")
    await form.get_by_role("button", name="Create account").click()
    await expect(page.get_by_test_id("project-name")).to_have_text("Flat")
    await expect(page.get_by_test_id("room-tab")).to_have_text("Kitchen")
    await expect(a.get_by_test_id("members").get_by_text("Cleo")).to_be_visible()
    await expect(a.get_by_test_id("here-user")).to_have_count(2)
    # Inviting is a request that succeeds: the owner's console has no error (no 404 on the way).
    assert not [line for line in ann.console if line.startswith("error")], ann.console


async def test_simultaneous_drags_converge_and_the_loser_is_told(users: Users, rest: Rest) -> None:
    """Both drag one note at once: both end at one position; the one refused gets a notice."""
    ann, ben, project_id, room_id = await shared_board(users, rest)
    note = await add_note(rest, ann, project_id, room_id)
    a, b = await open_board(ann, project_id), await open_board(ben, project_id)
    await expect(item(b, note)).to_be_visible()
    await expect(item(a, note)).to_be_visible()

    await drag(a, note, 200, 40, release=False)
    # Ann's drag glides on Ben's board (presence): Ben grabs the note where he sees it. Were
    # he to measure it before her glide arrived, he would press on the empty board.
    await expect(item(b, note)).to_have_class(re.compile(r"\bgliding\b"))
    await expect(item(b, note)).to_have_css("left", "300px")
    await expect(item(b, note)).to_have_css("top", "140px")
    await drag(b, note, 40, 260, release=False)
    await expect(item(b, note)).to_have_class(re.compile(r"\bdragging\b"))
    await asyncio.gather(a.mouse.up(), b.mouse.up())  # both started from version 1
    await settled(a)
    await settled(b)

    notices = [
        await page.locator('[data-testid="notice"][data-kind="conflict"]').count()
        for page in (a, b)
    ]
    assert sorted(notices) == [0, 1], f"conflict notices in (Ann, Ben): {notices}"
    loser, winner = (a, b) if notices[0] else (b, a)
    await expect(loser.get_by_test_id("notice")).to_contain_text("re-applied")
    # The loser's move was re-applied on top: both show the loser's drop position.
    want = (300, 140) if loser is a else (140, 360)
    for page in (winner, loser):
        await expect(item(page, note)).to_have_attribute("data-x", str(want[0]))
        await expect(item(page, note)).to_have_attribute("data-y", str(want[1]))


async def test_offline_edits_are_sent_on_reconnect_and_seen_once(users: Users, rest: Rest) -> None:
    """Ann edits while offline; back online, Ben sees each of her edits exactly once."""
    ann, ben, project_id, room_id = await shared_board(users, rest)
    note = await add_note(rest, ann, project_id, room_id)
    a, b = await open_board(ann, project_id), await open_board(ben, project_id)
    await expect(item(b, note)).to_be_visible()

    await ann.context.set_offline(True)
    await expect(a.get_by_test_id("connection")).to_have_attribute("data-state", "offline")
    await drag(a, note, 120, 80)
    await a.get_by_test_id("add-note").click()
    await expect(a.get_by_test_id("item")).to_have_count(2)
    await expect(a.get_by_test_id("connection")).to_contain_text("2 unsent")
    await expect(item(b, note)).to_have_attribute("data-x", "100")  # nothing left Ann yet
    await b.get_by_test_id("add-color").click()  # Ben goes on working meanwhile
    await expect(b.get_by_test_id("item")).to_have_count(2)
    await settled(b)

    await ann.context.set_offline(False)
    await expect(a.get_by_test_id("connection")).to_have_attribute("data-state", "live")
    await settled(a)
    await expect(item(b, note)).to_have_attribute("data-x", "220")
    await expect(item(b, note)).to_have_attribute("data-y", "180")
    await expect(b.get_by_test_id("item")).to_have_count(3)
    await expect(a.get_by_test_id("item")).to_have_count(3)
    assert await a.evaluate("window.moodboard.page.handle.mode") == "replay"
    for page in (a, b):
        applied = await page.evaluate(
            "window.moodboard.page.handle.applied.map(e => [e.seq, e.kind, e.id])"
        )
        seqs = [seq for seq, _, _ in applied]
        assert seqs == sorted(set(seqs)), f"an event applied twice or out of order: {applied}"
        created = [e for e in applied if e[1] == "item.created"]
        moved = [e for e in applied if e[1] == "item.updated" and e[2] == note]
        assert (len(created), len(moved)) == (2, 1), applied
    items = await rest.call(ben, "GET", f"/api/projects/{project_id}/rooms/{room_id}/items")
    assert len(items) == 3

    # A reload resumes from the seq this browser stored for the project: a replay.
    await a.reload()
    await expect(a.get_by_test_id("connection")).to_have_attribute("data-state", "live")
    await a.wait_for_function("() => window.moodboard.page.handle?.state === 'live'")
    assert await a.evaluate("window.moodboard.page.handle.mode") == "replay"
    await expect(a.get_by_test_id("item")).to_have_count(3)


async def test_concurrent_note_edits_keep_the_first_and_show_the_other_text(
    users: Users, rest: Rest
) -> None:
    """Two people retype one note: the first text stays; the other gets a notice with theirs."""
    ann, ben, project_id, room_id = await shared_board(users, rest)
    note = await add_note(rest, ann, project_id, room_id)
    a, b = await open_board(ann, project_id), await open_board(ben, project_id)
    for page, text in ((a, "Oak shelves"), (b, "Walnut shelves")):
        await item(page, note).dblclick()
        await page.get_by_test_id("note-edit").fill(text)
    await a.keyboard.press("Control+Enter")
    await expect(item(b, note)).to_have_attribute("data-pending", "false")
    await b.wait_for_function(
        "(id) => window.moodboard.page.handle.confirmed.item.get(id).version === 2", arg=note
    )
    await expect(b.get_by_test_id("note-edit")).to_have_value("Walnut shelves")  # not wiped
    await b.keyboard.press("Control+Enter")
    await settled(b)
    notice = b.locator('[data-testid="notice"][data-kind="conflict"]')
    await expect(notice).to_contain_text("Their version was kept")
    await expect(notice).to_contain_text("Walnut shelves")
    for page in (a, b):
        await expect(item(page, note).get_by_test_id("note-text")).to_have_text("Oak shelves")
    await expect(a.locator('[data-testid="notice"]')).to_have_count(0)


async def test_a_requested_generation_is_queued_on_both_boards(users: Users, rest: Rest) -> None:
    """A generation asked for in one page shows queued, then canceled, on both boards."""
    ann, ben, project_id, _ = await shared_board(users, rest)
    a, b = await open_board(ann, project_id), await open_board(ben, project_id)
    await a.get_by_test_id("generate-prompt").fill("A sunny kitchen with oak shelves")
    await a.get_by_test_id("generate-submit").click()
    await expect(a.get_by_test_id("generate-progress")).to_have_attribute("data-status", "queued")
    for page in (a, b):
        card = page.locator('[data-testid="item"][data-kind="generation"]')
        await expect(card).to_have_count(1)
        await expect(card.get_by_test_id("generation-progress")).to_have_attribute(
            "aria-valuenow", "0"
        )
        await expect(card).to_contain_text("A sunny kitchen with oak shelves")
    generations = await rest.call(ben, "GET", f"/api/projects/{project_id}/generations")
    assert [g["status"] for g in generations] == ["queued"]

    await a.get_by_test_id("generation-cancel").click()  # its events reach both boards
    for page in (a, b):
        card = page.locator('[data-testid="item"][data-kind="generation"]')
        await expect(card.get_by_test_id("generation-item")).to_have_attribute(
            "data-status", "canceled"
        )
    assert (await rest.call(ann, "GET", "/api/me"))["credits"] == 100  # refunded


async def test_resizes_and_deletes_show_on_the_other_board(users: Users, rest: Rest) -> None:
    """A resize in one page and a delete in the other reach both boards."""
    ann, ben, project_id, room_id = await shared_board(users, rest)
    note = await add_note(rest, ann, project_id, room_id)
    a, b = await open_board(ann, project_id), await open_board(ben, project_id)
    handle = item(a, note).get_by_test_id("item-resize")
    box = await handle.bounding_box()
    assert box is not None
    await a.mouse.move(box["x"] + 8, box["y"] + 8)
    await a.mouse.down()
    await a.mouse.move(box["x"] + 108, box["y"] + 58, steps=4)
    await a.mouse.up()
    await expect(item(b, note)).to_have_css("width", "280px")
    await expect(item(b, note)).to_have_css("height", "170px")

    await item(b, note).hover()
    await item(b, note).get_by_test_id("item-delete").click()
    await expect(item(a, note)).to_have_count(0)
    await expect(item(b, note)).to_have_count(0)
    assert await rest.call(ann, "GET", f"/api/projects/{project_id}/rooms/{room_id}/items") == []


async def test_reconnect_delays_are_exponential_with_full_jitter(users: Users) -> None:
    """The client's backoff: a uniform delay in [0, min(cap, base * 2^attempt)) (docs)."""
    page = (await users("Ann")).page
    await page.goto("/")
    bounds = await page.evaluate(
        """async () => {
          const { backoffDelay } = await import("/static/moodboard-client.js");
          return [...Array(8).keys()].map((n) => [
            backoffDelay(n, 500, 15000, () => 0),
            backoffDelay(n, 500, 15000, () => 0.5),
            backoffDelay(n, 500, 15000, () => 0.999999),
          ]);
        }"""
    )
    caps = [min(15000, 500 * 2**n) for n in range(8)]
    assert [low for low, _, _ in bounds] == [0] * 8
    assert [mid for _, mid, _ in bounds] == [cap // 2 for cap in caps]
    assert [high for _, _, high in bounds] == [cap - 1 for cap in caps]


async def test_duplicate_events_are_dropped_and_a_gap_makes_the_client_resume(
    users: Users, rest: Rest
) -> None:
    """Fed a seen event (ignored) and one past a gap (never applied: it resumes instead)."""
    ann, ben, project_id, room_id = await shared_board(users, rest)
    note = await add_note(rest, ann, project_id, room_id)
    a, b = await open_board(ann, project_id), await open_board(ben, project_id)
    await expect(item(a, note)).to_have_attribute("data-x", "100")
    inject = """([id, ahead]) => {
      const handle = window.moodboard.page.handle;
      handle._frame({type: "event", project_id: handle.id, seq: handle.seq + ahead,
        kind: "item.updated", entity: "item", id, version: 99, data: {x: 999},
        actor_id: null, op_id: null, at: "2026-01-01T00:00:00Z"});
      return handle.seq;
    }"""
    seq = await a.evaluate(inject, [note, 0])  # a replay of the last event: already applied
    await expect(item(a, note)).to_have_attribute("data-x", "100")
    first = await a.evaluate("window.moodboard.client.connectionId")
    assert await a.evaluate(inject, [note, 2]) == seq  # a gap: dropped, and the socket too
    await a.wait_for_function(  # a new connection, joined again
        "(first) => { const c = window.moodboard.client;"
        " return c.connectionId && c.connectionId !== first"
        " && window.moodboard.page.handle.state === 'live'; }",
        arg=first,
    )
    assert await a.evaluate("window.moodboard.page.handle.mode") == "replay"
    await drag(b, note, 50, 0)
    await expect(item(a, note)).to_have_attribute("data-x", "150")
    applied = await a.evaluate("window.moodboard.page.handle.applied.map(e => e.seq)")
    assert applied == list(range(applied[0], applied[0] + len(applied)))
