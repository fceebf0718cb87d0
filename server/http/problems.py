"""RFC 9457 problem+json for every error (docs/protocol.md §2.1).

Domain errors (``server.errors``), Litestar's validation and HTTP errors and
anything unexpected all leave through here, so clients see one shape:
``{type, status, title, detail, code, ...}``.
"""

from __future__ import annotations

import os
import traceback
from typing import Any

from litestar import Request, Response
from litestar.exceptions import (
    HTTPException,
    MethodNotAllowedException,
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
    ValidationException,
)
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from server.errors import ErrorCode, ServerError
from server.log import get_logger

PROBLEM_JSON = "application/problem+json"
log = get_logger(__name__)

_CODES_BY_STATUS: dict[int, ErrorCode] = {
    400: "bad_request",
    401: "unauthorized",
    402: "payment_required",
    403: "forbidden",
    404: "not_found",
    405: "bad_request",
    409: "conflict",
    410: "not_found",
    413: "too_large",
    415: "bad_request",
    422: "bad_request",
    429: "rate_limited",
}


def problem(
    status: int, title: str, detail: str, code: ErrorCode, **extra: Any
) -> Response[dict[str, Any]]:
    """Build a problem+json response."""
    body = {"type": "about:blank", "status": status, "title": title, "detail": detail}
    body["code"] = code
    body.update(extra)
    headers = {}
    if "retry_after" in extra:
        headers["Retry-After"] = str(extra["retry_after"])
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def server_error_handler(_request: Request[Any, Any, Any], exc: ServerError) -> Response[Any]:
    """Our own errors carry their status and code."""
    return problem(exc.status, exc.title, exc.detail, exc.code, **exc.extra)


def validation_error_handler(
    _request: Request[Any, Any, Any], exc: ValidationException
) -> Response[Any]:
    """A body or parameter that failed validation: 400, naming the field."""
    errors = exc.extra if isinstance(exc.extra, list) else []
    detail = exc.detail
    first = errors[0] if errors and isinstance(errors[0], dict) else None
    if first is not None:
        key = first.get("key")
        field = key
        if key in (None, "data"):
            # "data" is Litestar's name for the whole body, and also an item's field:
            # msgspec's own path, kept as the cause, tells the two apart.
            field = _body_field(str(exc.__cause__ or "")) or _field_from(
                str(first.get("message", ""))
            )
        message = str(first.get("message", "")).split(" - at `")[0]
        if key == "data" and message == "'data'":  # Litestar's KeyError text: no body at all
            field, message = "body", "a JSON object is required"
        detail = f"{field}: {message}" if field else message or detail
    return problem(400, "Bad request", detail, "bad_request", errors=errors)


def _body_field(cause: str) -> str | None:
    """The body field in msgspec's path: "... - at `$.data.<field>...`" (data is the body)."""
    marker = " - at `$.data."
    if marker not in cause:
        return None
    return cause.split(marker, 1)[1].split("`", 1)[0].split(".", 1)[0].split("[", 1)[0]


def _field_from(message: str) -> str | None:
    """msgspec says where: "... - at `$.name`" or "unknown field `x`"."""
    for marker in (" - at `$.", "unknown field `", "required field `"):
        if marker in message:
            return message.split(marker, 1)[1].split("`", 1)[0].split(".", 1)[0].split("[", 1)[0]
    return None


def http_error_handler(_request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    """Litestar's own HTTP errors (404 route, 405 method, ...)."""
    code = _CODES_BY_STATUS.get(exc.status_code, "internal")
    titles: dict[type[HTTPException], str] = {
        NotFoundException: "Not found",
        MethodNotAllowedException: "Method not allowed",
        NotAuthorizedException: "Unauthorized",
        PermissionDeniedException: "Forbidden",
    }
    title = titles.get(type(exc), "Error")
    response = problem(exc.status_code, title, exc.detail, code)
    response.headers.update(exc.headers or {})  # a 405's Allow (RFC 9110 15.5.6)
    return response


def recursion_error_handler(request: Request[Any, Any, Any], exc: RecursionError) -> Response[Any]:
    """JSON nested past the decoder's stack: Litestar decodes a body before any check."""
    if "deserializing" not in str(exc):  # msgspec's words; anything else is a bug of ours
        return unexpected_error_handler(request, exc)
    return problem(400, "Bad request", "body: JSON nested too deeply", "bad_request")


def undecodable_body_handler(
    request: Request[Any, Any, Any], exc: UnicodeDecodeError
) -> Response[Any]:
    """A JSON body that is not UTF-8: msgspec raises this, and Litestar lets it through.

    Only the body decoder's own error is the client's; one raised anywhere else is a bug.
    """
    frames = traceback.extract_tb(exc.__traceback__)
    if not any(_is_body_decoder(frame) for frame in frames):
        return unexpected_error_handler(request, exc)
    return problem(400, "Bad request", "body: not valid UTF-8 JSON", "bad_request")


def _is_body_decoder(frame: traceback.FrameSummary) -> bool:
    return frame.name == "decode_json" and frame.filename.endswith(
        os.path.join("litestar", "serialization", "msgspec_hooks.py")
    )


def unexpected_error_handler(_request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """A bug: log it with its traceback, tell the client nothing internal."""
    log.error("http.unhandled_error", exc_info=exc)
    return problem(
        HTTP_500_INTERNAL_SERVER_ERROR,
        "Internal server error",
        "The server failed to handle this request; it has been logged.",
        "internal",
    )


EXCEPTION_HANDLERS: dict[type[Exception] | int, Any] = {
    ServerError: server_error_handler,
    ValidationException: validation_error_handler,
    HTTPException: http_error_handler,
    RecursionError: recursion_error_handler,
    UnicodeDecodeError: undecodable_body_handler,
    Exception: unexpected_error_handler,
}
