"""Request dependencies: the app context, the caller, and where the request came from.

Authentication (docs/protocol.md §2.1): ``Authorization: Bearer <token>`` or
the session cookie. Cookie-authenticated requests that change state must come
from an allowed Origin (CSRF defence). Service-account keys authenticate the
worker API only, never these calls.
"""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec
from litestar import Request
from litestar.di import NamedDependency, Provide

from server.access.accounts import Client
from server.access.cookies import COOKIE_NAME, unsign
from server.access.origins import origin_allowed
from server.access.principal import Principal
from server.access.sessions import authenticate
from server.access.tokens import token_kind
from server.context import AppContext
from server.errors import BadRequest, Forbidden, Unauthorized

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
T = TypeVar("T")


def provide_ctx(request: Request[Any, Any, Any]) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


def provide_client(request: Request[Any, Any, Any]) -> Client:
    return Client(
        ip=request.client.host if request.client else None,
        user_agent=request.headers.get("user-agent"),
    )


def bearer_token(request: Request[Any, Any, Any]) -> str | None:
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Authorization must be 'Bearer <token>'")
    return token.strip()


async def provide_principal(request: Request[Any, Any, Any]) -> Principal:
    """The signed-in caller; 401 without a live session, 403 for a cross-site cookie write."""
    ctx = provide_ctx(request)
    token = bearer_token(request)
    if token is not None:
        if token_kind(token) == "service":
            raise Unauthorized("service-account keys authenticate the worker API only")
        principal = await authenticate(
            ctx.database, token, ttl_s=ctx.settings.session_ttl_s, via="bearer"
        )
    else:
        cookie = request.cookies.get(COOKIE_NAME)
        token = unsign(cookie, ctx.settings.verification_keys) if cookie else None
        if token is None:
            raise Unauthorized("sign in: send a Bearer token or the session cookie")
        if request.method not in SAFE_METHODS and not origin_allowed(
            request.headers.get("origin"),
            own=ctx.settings.own_origins,
            allowed=ctx.settings.allowed_origins,
        ):
            raise Forbidden("cookie-authenticated changes must come from an allowed Origin")
        principal = await authenticate(
            ctx.database, token, ttl_s=ctx.settings.session_ttl_s, via="cookie"
        )
    if principal is None:
        raise Unauthorized("the session is unknown, expired or revoked; sign in again")
    return principal


DEPENDENCIES = {
    "ctx": Provide(provide_ctx, sync_to_thread=False),
    "client": Provide(provide_client, sync_to_thread=False),
    "caller": Provide(provide_principal),
}

# Handler parameters name these explicitly (Litestar 3 drops inferred dependencies).
Ctx = NamedDependency[AppContext]
Caller = NamedDependency[Principal]
ClientInfo = NamedDependency[Client]


async def strictly(request: Request[Any, Any, Any], data: T) -> T:
    """``data`` decoded again from the raw body, strictly: ``"1"`` is not the integer 1.

    Litestar converts typed bodies leniently (numeric strings pass for numbers);
    docs/protocol.md §0 wants wrong types refused, so bodies with numeric fields pass
    through here. The first decode already checked everything else.
    """
    try:
        return msgspec.json.decode(await request.body(), type=type(data))
    except msgspec.ValidationError as exc:
        message, _, path = str(exc).partition(" - at `$.")
        field = path.split("`", 1)[0].split(".", 1)[0].split("[", 1)[0] or "body"
        raise BadRequest(f"{field}: {message}", field=field) from None
