"""The moodboard page and its static files: served to anyone, outside the API schema."""

from __future__ import annotations

import posixpath
import re
import secrets
from pathlib import Path

from litestar.testing import AsyncTestClient

from server.app import create_app
from server.settings import load_settings


def _app(tmp_path: Path) -> AsyncTestClient:  # type: ignore[type-arg]
    settings = load_settings(
        {
            "DATABASE_URL": f"sqlite:///{tmp_path / 'm.sqlite3'}",
            "MOODBOARD_SECRET_KEY": secrets.token_urlsafe(32),
        }
    )
    return AsyncTestClient(create_app(settings))


async def test_the_page_is_html_with_a_strict_content_security_policy(tmp_path: Path) -> None:
    """GET / is the page (inline, not a download), allowed to load scripts from itself only."""
    async with _app(tmp_path) as client:
        response = await client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "attachment" not in response.headers.get("content-disposition", "")
    assert '<script type="module" src="/static/app.js">' in response.text
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert "no-cache" in response.headers["cache-control"]


async def test_static_files_are_javascript_and_css_and_nothing_outside(tmp_path: Path) -> None:
    """The client module and style load with their types; paths out of static/ are 404."""
    async with _app(tmp_path) as client:
        module = await client.get("/static/moodboard-client.js")
        style = await client.get("/static/style.css")
        escape = await client.get("/static/../settings.py")
        encoded = await client.get("/static/%2e%2e/settings.py")
        missing = await client.get("/static/nope.js")
    assert module.status_code == 200
    assert "javascript" in module.headers["content-type"]
    assert "export class MoodboardClient" in module.text
    assert style.headers["content-type"].startswith("text/css")
    assert {escape.status_code, encoded.status_code, missing.status_code} == {404}


async def test_the_client_module_loads_its_parts_by_relative_paths(tmp_path: Path) -> None:
    """Each module the client imports is JavaScript served from beside it: a copied folder works."""
    seen: dict[str, str] = {}
    todo = ["/static/moodboard-client.js"]
    async with _app(tmp_path) as client:
        while todo:
            url = todo.pop()
            if url in seen:
                continue
            response = await client.get(url)
            assert response.status_code == 200, url
            seen[url] = response.headers["content-type"]
            for spec in re.findall(
                r'^(?:import|export)\b[^;]*?\bfrom "([^"]+)";', response.text, re.M | re.S
            ):
                assert spec.startswith("./"), (url, spec)
                todo.append(posixpath.normpath(posixpath.join(posixpath.dirname(url), spec)))
    assert len(seen) > 1
    assert all("javascript" in content_type for content_type in seen.values())


async def test_the_page_and_static_files_stay_out_of_the_openapi_schema(tmp_path: Path) -> None:
    """The schema documents the API only."""
    async with _app(tmp_path) as client:
        paths = (await client.get("/schema/openapi.json")).json()["paths"]
    assert "/" not in paths
    assert not [p for p in paths if p.startswith("/static")]
