"""The page rides out a server restart: reconnects, resumes by itself (docs/protocol.md §3.5)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.browser.board import add_note, drag, item, open_board, settled
from tests.browser.conftest import Rest, Users, expect
from tests.servers import ServerProcess, running_server, server_env

pytestmark = pytest.mark.e2e
RECONNECT_MS = 25_000  # backoff with full jitter: attempts up to 8 s apart by the time it is up


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("restart")


def env_for(workdir: Path) -> dict[str, str]:
    return server_env(f"sqlite:///{workdir / 'm.sqlite3'}", MOODBOARD_INPROCESS_WORKER="false")


@pytest.fixture(scope="module")
async def server(workdir: Path) -> AsyncIterator[ServerProcess]:
    """This module's own server process, which its test stops and starts again."""
    async with running_server(env_for(workdir), workdir) as process:
        yield process


async def test_edits_made_while_the_server_restarts_land_once(
    users: Users, rest: Rest, server: ServerProcess, workdir: Path
) -> None:
    """Server stops (1012): the page says so, keeps an edit, sends it once the server is back."""
    ann = await users("Ann")
    project = await rest.call(ann, "POST", "/api/projects", {"name": "Flat"})
    room = await rest.call(
        ann, "POST", f"/api/projects/{project['id']}/rooms", {"name": "Hall", "room_type": "other"}
    )
    note = await add_note(rest, ann, project["id"], room["id"])
    page = await open_board(ann, project["id"])
    await expect(item(page, note)).to_be_visible()

    assert await server.stop() == 0
    connection = page.get_by_test_id("connection")
    await expect(connection).to_have_attribute("data-state", "reconnecting")
    await drag(page, note, 90, 30)
    await expect(connection).to_contain_text("1 unsent")

    async with running_server(env_for(workdir), workdir, port=server.port):
        await expect(connection).to_have_attribute("data-state", "live", timeout=RECONNECT_MS)
        await settled(page)
        assert await page.evaluate("window.moodboard.page.handle.mode") == "replay"
        items = await rest.call(
            ann, "GET", f"/api/projects/{project['id']}/rooms/{room['id']}/items"
        )
        assert [(i["x"], i["y"], i["version"]) for i in items] == [(190, 130, 2)]
        kinds = await page.evaluate("window.moodboard.page.handle.applied.map(e => e.kind)")
        assert kinds.count("item.updated") == 1
