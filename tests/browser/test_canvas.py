"""Zoom, pan, selection and notes on the board, two people in Chromium (issue 21 items 3, 7)."""

from __future__ import annotations

import re

import pytest

from tests.browser.board import add_note, drag, item, open_board, settled, shared_board
from tests.browser.conftest import Page, Rest, Users, expect

pytestmark = pytest.mark.e2e


async def _centre(page: Page, item_id: str) -> tuple[float, float]:
    box = await item(page, item_id).bounding_box()
    assert box is not None
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


async def _z(page: Page, item_id: str) -> int:
    return int(
        await page.evaluate("(id) => window.moodboard.page.handle.get('item', id).z", item_id)
    )


async def test_zoomed_drags_land_in_board_coordinates_and_a_selection_moves_as_one(
    users: Users, rest: Rest
) -> None:
    """Ann zooms and pans; what she drags lands where she dropped it on Ben's board too."""
    ann, ben, project_id, room_id = await shared_board(users, rest)
    one = await add_note(rest, ann, project_id, room_id, x=100, y=100, z=1)
    two = await add_note(rest, ann, project_id, room_id, x=400, y=100, z=2)
    page, other = await open_board(ann, project_id), await open_board(ben, project_id)
    board = page.get_by_test_id("board")

    # Ctrl+wheel zooms around the pointer: the note under it stays under it.
    x, y = await _centre(page, one)
    await page.mouse.move(x, y)
    await page.keyboard.down("Control")
    await page.mouse.wheel(0, -200)
    await page.keyboard.up("Control")
    await expect(board).not_to_have_attribute("data-scale", "1")
    nx, ny = await _centre(page, one)
    assert abs(nx - x) < 2, (x, nx)
    assert abs(ny - y) < 2, (y, ny)
    # The wheel alone pans; the buttons and keys zoom; 100 % is one click away.
    await page.mouse.wheel(0, 100)
    assert abs((await _centre(page, one))[1] - (ny - 100)) < 2
    await page.get_by_test_id("zoom-level").click()
    await expect(board).to_have_attribute("data-scale", "1")
    # Space and a drag pan the view, even when the drag starts on an item.
    start = await _centre(page, one)
    await page.keyboard.down("Space")
    await drag(page, one, 40, 0)
    await page.keyboard.up("Space")
    assert abs((await _centre(page, one))[0] - (start[0] + 40)) < 2
    await expect(item(page, one)).to_have_attribute("data-x", "100")
    await page.get_by_test_id("zoom-in").click()
    await expect(board).to_have_attribute("data-scale", "1.25")
    await expect(page.get_by_test_id("zoom-level")).to_have_text("125%")

    # At 125 %, 125 screen pixels are 100 board pixels; the dragged note comes to the front.
    await drag(page, one, 125, 50)
    await expect(item(other, one)).to_have_attribute("data-x", "200")
    await expect(item(other, one)).to_have_attribute("data-y", "140")
    await settled(page)
    assert await _z(other, one) > await _z(other, two)

    # Shift-click selects both; dragging one moves both, and one Ctrl+Z puts both back.
    await item(page, two).click(modifiers=["Shift"])
    await expect(item(page, one)).to_have_class(re.compile(r"\bselected\b"))
    await expect(item(page, two)).to_have_class(re.compile(r"\bselected\b"))
    await drag(page, two, 0, 125)
    await expect(item(other, one)).to_have_attribute("data-y", "240")
    await expect(item(other, two)).to_have_attribute("data-y", "200")
    await page.keyboard.press("Control+z")
    await expect(item(other, one)).to_have_attribute("data-y", "140")
    await expect(item(other, two)).to_have_attribute("data-y", "100")

    # "0" fits the room to the screen; a marquee over the empty board selects both; the
    # arrows nudge (Shift: by 10), Delete deletes both, Ctrl+Z brings both back.
    await page.keyboard.press("0")
    wrap = await page.locator("#board-wrap").bounding_box()
    assert wrap is not None
    corner = (wrap["x"] + 20, wrap["y"] + 100)  # clear of the sticky top bar
    await page.mouse.click(*corner)
    await expect(page.locator(".item.selected")).to_have_count(0)
    await page.mouse.move(*corner)
    await page.mouse.down()
    await page.mouse.move(wrap["x"] + wrap["width"] - 90, wrap["y"] + wrap["height"] - 60, steps=5)
    await page.mouse.up()
    await expect(page.locator(".item.selected")).to_have_count(2)
    await page.keyboard.press("Shift+ArrowRight")
    await expect(item(other, one)).to_have_attribute("data-x", "210")
    await expect(item(other, two)).to_have_attribute("data-x", "410")
    await page.keyboard.press("Delete")
    await expect(other.get_by_test_id("item")).to_have_count(0)
    await page.keyboard.press("Control+z")
    await expect(other.get_by_test_id("item")).to_have_count(2)
    await expect(item(other, one)).to_have_attribute("data-x", "210")
    errors = [line for u in (ann, ben) for line in u.console if line.startswith("error")]
    assert not errors, errors


