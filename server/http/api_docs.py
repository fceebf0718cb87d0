"""The API docs page ``/schema/swagger``, served whole by this server under a strict CSP.

Litestar's Swagger plugin loads swagger-ui from a CDN, without integrity
checks, and runs it on this origin: whoever controls that CDN could run
script here, and without internet the page is blank. Here swagger-ui's files
come from the ``swagger-ui-bundle-v2`` package (its ``swagger_ui_path``;
a pinned fork of spec-first's ``swagger-ui-bundle``, whose files are npm's
``swagger-ui-dist`` of the same version: docs/security.md), the
page has no inline script or style (the set-up is ``swagger-init.js``, which
loads ``/schema/openapi.json``), and the page is sent with a
Content-Security-Policy that allows nothing but this origin's scripts,
styles and fetches.
"""

from __future__ import annotations

from pathlib import Path

from litestar import Response, Router, get
from litestar.datastructures import CacheControlHeader
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from swagger_ui_bundle import swagger_ui_path

ASSETS_PATH = "/schema/swagger-ui"
# swagger-ui draws its logo and icons as data: URLs; its styles come from its stylesheet
# and the DOM's style properties (which a CSP does not govern): no inline style needed.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
_PAGE = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Moodboard Realtime API</title>
<link rel="icon" href="{ASSETS_PATH}/favicon-32x32.png">
<link rel="stylesheet" href="{ASSETS_PATH}/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{ASSETS_PATH}/swagger-ui-bundle.js"></script>
<script src="{ASSETS_PATH}/swagger-ui-standalone-preset.js"></script>
<script src="{ASSETS_PATH}/swagger-init.js"></script>
</body>
</html>
"""
_INIT = b"""window.ui = SwaggerUIBundle({
  url: "/schema/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  showExtensions: true,
  showCommonExtensions: true,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
  plugins: [SwaggerUIBundle.plugins.DownloadUrl],
  layout: "BaseLayout",
});
"""
_ASSETS = {  # the files the page loads, and nothing else of the package
    "swagger-ui.css": "text/css",
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui-standalone-preset.js": "text/javascript",
    "favicon-32x32.png": "image/png",
}
# The package's files change only with its version: cache them for a day.
_CACHE = CacheControlHeader(max_age=86_400, public=True)


@get("/schema/swagger", include_in_schema=False, sync_to_thread=False)
def api_docs_page() -> Response[str]:
    """The swagger-ui page for this server's OpenAPI document."""
    return Response(_PAGE, media_type="text/html", headers=SECURITY_HEADERS)


@get(f"{ASSETS_PATH}/{{name:str}}", include_in_schema=False, sync_to_thread=False)
def api_docs_asset(name: FromPath[str]) -> Response[bytes]:
    """One of swagger-ui's files (from the installed package), or the page's set-up script."""
    if name == "swagger-init.js":
        content, media_type = _INIT, "text/javascript"
    elif name in _ASSETS:
        content, media_type = _read(name), _ASSETS[name]
    else:
        raise NotFoundException(f"no such file: {name}")
    headers = {**SECURITY_HEADERS, _CACHE.HEADER_NAME: _CACHE.to_header()}
    return Response(content, media_type=media_type, headers=headers)


_files: dict[str, bytes] = {}


def _read(name: str) -> bytes:
    if name not in _files:
        _files[name] = (Path(swagger_ui_path) / name).read_bytes()
    return _files[name]


def api_docs() -> Router:
    """The page and its files."""
    return Router(path="/", route_handlers=[api_docs_page, api_docs_asset])
