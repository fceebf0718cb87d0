"""The session cookie: the session token plus an HMAC of it under MOODBOARD_SECRET_KEY.

The token alone is already unguessable; the signature lets the server refuse
a forged or truncated cookie without a database lookup.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

COOKIE_NAME = "moodboard_session"


def _mac(token: str, secret: str) -> str:
    digest = hmac.new(secret.encode(), token.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:16]).decode().rstrip("=")


def sign(token: str, secret: str) -> str:
    """The cookie value for ``token``."""
    return f"{token}.{_mac(token, secret)}"


def unsign(value: str, secret: str) -> str | None:
    """The token inside a cookie value, or None when the signature does not match."""
    token, sep, mac = value.rpartition(".")
    if not sep or not token:
        return None
    return token if hmac.compare_digest(mac, _mac(token, secret)) else None
