"""``/api/auth``: register, log in (cookie + token), log out."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, post
from litestar.datastructures import Cookie
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT

from server.access import accounts
from server.access.cookies import COOKIE_NAME, sign
from server.access.sessions import NewSession
from server.http.deps import Caller, ClientInfo, Ctx
from server.http.schemas import AuthResult, LoginBody, RegisterBody, to

# Beside the session cookie, a cookie the page can read and that holds nothing secret: it
# says "a session cookie was set", so the page asks GET /api/me only then (a signed-out
# first visit would otherwise start with a 401 in the browser's console).
SIGNED_IN_HINT = "moodboard_signed_in"


def session_cookies(request: Request[Any, Any, Any], ctx: Ctx, session: NewSession) -> list[Cookie]:
    """The session cookie (HttpOnly, SameSite=Lax; Secure over https or as
    MOODBOARD_COOKIE_SECURE says) and the signed-in hint, with the same lifetime."""
    secure = ctx.settings.cookie_secure
    if secure is None:
        secure = request.url.scheme == "https"
    common: dict[str, Any] = {
        "max_age": ctx.settings.session_ttl_s,
        "samesite": "lax",
        "secure": secure,
        "path": "/",
    }
    return [
        Cookie(
            key=COOKIE_NAME,
            value=sign(session.token, ctx.settings.secret_key),
            httponly=True,
            **common,
        ),
        Cookie(key=SIGNED_IN_HINT, value="1", httponly=False, **common),
    ]


class AuthController(Controller):
    path = "/api/auth"
    tags = ["auth"]

    @post("/register", status_code=HTTP_201_CREATED)
    async def register(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[RegisterBody],
        ctx: Ctx,
        client: ClientInfo,
    ) -> Response[AuthResult]:
        """Create an account (with the signup credits) and sign in; the token is shown once."""
        user, session = await accounts.register(
            ctx.engine,
            ctx.settings,
            ctx.throttle,
            email=data.email,
            password=data.password,
            name=data.name,
            client=client,
        )
        return Response(
            to(AuthResult, {"user": user, "token": session.token}),
            status_code=HTTP_201_CREATED,
            cookies=session_cookies(request, ctx, session),
        )

    @post("/login", status_code=HTTP_200_OK)
    async def login(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[LoginBody],
        ctx: Ctx,
        client: ClientInfo,
    ) -> Response[AuthResult]:
        """Sign in: the token for API clients, and the session cookie for browsers."""
        user, session = await accounts.login(
            ctx.settings, ctx.throttle, email=data.email, password=data.password, client=client
        )
        return Response(
            to(AuthResult, {"user": user, "token": session.token}),
            cookies=session_cookies(request, ctx, session),
        )

    @post("/logout", status_code=HTTP_204_NO_CONTENT)
    async def logout(self, caller: Caller, ctx: Ctx, client: ClientInfo) -> Response[None]:
        """Revoke this session everywhere (its sockets close) and clear the cookie."""
        await accounts.logout(ctx.notifier, caller, client=client)
        return Response(
            None,
            status_code=HTTP_204_NO_CONTENT,
            cookies=[
                Cookie(key=COOKIE_NAME, value="", max_age=0, path="/", httponly=True),
                Cookie(key=SIGNED_IN_HINT, value="", max_age=0, path="/"),
            ],
        )
