"""A generation asked for in one browser, watched live in another, done by the built-in worker."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.browser.board import open_board, shared_board
from tests.browser.conftest import Rest, Users, expect
from tests.servers import ServerProcess, running_server, server_env

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
async def server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ServerProcess]:
    """Embedded mode as a newcomer runs it: the built-in worker completes generations."""
    tmp = tmp_path_factory.mktemp("browser-generation")
    env = server_env(
        f"sqlite:///{tmp / 'm.sqlite3'}",
        MOODBOARD_INPROCESS_WORKER="true",
        MOODBOARD_WORKER_POLL_MS="50",
        MOODBOARD_WORKER_STEP_DELAY_MS="400",  # stages long enough to watch the bar move
    )
    async with running_server(env, tmp) as process:
        yield process


async def test_a_generation_shows_progress_and_its_picture_on_both_boards(
    users: Users, rest: Rest
) -> None:
    """Requested in page A: both boards show it running, then the picture; credits are spent."""
    ann, ben, project_id, _ = await shared_board(users, rest)
    a, b = await open_board(ann, project_id), await open_board(ben, project_id)
    await a.get_by_test_id("generate-prompt").fill("A sunny kitchen with oak shelves")
    await a.get_by_test_id("generate-submit").click()

    for page in (a, b):
        card = page.locator('[data-testid="item"][data-kind="generation"]')
        await expect(card).to_have_count(1)
        await expect(card.get_by_test_id("generation-item")).to_have_attribute(
            "data-status", "running"
        )
    for page in (a, b):
        card = page.locator('[data-testid="item"][data-kind="generation"]')
        await expect(card.get_by_test_id("generation-item")).to_have_attribute(
            "data-status", "succeeded"
        )
        image = card.get_by_test_id("generated-image")
        await expect(image).to_be_visible()
        # The picture really loaded from the server (with the viewer's own session).
        await page.wait_for_function(
            "(img) => img.complete && img.naturalWidth > 0", arg=await image.element_handle()
        )
    await expect(a.get_by_test_id("generate-result")).to_be_visible()

    generations = await rest.call(ben, "GET", f"/api/projects/{project_id}/generations")
    assert [(g["status"], g["progress"]) for g in generations] == [("succeeded", 100)]
    assert generations[0]["result"]["url"]
    me = await rest.call(ann, "GET", "/api/me")
    assert me["credits"] == 100 - generations[0]["cost"]