async def test_a_note_says_who_edits_it_grows_with_its_text_and_has_the_colour_chosen(
    users: Users, rest: Rest
) -> None:
    """Ann makes a pink note and writes in it; Ben sees "Ann is editing" until she is done."""
    ann, ben, project_id, _room_id = await shared_board(users, rest)
    page, other = await open_board(ann, project_id), await open_board(ben, project_id)

    await page.locator('[data-testid="note-colour"][title="Pink note"]').click()
    note = other.get_by_test_id("item")
    await expect(note).to_have_count(1)
    note_id = await note.get_attribute("data-id")
    assert note_id
    await expect(note.locator(".note")).to_have_css("background-color", "rgb(255, 217, 226)")
    await settled(page)
    height = (await note.bounding_box() or {"height": 0})["height"]

    await item(page, note_id).hover()
    await item(page, note_id).get_by_test_id("note-edit-button").click()
    editor = page.get_by_test_id("note-edit")
    await expect(editor).to_be_focused()
    await expect(note.get_by_test_id("note-editing")).to_have_text("Ann is editing…")
    await editor.fill("")
    await editor.press_sequentially("Oak\nwalnut\nlinen\nwool\nclay\nbrass\ncane\nslate\n")
    await editor.press("Control+Enter")
    await expect(note.get_by_test_id("note-editing")).to_have_count(0)
    await expect(note.get_by_test_id("note-text")).to_contain_text("brass")
    await other.wait_for_function(
        "([id, h]) => window.moodboard.page.handle.get('item', id).h > h",
        arg=[note_id, height + 40],
    )
    errors = [line for u in (ann, ben) for line in u.console if line.startswith("error")]
    assert not errors, errors


async def test_a_notes_colour_changed_later_shows_live_on_the_other_board(
    users: Users, rest: Rest
) -> None:
    """Ann recolours a yellow note from its palette; Ben sees it turn blue, and back on undo."""
    ann, ben, project_id, room_id = await shared_board(users, rest)
    note_id = await add_note(rest, ann, project_id, room_id)
    page, other = await open_board(ann, project_id), await open_board(ben, project_id)
    theirs = item(other, note_id).locator(".note")
    await expect(theirs).to_have_css("background-color", "rgb(255, 248, 197)")

    mine = item(page, note_id)
    await mine.hover()
    await mine.get_by_test_id("note-colour-button").click()
    palette = mine.get_by_test_id("note-palette")
    await expect(palette.locator('[aria-pressed="true"]')).to_have_attribute("title", "Yellow")
    await palette.get_by_role("button", name="Blue").click()
    await expect(palette).to_have_count(0)
    await expect(theirs).to_have_attribute("data-colour", "#d6ecff")
    await expect(theirs).to_have_css("background-color", "rgb(214, 236, 255)")
    await expect(item(other, note_id).get_by_test_id("note-text")).to_have_text("hello")
    await settled(page)
    version = await other.evaluate(
        "(id) => window.moodboard.page.handle.get('item', id).version", note_id
    )
    assert version == 2  # one versioned edit of the note

    # It is one of Ann's steps like any other: Ctrl+Z sets the colour back on both boards.
    await page.keyboard.press("Control+z")
    await expect(theirs).to_have_attribute("data-colour", "#fff8c5")
    errors = [line for u in (ann, ben) for line in u.console if line.startswith("error")]
    assert not errors, errors
