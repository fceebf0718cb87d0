"""The API docs page loads nothing from another origin and is sent under a strict CSP.

Issue 19 item 6: ``/schema/swagger`` loaded swagger-ui from a CDN without
integrity (that CDN could run script on this origin; offline, the page was
blank). Now every file it loads comes from this server.
"""

from __future__ import annotations

import re

from tests.api.conftest import Api


def _directives(header: str) -> dict[str, list[str]]:
    return {
        name: values
        for name, *values in (part.split() for part in header.split(";") if part.strip())
    }


async def test_the_docs_page_loads_only_this_servers_files(api: Api) -> None:
    """Every script, style and picture of the page is a path here, and each one answers."""
    page = await api.client.get("/schema/swagger")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "//" not in page.text.replace("<!DOCTYPE html>", ""), "no absolute URL at all"
    references = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert any(ref.endswith(".js") for ref in references), references
    for reference in references:
        assert reference.startswith("/"), reference
        assert not reference.startswith("//"), reference
        asset = await api.client.get(reference)
        assert asset.status_code == 200, reference
        assert asset.content, reference
    assert (await api.client.get("/schema/swagger-ui/index.html")).status_code == 404
    assert (await api.client.get("/schema/openapi.json")).status_code == 200


async def test_the_docs_page_is_sent_under_a_strict_csp(api: Api) -> None:
    """Scripts and fetches from this origin only; no inline or eval'd script, no framing."""
    page = await api.client.get("/schema/swagger")
    policy = _directives(page.headers["content-security-policy"])
    assert policy["default-src"] == ["'none'"]
    assert policy["script-src"] == ["'self'"]
    assert policy["connect-src"] == ["'self'"]
    assert policy["style-src"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert "<script>" not in page.text  # nothing inline
    assert "<style" not in page.text
    assert page.headers["x-content-type-options"] == "nosniff"
