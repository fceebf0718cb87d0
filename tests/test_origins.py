"""The pure origin rules of server/access/origins.py (DNS rebinding, issue 19 item 7)."""

from __future__ import annotations

import pytest

from server.access.origins import names_this_server, origin_allowed

OWN = ("https://mood.example.com", "http://127.0.0.1:8000")


@pytest.mark.parametrize(
    ("host", "ours"),
    [
        ("127.0.0.1:8000", True),
        ("127.0.0.2", True),  # all of 127/8 is loopback
        ("localhost:9", True),
        ("[::1]:8000", True),
        ("mood.example.com", True),
        ("MOOD.example.com:443", True),
        ("evil.test", False),
        ("evil.test:8000", False),
        ("mood.example.com.evil.test", False),
        ("[not-an-address", False),  # malformed: refused, not an error
        ("", False),
        (None, False),
    ],
)
def test_a_host_names_this_server_only_when_it_is_loopback_or_ours(
    host: str | None, ours: bool
) -> None:
    """Loopback names and the public URL's host are ours; any other name is not."""
    assert names_this_server(host, OWN) is ours


def test_an_origin_is_allowed_when_it_is_ours_or_configured() -> None:
    """Own and configured origins pass (case and a trailing slash aside); others and none do not."""
    allowed = ("https://app.example.com",)
    assert origin_allowed("https://MOOD.example.com/", own=OWN, allowed=allowed)
    assert origin_allowed("https://app.example.com", own=OWN, allowed=allowed)
    assert not origin_allowed("http://evil.test", own=OWN, allowed=allowed)
    assert not origin_allowed(None, own=OWN, allowed=allowed)
