"""Pictures from the disk, undo/redo and history, two people in real Chromium (issue 21)."""

from __future__ import annotations

import base64
import re
import uuid

import pytest

from tests.browser.board import add_note, drag, item, open_board, settled, shared_board
from tests.browser.conftest import Page, Rest, Users, expect
from tests.pictures import GIF, png

pytestmark = pytest.mark.e2e


async def _drop_or_paste(page: Page, how: str, name: str, data: bytes, mime: str) -> None:
    """A file dropped onto the board's middle, or pasted, as the browser would deliver it."""
    await page.evaluate(
        """([how, name, b64, mime]) => {
            const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], name, { type: mime }));
            if (how === "paste") {
                document.body.dispatchEvent(
                    new ClipboardEvent("paste", { clipboardData: transfer, bubbles: true }));
                return;
            }
            const board = document.getElementById("board-wrap");
            const box = board.getBoundingClientRect();
            const at = { clientX: box.left + 400, clientY: box.top + 300, bubbles: true,
                         cancelable: true, dataTransfer: transfer };
            board.dispatchEvent(new DragEvent("dragover", at));
            board.dispatchEvent(new DragEvent("drop", at));
        }""",
        [how, name, base64.b64encode(data).decode(), mime],
    )


async def _loaded_pictures(page: Page) -> int:
    """How many pictures on the board have really loaded (decoded, not a broken icon)."""
    count: int = await page.evaluate(
        """() => [...document.querySelectorAll('[data-testid="picture"]')]
            .filter((img) => img.complete && img.naturalWidth > 0).length"""
    )
    return count


async def test_pictures_from_the_disk_reach_both_boards(users: Users, rest: Rest) -> None:
    """Picker, drop and paste upload pictures both people see; wrong files and gone ones say so."""
    ann, ben, project_id, room_id = await shared_board(users, rest)
    page, other = await open_board(ann, project_id), await open_board(ben, project_id)

    await page.get_by_test_id("picture-input").set_input_files(
        [
            {"name": "oak.png", "mimeType": "image/png", "buffer": png(60, 30, (150, 100, 50))},
            {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"not a picture"},
        ]
    )
    await expect(page.locator('[data-testid="notice"][data-kind="error"]')).to_contain_text(
        "notes.txt"
    )
    await _drop_or_paste(page, "drop", "linen.gif", GIF, "image/gif")
    await _drop_or_paste(page, "paste", "clip.png", png(8, 8, (20, 90, 200)), "image/png")
    # A file that calls itself a PNG but is not one: the server reads the bytes and refuses.
    await _drop_or_paste(page, "paste", "fake.png", b"<script>alert(1)</script>", "image/png")
    await expect(page.locator('[data-testid="notice"][data-kind="error"]')).to_contain_text(
        "fake.png"
    )
    await settled(page)
    for board in (page, other):
        await expect(board.get_by_test_id("picture")).to_have_count(3)
        await board.wait_for_function(
            """() => [...document.querySelectorAll('[data-testid="picture"]')]
                .every((img) => img.complete && img.naturalWidth > 0)"""
        )
        assert await _loaded_pictures(board) == 3
    # The picker's PNG keeps its proportions (60x30 -> twice as wide as high).
    items = await rest.call(ann, "GET", f"/api/projects/{project_id}/rooms/{room_id}/items")
    by_name = {i["data"]["name"]: i for i in items}
    assert set(by_name) == {"oak.png", "linen.gif", "clip.png"}
    assert by_name["oak.png"]["w"] == 2 * by_name["oak.png"]["h"]
    dropped = by_name["linen.gif"]
    assert 300 <= dropped["x"] + dropped["w"] / 2 <= 500  # where it was dropped
    # A picture whose file is gone shows a placeholder, not a broken icon.
    await rest.call(
        ann,
        "POST",
        f"/api/projects/{project_id}/rooms/{room_id}/items",
        {"kind": "image", "x": 900, "y": 40, "data": {"resource_id": str(uuid.uuid4())}},
    )
    for board in (page, other):
        await expect(board.get_by_test_id("picture-missing")).to_have_count(1)
    # The only errors the browsers log are the refusals this test asked for (no favicon 404).
    errors = [line for line in ann.console + ben.console if line.startswith("error")]
    assert len(errors) == 3, errors
    assert sorted(e.split("status of ")[1][:3] for e in errors) == ["404", "404", "415"], errors


