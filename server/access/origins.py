"""Which browser origins may use cookies to change state or open sockets (CSRF/CSWSH defence).

The server's own origins are configured (``Settings.own_origins``:
``MOODBOARD_PUBLIC_URL``, else the bind address), never read from the
request's Host header: a page whose domain an attacker re-points at this
server (DNS rebinding) sends its own name as both Host and Origin.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from urllib.parse import urlsplit


def origin_allowed(origin: str | None, *, own: Iterable[str], allowed: Iterable[str]) -> bool:
    """True for the server's own origins and the configured ones; a missing Origin is not."""
    if not origin:
        return False
    origin = origin.lower().rstrip("/")
    return origin in own or origin in allowed


def names_this_server(host_header: str | None, own: Iterable[str]) -> bool:
    """Whether a Host header names this server: a loopback address or one of its own origins.

    A browser sends the name it resolved; a rebound name (evil.test pointed at
    127.0.0.1) is none of these, while a local agent asking for 127.0.0.1 or
    localhost is.
    """
    if not host_header:
        return False
    try:
        name = urlsplit(f"//{host_header.strip().lower()}").hostname or ""
    except ValueError:  # "[not-an-address": no name of ours
        return False
    if name == "localhost":
        return True
    try:
        if ipaddress.ip_address(name).is_loopback:
            return True
    except ValueError:
        pass
    return any(name == urlsplit(origin).hostname for origin in own)
