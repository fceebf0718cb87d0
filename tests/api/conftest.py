"""Fixtures for REST tests: the app on each engine, and helpers to make users and projects."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from server.access.users import create_or_promote_admin
from server.app import create_app
from server.http.context import AppContext
from server.settings import load_settings

SECRET = "t" * 40
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

    def __init__(self, client: AsyncTestClient[Any]) -> None:
        self.client = client

    @property
    def ctx(self) -> AppContext:
        ctx: AppContext = self.client.app.state.ctx
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


def app_for(database_url: str, **env: str) -> Any:
    return create_app(
        load_settings({"DATABASE_URL": database_url, "MOODBOARD_SECRET_KEY": SECRET, **env})
    )


@pytest.fixture
async def api(engine: Any, database_url: str) -> AsyncIterator[Api]:
    """The app on this test's engine (tables emptied afterwards by ``engine``)."""
    async with AsyncTestClient(app_for(database_url)) as client:
        yield Api(client)
