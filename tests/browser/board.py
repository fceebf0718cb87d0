"""Helpers of the browser tests: open a board, make a shared project, drag an item."""

from __future__ import annotations

from typing import Any

from tests.browser.conftest import Page, Rest, User, Users, expect


async def open_board(user: User, project_id: str) -> Page:
    """Open the project's page and wait until the socket is live and the board shown."""
    page = user.page
    await page.goto(f"/#/p/{project_id}")
    await expect(page.get_by_test_id("connection")).to_have_attribute("data-state", "live")
    await expect(page.get_by_test_id("board")).to_be_visible()
    return page


async def shared_board(users: Users, rest: Rest) -> tuple[User, User, str, str]:
    """Ann owns a project with one room; Ben is an editor of it. Neither page is open yet."""
    ann, ben = await users("Ann"), await users("Ben")
    project = await rest.call(ann, "POST", "/api/projects", {"name": "Flat"})
    await rest.call(
        ann,
        "POST",
        f"/api/projects/{project['id']}/members",
        {"email": ben.email, "role": "editor"},
    )
    room = await rest.call(
        ann,
        "POST",
        f"/api/projects/{project['id']}/rooms",
        {"name": "Kitchen", "room_type": "kitchen"},
    )
    return ann, ben, project["id"], room["id"]


async def add_note(rest: Rest, user: User, project_id: str, room_id: str, **fields: Any) -> str:
    body = {"kind": "note", "x": 100, "y": 100, "w": 180, "h": 120, "data": {"text": "hello"}}
    item = await rest.call(
        user, "POST", f"/api/projects/{project_id}/rooms/{room_id}/items", {**body, **fields}
    )
    return str(item["id"])


def item(page: Page, item_id: str) -> Any:
    return page.locator(f'[data-testid="item"][data-id="{item_id}"]')


async def drag(page: Page, item_id: str, dx: int, dy: int, *, release: bool = True) -> None:
    """Press on the item's middle and move it by (dx, dy) in a few steps."""
    box = await item(page, item_id).bounding_box()
    assert box is not None
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    await page.mouse.move(x, y)
    await page.mouse.down()
    await page.mouse.move(x + dx, y + dy, steps=5)
    if release:
        await page.mouse.up()


async def settled(page: Page) -> None:
    """Wait until the page's client has no unconfirmed edits.

    Predicates are written as functions: the page's Content-Security-Policy
    forbids eval, which Playwright uses for bare expression strings.
    """
    await page.wait_for_function("() => window.moodboard.page.handle.pendingCount === 0")
