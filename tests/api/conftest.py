"""Fixtures for REST tests: the app on each engine, and helpers to make users and projects."""

from __future__ import annotations

import asyncio
import atexit
import dataclasses
import hashlib
import itertools
import shutil
import tempfile
import uuid
from collections import deque
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from litestar import Litestar

from server.access.users import create_or_promote_admin
from server.app import create_app
from server.context import AppContext
from server.events.log import EventRecord
from server.events.notify import Notifier
from server.settings import load_settings
from server.types import ProjectId, UserId

SECRET = "api-test-" + hashlib.sha256(b"tests/api").hexdigest()
PASSWORD = "correct horse battery"
_counter = itertools.count()


@dataclass
class Account:
    """A registered user of a test: their id, e-mail and bearer token."""

    id: str
    email: str
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


class Api:
    """An in-process client of the app plus shortcuts for test set-up."""

    def __init__(self, app: Litestar, client: httpx.AsyncClient) -> None:
        self.app = app
        self.client = client

    @property
    def ctx(self) -> AppContext:
        ctx: AppContext = self.app.state.ctx
        return ctx

    async def register(self, name: str = "user", **extra: str) -> Account:
        email = f"{name}-{next(_counter)}@example.com"
        response = await self.client.post(
            "/api/auth/register", json={"email": email, "password": PASSWORD, "name": name}
        )
        assert response.status_code == 201, response.text
        self.client.cookies.clear()  # tests choose bearer or cookie explicitly
        body = response.json()
        return Account(id=body["user"]["id"], email=email, token=body["token"])

    async def admin(self) -> Account:
        account = await self.register("admin")
        await create_or_promote_admin(
            self.ctx.engine, email=account.email, password=PASSWORD, signup_credits=0
        )
        return account

    async def project(self, owner: Account, name: str = "Flat") -> dict[str, Any]:
        response = await self.client.post("/api/projects", json={"name": name}, headers=owner.auth)
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    async def add_member(self, owner: Account, project_id: str, who: Account, role: str) -> None:
        response = await self.client.post(
            f"/api/projects/{project_id}/members",
            json={"email": who.email, "role": role},
            headers=owner.auth,
        )
        assert response.status_code == 201, response.text


_STORAGE = tempfile.mkdtemp(prefix="moodboard-files-")
atexit.register(shutil.rmtree, _STORAGE, ignore_errors=True)


def app_for(database_url: str, **env: str) -> Any:
    """The app on ``database_url``; no in-process worker unless ``env`` turns it on."""
    base = {
        "DATABASE_URL": database_url,
        "MOODBOARD_SECRET_KEY": SECRET,
        "MOODBOARD_INPROCESS_WORKER": "0",
        "MOODBOARD_STORAGE_DIR": _STORAGE,
        # The origin of serving()'s client: the server's own origin is configured, not Host.
        "MOODBOARD_PUBLIC_URL": "http://testserver.local",
    }
    return create_app(load_settings({**base, **env}))


@asynccontextmanager
async def serving(
    app: Litestar, base_url: str = "http://testserver.local"
) -> AsyncIterator[httpx.AsyncClient]:
    """Run ``app`` (lifespan included) in the test's own event loop, with a client for it.

    Unlike litestar's AsyncTestClient, which runs the app in a thread with its own
    loop, this lets a test query the tables (bound to the app's engine) directly.
    """
    started, stop = asyncio.Event(), asyncio.Event()

    async def lifespan() -> None:
        # Entered and left in this one task: the lifespan's cancel scopes need that,
        # and pytest may set a fixture up and tear it down in different tasks.
        async with app.lifespan():
            started.set()
            await stop.wait()

    task = asyncio.create_task(lifespan())
    waiter = asyncio.create_task(started.wait())
    await asyncio.wait({task, waiter}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
    if not started.is_set():
        waiter.cancel()
        task.result() if task.done() else task.cancel()  # startup failed: raise its error
        raise RuntimeError("the app did not start within 30 s")
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
            yield client
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


class RecordingNotifier:
    """Forwards to the app's real notifier and remembers what it was told (bounded)."""

    def __init__(self, inner: Notifier) -> None:
        self.inner = inner
        self.revoked: deque[uuid.UUID] = deque(maxlen=1000)
        self.access: deque[tuple[ProjectId, tuple[UserId, ...] | None]] = deque(maxlen=1000)
        self.events: deque[EventRecord] = deque(maxlen=1000)

    async def sessions_revoked(self, session_ids: Sequence[uuid.UUID]) -> None:
        self.revoked.extend(session_ids)
        await self.inner.sessions_revoked(session_ids)

    async def access_changed(
        self, project_id: ProjectId, user_ids: Sequence[UserId] | None
    ) -> None:
        self.access.append((project_id, None if user_ids is None else tuple(user_ids)))
        await self.inner.access_changed(project_id, user_ids)

    async def events_committed(self, events: Sequence[EventRecord]) -> None:
        self.events.extend(events)
        await self.inner.events_committed(events)


@pytest.fixture
async def api(engine: Any, database_url: str) -> AsyncIterator[Api]:
    """The app on this test's engine (tables emptied afterwards by ``engine``).

    Use ``serving(app_for(database_url, ...))`` for an app with other settings.
    """
    app = app_for(database_url)
    async with serving(app) as client:
        ctx: AppContext = app.state.ctx
        app.state.ctx = dataclasses.replace(ctx, notifier=RecordingNotifier(ctx.notifier))
        yield Api(app, client)
