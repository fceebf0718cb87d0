"""The API docs page renders in real Chromium from this server's files alone."""

from __future__ import annotations

import pytest
from playwright.async_api import Request

from tests.browser.conftest import Users, expect
from tests.servers import ServerProcess

pytestmark = pytest.mark.e2e


async def test_the_api_docs_page_renders_without_other_origins_or_csp_violations(
    users: Users, server: ServerProcess
) -> None:
    """swagger-ui draws the operations; no request leaves this origin; the CSP holds."""
    reader = await users("Reader", signed_up=False)
    elsewhere: list[str] = []

    def note(request: Request) -> None:
        if not request.url.startswith((server.url, "data:")):
            elsewhere.append(request.url)

    reader.page.on("request", note)
    await reader.page.goto("/schema/swagger")
    await expect(reader.page.locator(".swagger-ui .info .title")).to_contain_text(
        "Moodboard Realtime"
    )
    operation = reader.page.locator(".opblock").first
    await expect(operation).to_be_visible()
    await operation.locator(".opblock-summary").click()  # expanded: its parameters and responses
    await expect(operation.locator(".responses-wrapper")).to_be_visible()
    assert not elsewhere, elsewhere  # the users fixture fails on any CSP violation
