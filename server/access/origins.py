"""Which browser origins may use cookies to change state or open sockets (CSRF/CSWSH defence)."""

from __future__ import annotations

from collections.abc import Iterable


def same_origin(scheme: str, host: str | None) -> str | None:
    """The server's own origin as the browser sees it: ``scheme://host[:port]``."""
    if not host:
        return None
    scheme = {"ws": "http", "wss": "https"}.get(scheme, scheme)
    return f"{scheme}://{host}".lower()


def origin_allowed(
    origin: str | None, *, scheme: str, host: str | None, allowed: Iterable[str]
) -> bool:
    """True for the server's own origin and the configured ones; a missing Origin is not."""
    if not origin:
        return False
    origin = origin.lower().rstrip("/")
    if origin == same_origin(scheme, host):
        return True
    return origin in allowed
