"""One exception tree for the whole server.

Each error carries its wire ``code`` (docs/protocol.md §4), the HTTP status REST
answers with (docs/protocol.md §2.1, RFC 9457 problem+json) and, where a socket must
close, the close code. ``app.py`` turns them into HTTP in one place.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any, ClassVar, Literal

ErrorCode = Literal[
    "bad_request",
    "unauthorized",
    "forbidden",
    "not_found",
    "conflict",
    "rate_limited",
    "too_large",
    "payment_required",
    "internal",
]


class CloseCode(IntEnum):
    """WebSocket close codes of docs/protocol.md §5."""

    NORMAL = 1000
    SERVICE_RESTART = 1012
    TOO_LARGE = 1009
    UNAUTHORIZED = 4401
    RATE_LIMITED = 4429
    INTERNAL = 4500
    TOO_SLOW = 4503


class ServerError(Exception):
    """Root of every error the server reports to a client."""

    code: ClassVar[ErrorCode] = "internal"
    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal server error"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class BadRequest(ServerError):
    code = "bad_request"
    status = 400
    title = "Bad request"


class ValidationFailed(BadRequest):
    """A well-formed body whose values break a rule (a weak password, say)."""

    status = 422
    title = "Unprocessable content"


class UnsupportedMediaType(BadRequest):
    """A body of a type the call does not take, or bytes that are not what they claim."""

    status = 415
    title = "Unsupported media type"


class Unauthorized(ServerError):
    code = "unauthorized"
    status = 401
    title = "Unauthorized"


class Forbidden(ServerError):
    code = "forbidden"
    status = 403
    title = "Forbidden"


class NotFound(ServerError):
    code = "not_found"
    status = 404
    title = "Not found"


class Conflict(ServerError):
    code = "conflict"
    status = 409
    title = "Conflict"


class Gone(ServerError):
    code = "not_found"
    status = 410
    title = "Gone"


class PaymentRequired(ServerError):
    code = "payment_required"
    status = 402
    title = "Payment required"


class RateLimited(ServerError):
    code = "rate_limited"
    status = 429
    title = "Too many requests"


class TooLarge(ServerError):
    code = "too_large"
    status = 413
    title = "Content too large"


class Unavailable(ServerError):
    code = "internal"
    status = 503
    title = "Service unavailable"
