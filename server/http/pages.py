"""The moodboard page at ``/`` and its files under ``/static`` (no build step).

Both are outside the OpenAPI schema and need no credentials: the page signs
in through ``/api/auth`` and opens ``/ws`` from the same origin, so the
session cookie and the socket's Origin check work without any CORS setting.
"""

from __future__ import annotations

from pathlib import Path

from litestar import Router, get
from litestar.datastructures import CacheControlHeader
from litestar.response import File
from litestar.static_files import create_static_files_router

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
# Revalidate every load: a deploy must never leave a browser on an old client module.
REVALIDATE = CacheControlHeader(no_cache=True)
# Scripts and sockets from this origin only; pictures from anywhere (boards show web
# images and generated ones). Inline style attributes are how the board places items.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "connect-src 'self'",
        "img-src 'self' https: http: data: blob:",
        "style-src 'self' 'unsafe-inline'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)


@get("/", include_in_schema=False, cache_control=REVALIDATE, sync_to_thread=False)
def index() -> File:
    """The moodboard page."""
    return File(
        STATIC_DIR / "index.html",
        media_type="text/html",  # Litestar adds "; charset=utf-8" to text types
        content_disposition_type="inline",
        headers={
            "Content-Security-Policy": CONTENT_SECURITY_POLICY,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin",
        },
    )


def static_files() -> Router:
    """``/static/{file_path}``: the client module, the page's script and style."""
    return create_static_files_router(
        path="/static",
        directories=[STATIC_DIR],
        cache_control=REVALIDATE,
        include_in_schema=False,
    )
