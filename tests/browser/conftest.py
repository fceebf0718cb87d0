"""Browser tests: the moodboard page in Debian's Chromium, driven by Playwright (async API).

Playwright's async API runs on the session's asyncio loop (the one every other
fixture uses), so the server process, httpx set-up calls and the browsers
share one loop and no thread juggling is needed. Chromium is the system one
(``apt-get install chromium``); ``playwright install`` is never used. Without
it the tests skip with a loud reason, except under CI=true, where they fail.

A failed test leaves a screenshot and the console log of every page it
opened in ``test-artifacts/`` at the repository root.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import IN_CI
from tests.servers import ServerProcess, running_server, server_env
from tests.wsclient import PASSWORD

CHROMIUM = Path(os.environ.get("MOODBOARD_TEST_CHROMIUM", "/usr/bin/chromium"))
# What Debian's Chromium needs in a container.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
TIMEOUT_MS = 10_000
REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()

pytestmark = pytest.mark.e2e

try:
    from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect
except ImportError:  # pragma: no cover - the test group installs it
    async_playwright = None  # type: ignore[assignment]


if async_playwright is not None:
    expect.set_options(timeout=TIMEOUT_MS)  # not 5 s: two cores run many things in CI


def _unavailable() -> str | None:
    if async_playwright is None:
        return "playwright is not installed (pip install the test group)"
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (apt-get install chromium)"
    return None


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Keep each phase's report on the test, so fixtures can tell a failure at teardown."""
    report: pytest.TestReport = yield
    item.stash.setdefault(REPORTS, {})[report.when] = report
    return report


@pytest.fixture(scope="package")
async def browser() -> AsyncIterator[Browser]:
    """One Chromium for the browser tests; each test opens its own contexts (users)."""
    problem = _unavailable()
    if problem is not None:
        if IN_CI:
            pytest.fail(f"CI=true but browser tests cannot run: {problem}")
        pytest.skip(problem)
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture(scope="module")
async def server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ServerProcess]:
    """A real server process; pages load from its origin and open /ws on it."""
    tmp = tmp_path_factory.mktemp("browser")
    env = server_env(f"sqlite:///{tmp / 'm.sqlite3'}", MOODBOARD_INPROCESS_WORKER="false")
    async with running_server(env, tmp) as process:
        yield process


@dataclass
class User:
    """A browser context signed in as one user, and that user's first page."""

    name: str
    email: str
    id: str
    token: str
    context: BrowserContext
    page: Page
    console: list[str] = field(default_factory=list)


Users = Callable[..., Awaitable[User]]


@pytest.fixture
async def users(
    browser: Browser, server: ServerProcess, request: pytest.FixtureRequest
) -> AsyncIterator[Users]:
    """Make browser users: signed up (cookie set by the real register call) unless told not."""
    made: list[User] = []

    async def make(name: str, *, signed_up: bool = True) -> User:
        context = await browser.new_context(
            base_url=server.url, viewport={"width": 1280, "height": 860}
        )
        context.set_default_timeout(TIMEOUT_MS)
        email = f"{name.lower()}-{uuid.uuid4().hex[:8]}@example.com"
        user_id = token = ""
        if signed_up:
            response = await context.request.post(
                "/api/auth/register", data={"email": email, "password": PASSWORD, "name": name}
            )
            assert response.status == 201, await response.text()
            body = await response.json()
            user_id, token = body["user"]["id"], body["token"]
        page = await context.new_page()
        user = User(name, email, user_id, token, context, page)
        page.on("console", lambda m: user.console.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: user.console.append(f"pageerror: {e}"))
        made.append(user)
        return user

    yield make
    reports = request.node.stash.get(REPORTS, {})
    if any(r.failed for r in reports.values()):
        ARTIFACTS.mkdir(exist_ok=True)
        stem = re.sub(r"[^\w.-]+", "_", request.node.nodeid.split("::")[-1])
        for user in made:
            for n, page in enumerate(user.context.pages):
                try:
                    await page.screenshot(path=ARTIFACTS / f"{stem}-{user.name}-{n}.png")
                except Exception as exc:  # the page may have crashed: keep the log anyway
                    user.console.append(f"screenshot failed: {exc!r}")
            (ARTIFACTS / f"{stem}-{user.name}.log").write_text("\n".join(user.console))
    for user in made:
        await user.context.close()
    if not any(r.failed for r in reports.values()):
        # A page must never throw, nor break its own Content-Security-Policy.
        broken = [
            f"{user.name}: {line}"
            for user in made
            for line in user.console
            if line.startswith("pageerror") or "Content Security Policy" in line
        ]
        assert not broken, "\n".join(broken)


class Rest:
    """Set-up calls over REST with a user's token (the page is what the tests test)."""

    def __init__(self, server: ServerProcess) -> None:
        self.base = server.url

    async def call(self, user: User, method: str, path: str, json: Any = None) -> Any:
        async with httpx.AsyncClient(base_url=self.base, timeout=10.0) as client:
            response = await client.request(
                method, path, json=json, headers={"Authorization": f"Bearer {user.token}"}
            )
        assert response.is_success, f"{method} {path}: {response.status_code} {response.text}"
        return response.json() if response.content else None


@pytest.fixture
def rest(server: ServerProcess) -> Rest:
    return Rest(server)


__all__ = ["TIMEOUT_MS", "Page", "Rest", "User", "Users", "expect"]