async def test_undo_redo_and_history_meet_the_other_persons_changes(
    users: Users, rest: Rest
) -> None:
    """Ctrl+Z / Ctrl+Shift+Z as new edits; never over Ben's change; delete undone; restore."""
    ann, ben, project_id, room_id = await shared_board(users, rest)
    note = await add_note(rest, ann, project_id, room_id)
    page, other = await open_board(ann, project_id), await open_board(ben, project_id)
    on_ben = item(other, note)

    # Ann moves the note, undoes and redoes it: Ben's board follows each step.
    await drag(page, note, 150, 60)
    await expect(on_ben).to_have_attribute("data-x", "250")
    await page.keyboard.press("Control+z")
    await expect(on_ben).to_have_attribute("data-x", "100")
    await page.keyboard.press("Control+Shift+z")
    await expect(on_ben).to_have_attribute("data-x", "250")
    await settled(page)

    # Ben moves it too: Ann's undo of her move would overwrite his, so it is not made.
    await drag(other, note, 0, 100)
    await expect(item(page, note)).to_have_attribute("data-y", "260")
    await page.keyboard.press("Control+z")
    await expect(page.locator('[data-testid="notice"][data-kind="undo"]')).to_contain_text(
        "Nothing to undo: someone changed its position"
    )
    await expect(on_ben).to_have_attribute("data-y", "260")

    # Ann edits the text, Ben moves the note: her undo takes back her text, keeps his move.
    await item(page, note).dblclick()
    await page.get_by_test_id("note-edit").fill("Ann's words")
    await page.get_by_test_id("note-edit").press("Control+Enter")
    await expect(on_ben.get_by_test_id("note-text")).to_have_text("Ann's words")
    await settled(page)
    await drag(other, note, 80, 0)
    await expect(item(page, note)).to_have_attribute("data-x", "330")
    await page.keyboard.press("Control+z")
    await expect(on_ben.get_by_test_id("note-text")).to_have_text("hello")
    await settled(page)
    assert await on_ben.get_attribute("data-x") == "330"

    # An undo that meets Ben's move on its way (Ann offline meanwhile): his move stands.
    await drag(page, note, 0, -60)
    await expect(on_ben).to_have_attribute("data-y", "200")
    await settled(page)
    await ann.context.set_offline(True)
    await expect(page.get_by_test_id("connection")).to_have_attribute("data-state", "offline")
    await page.keyboard.press("Control+z")
    # made locally, queued: y back to 260
    await expect(item(page, note)).to_have_attribute("data-y", "260")
    await drag(other, note, 0, 100)
    await expect(on_ben).to_have_attribute("data-y", "300")
    await ann.context.set_offline(False)
    await expect(page.locator('[data-testid="notice"][data-kind="conflict"]')).to_contain_text(
        "Your undo was not applied"
    )
    await expect(item(page, note)).to_have_attribute("data-y", "300")
    await settled(page)
    assert await on_ben.get_attribute("data-y") == "300"

    # Deleting can be undone: the note comes back under its own id, for both.
    await item(page, note).hover()
    await item(page, note).get_by_test_id("item-delete").click()
    await expect(on_ben).to_have_count(0)
    await page.get_by_test_id("notice-action").click()  # the notice's "Undo"
    await expect(on_ben.get_by_test_id("note-text")).to_have_text("hello")
    await expect(on_ben).to_have_attribute("data-x", "330")

    # The history says who did what; restoring Ann's text edit is one more edit Ben sees.
    await settled(page)
    await page.get_by_test_id("history-toggle").click()
    entries = page.get_by_test_id("history-entry")
    await expect(entries.first).to_contain_text("You added a note")
    await expect(page.get_by_test_id("history")).to_contain_text("Ben moved a note")
    await expect(page.get_by_test_id("history")).to_contain_text("You deleted a note")
    edited = entries.filter(has_text="You edited a note").last  # the oldest: her words
    await edited.get_by_test_id("history-restore").click()
    await expect(on_ben.get_by_test_id("note-text")).to_have_text("Ann's words")
    await expect(entries.first).to_contain_text("You edited a note")  # live, newest first
    await page.keyboard.press("Control+z")  # a restore is undone like any edit
    await expect(on_ben.get_by_test_id("note-text")).to_have_text("hello")
    errors = [line for line in ann.console + ben.console if line.startswith("error")]
    assert not errors, errors  # no 404 favicon, no 401 noise, nothing


async def test_a_drag_glides_on_the_other_board_and_a_viewer_is_told_why(
    users: Users, rest: Rest
) -> None:
    """Ben sees Ann's note glide while she drags (no event until the drop); Cy only looks."""
    ann, ben, project_id, room_id = await shared_board(users, rest)
    cy = await users("Cy")
    await rest.call(
        ann, "POST", f"/api/projects/{project_id}/members", {"email": cy.email, "role": "viewer"}
    )
    note = await add_note(rest, ann, project_id, room_id)
    page, other = await open_board(ann, project_id), await open_board(ben, project_id)
    on_ben = item(other, note)
    seq = await other.evaluate("() => window.moodboard.page.handle.seq")

    await drag(page, note, 200, 40, release=False)
    await other.wait_for_function(
        """(id) => {
            const node = document.querySelector(`[data-testid="item"][data-id="${id}"]`);
            return node.style.left === "300px" && node.style.top === "140px";
        }""",
        arg=note,
    )
    await expect(on_ben).to_have_class(re.compile(r"\bheld\b"))
    assert await on_ben.get_attribute("data-x") == "100"  # still where the log says
    assert await other.evaluate("() => window.moodboard.page.handle.seq") == seq  # no event yet
    await page.mouse.up()
    await expect(on_ben).to_have_attribute("data-x", "300")
    await expect(on_ben).not_to_have_class(re.compile(r"\b(held|gliding)\b"))
    assert await other.evaluate("() => window.moodboard.page.handle.seq") == seq + 1

    # Cy is a viewer: the page says so, offers nothing he cannot do, and a drag says why.
    watch = await open_board(cy, project_id)
    await expect(watch.get_by_test_id("view-only")).to_be_visible()
    for control in ("add-note", "add-image", "undo", "generate-form", "room-form"):
        await expect(watch.get_by_test_id(control)).to_be_hidden()
    await drag(watch, note, 100, 100)
    await expect(watch.get_by_test_id("notice")).to_contain_text("View only")
    await expect(item(watch, note)).to_have_attribute("data-x", "300")
    await expect(page.get_by_test_id("view-only")).to_be_hidden()
    errors = [line for u in (ann, ben, cy) for line in u.console if line.startswith("error")]
    assert not errors, errors
