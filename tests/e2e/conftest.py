"""Fixtures of the end-to-end tests: real server processes over a database of their own."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.conftest import create_pg_database, drop_pg_database


@pytest.fixture
async def cluster_db(pg_url: str) -> AsyncIterator[str]:
    """A fresh PostgreSQL database for one test's server processes (dropped after)."""
    url = await create_pg_database("moodboard_e2e")
    try:
        yield url
    finally:
        await drop_pg_database(url)
