"""Screenshots of the page for the README and docs/browser-client.md, made in Debian's Chromium.

Run it again when the page changes (from the repository root, after ``python3 dev.py lint``
has made ``.venv``)::

    .venv/bin/python scripts/screenshots.py

It starts a throwaway server (SQLite in a temporary directory, the built-in worker slowed
down so a generation can be caught half way), signs up Ann and Ben, fills a board over REST,
opens it in two browser contexts and writes small PNGs to docs/images/:

- ``board-two-people.png``: Ann's board, Ben's cursor on it, a generation in progress;
- ``invitation.png``: the page an invitation link opens before the sign-up.

Needs Playwright (the test group) and ``/usr/bin/chromium`` (``apt-get install chromium``);
``playwright install`` is never used. Set ``MOODBOARD_SCREENSHOT_CHROMIUM`` for another binary.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import Page, async_playwright, expect

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.pictures import png  # noqa: E402
from tests.servers import running_server, server_env  # noqa: E402
from tests.wsclient import PASSWORD  # noqa: E402

IMAGES = ROOT / "docs" / "images"
CHROMIUM = Path(os.environ.get("MOODBOARD_SCREENSHOT_CHROMIUM", "/usr/bin/chromium"))
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
VIEWPORT = {"width": 1200, "height": 760}
MAX_BYTES = 200_000  # images that stay in git must stay small


class Person:
    def __init__(self, name: str, body: dict[str, Any]) -> None:
        self.name = name
        self.email = body["user"]["email"]
        self.auth = {"Authorization": f"Bearer {body['token']}"}


async def _sign_up(http: httpx.AsyncClient, name: str) -> Person:
    email = f"{name.lower()}@studio.example"
    response = await http.post(
        "/api/auth/register", json={"email": email, "password": PASSWORD, "name": name}
    )
    response.raise_for_status()
    return Person(name, response.json())


async def _call(http: httpx.AsyncClient, who: Person, method: str, path: str, **kw: Any) -> Any:
    response = await http.request(method, path, headers={**who.auth, **kw.pop("headers", {})}, **kw)
    response.raise_for_status()
    return response.json() if response.content else None


async def _board(http: httpx.AsyncClient, ann: Person, ben: Person) -> str:
    """Harbour Loft: a kitchen board with notes, swatches and a picture; Ben is an editor."""
    project = await _call(http, ann, "POST", "/api/projects", json={"name": "Harbour Loft"})
    pid = project["id"]
    await _call(
        http,
        ann,
        "POST",
        f"/api/projects/{pid}/members",
        json={"email": ben.email, "role": "editor"},
    )
    rooms = {}
    for name, kind in (
        ("Kitchen", "kitchen"),
        ("Living room", "living_room"),
        ("Bedroom", "bedroom"),
    ):
        room = await _call(
            http, ann, "POST", f"/api/projects/{pid}/rooms", json={"name": name, "room_type": kind}
        )
        rooms[name] = room["id"]
    kitchen = rooms["Kitchen"]
    picture = await _call(
        http,
        ann,
        "POST",
        f"/api/projects/{pid}/resources",
        content=png(240, 160, (176, 137, 104)),
        headers={"Content-Type": "image/png"},
    )
    items: list[dict[str, Any]] = [
        {"kind": "note", "x": 40, "y": 40, "w": 220, "h": 120,
         "data": {"text": "Warm oak, matte brass, nothing glossy."}},
        {"kind": "note", "x": 300, "y": 40, "w": 200, "h": 120,
         "data": {"text": "Open shelves left of the window?"}},
        {"kind": "color", "x": 40, "y": 200, "w": 110, "h": 110,
         "data": {"color": "#b08968", "label": "Oak"}},
        {"kind": "color", "x": 170, "y": 200, "w": 110, "h": 110,
         "data": {"color": "#dde5b6", "label": "Sage"}},
        {"kind": "color", "x": 300, "y": 200, "w": 110, "h": 110,
         "data": {"color": "#283618", "label": "Forest"}},
        {"kind": "image", "x": 40, "y": 340, "w": 240, "h": 160,
         "data": {"resource_id": picture["id"]}},
    ]  # fmt: skip
    for body in items:
        await _call(http, ann, "POST", f"/api/projects/{pid}/rooms/{kitchen}/items", json=body)
    return str(pid)


async def _save(page: Page, name: str) -> None:
    path = IMAGES / name
    await page.screenshot(path=path)
    size = (await asyncio.to_thread(path.stat)).st_size
    if size > MAX_BYTES:
        raise SystemExit(f"{path} is {size} bytes, over {MAX_BYTES}: make the viewport smaller")
    print(f"wrote {path.relative_to(ROOT)} ({size // 1024} KiB)")


async def main() -> None:
    with tempfile.TemporaryDirectory(prefix="moodboard-shots-") as tmp:
        env = server_env(
            f"sqlite:///{tmp}/m.sqlite3",
            MOODBOARD_INPROCESS_WORKER="true",
            MOODBOARD_WORKER_POLL_MS="50",
            MOODBOARD_WORKER_STEP_DELAY_MS="2500",  # slow enough to catch it half way
        )
        async with running_server(env, Path(tmp)) as server:
            async with httpx.AsyncClient(base_url=server.url, timeout=10.0) as http:
                ann, ben = await _sign_up(http, "Ann"), await _sign_up(http, "Ben")
                pid = await _board(http, ann, ben)
                invitation = await _call(
                    http,
                    ann,
                    "POST",
                    f"/api/projects/{pid}/invitations",
                    json={"email": "cleo@studio.example", "role": "editor"},
                )
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
                pages = {}
                for who in (ann, ben):
                    context = await browser.new_context(base_url=server.url, viewport=VIEWPORT)
                    page = await context.new_page()
                    await page.goto("/")
                    form = page.get_by_test_id("login-form")
                    await form.get_by_label("E-mail").fill(who.email)
                    await form.get_by_label("Password").fill(PASSWORD)
                    await form.get_by_role("button", name="Log in").click()
                    await page.goto(f"/#/p/{pid}")
                    await expect(page.get_by_test_id("connection")).to_have_attribute(
                        "data-state", "live"
                    )
                    await page.get_by_test_id("room-tab").filter(has_text="Kitchen").click()
                    await expect(page.get_by_test_id("item")).to_have_count(6)
                    pages[who.name] = page
                a, b = pages["Ann"], pages["Ben"]
                # Ben points at the swatches; Ann asks for a picture.
                board = await b.get_by_test_id("board").bounding_box()
                assert board is not None
                await b.mouse.move(board["x"] + 380, board["y"] + 300, steps=4)
                await a.get_by_test_id("generate-prompt").fill("A warm oak kitchen, brass handles")
                await a.get_by_test_id("generate-submit").click()
                await expect(a.get_by_test_id("cursor")).to_have_count(1)
                progress = a.get_by_test_id("generate-progress")
                await expect(progress).to_have_attribute("data-status", "running", timeout=20_000)
                await a.wait_for_function(
                    """() => Number(document.querySelector('[data-testid="generate-progress"]')
                        ?.getAttribute("aria-valuenow")) > 0""",
                    timeout=30_000,
                )
                await a.wait_for_function(
                    """() => [...document.querySelectorAll('[data-testid="picture"]')]
                        .every((img) => img.complete && img.naturalWidth > 0)"""
                )
                await _save(a, "board-two-people.png")

                guest = await browser.new_context(
                    base_url=server.url, viewport={"width": 760, "height": 560}
                )
                page = await guest.new_page()
                await page.goto(f"/#/invite/{invitation['token']}")
                await expect(page.get_by_test_id("invitation-landing")).to_have_attribute(
                    "data-state", "live"
                )
                await _save(page, "invitation.png")
                await browser.close()


if __name__ == "__main__":
    if not CHROMIUM.exists():
        raise SystemExit(f"{CHROMIUM} is missing: apt-get install chromium")
    IMAGES.mkdir(parents=True, exist_ok=True)
    asyncio.run(main())
