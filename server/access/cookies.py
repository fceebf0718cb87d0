"""The session cookie: the session token plus an HMAC of it under MOODBOARD_SECRET_KEY.

The token alone is already unguessable; the signature lets the server refuse
a forged or truncated cookie without a database lookup. New cookies are
signed with the current key; a cookie signed with a key that a rotation
retired (``MOODBOARD_SECRET_KEY_PREVIOUS``) still verifies, so rotating the
key signs nobody out (docs/operations.md "Rotating secrets").
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence

from server import metrics

COOKIE_NAME = "moodboard_session"


def _mac(token: str, secret: str) -> str:
    digest = hmac.new(secret.encode(), token.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:16]).decode().rstrip("=")


def sign(token: str, secret: str) -> str:
    """The cookie value for ``token``, signed with ``secret`` (the current key)."""
    return f"{token}.{_mac(token, secret)}"


def unsign(value: str, keys: Sequence[str]) -> str | None:
    """The token inside a cookie value, or None when no key's signature matches.

    ``keys`` is the current key first, then the retired ones
    (``Settings.verification_keys``); a match with a retired one is counted
    (``moodboard_auth_retired_key{kind="cookie"}``).
    """
    token, sep, mac = value.rpartition(".")
    if not sep or not token:
        return None
    for number, key in enumerate(keys):
        if hmac.compare_digest(mac, _mac(token, key)):
            if number:
                metrics.AUTH_RETIRED_KEY.labels("cookie").inc()
            return token
    return None
