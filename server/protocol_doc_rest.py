"""The REST half of docs/protocol.md's generated parts: the route table and the bodies.

Read from the app itself (its routes and its OpenAPI document), with one
hand-written line per route (``ROUTES``: who may call it, and how it fails)
that tests/test_protocol_doc.py keeps in step with the routes and with
tests/api/test_authz_matrix.py. ``python -m server.protocol_doc`` writes it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, get_args

import msgspec
from litestar import Litestar
from litestar.openapi.spec import Operation, Parameter, Reference, RequestBody
from litestar.routes import HTTPRoute, WebSocketRoute

from server.protocol_doc_structs import struct_table, summary

_NOT_HELD = "404 unknown id, 409 not held by this worker (any more)"
ROUTES: dict[str, tuple[str, str]] = {
    "GET /healthz": ("anyone", ""),
    "GET /readyz": ("anyone", "503 naming the dependency that did not answer"),
    "GET /metrics": ("loopback peers, or the metrics token", "403 not loopback, 401 bad token"),
    "POST /api/auth/register": ("anyone", "409 e-mail taken, 422 weak password or bad e-mail"),
    "POST /api/auth/login": ("anyone", "401 unknown e-mail or wrong password, 429 throttled"),
    "POST /api/auth/logout": ("signed in", ""),
    "GET /api/me": ("signed in", ""),
    "DELETE /api/me": ("signed in", "401 wrong password"),
    "GET /api/me/sessions": ("signed in", ""),
    "DELETE /api/me/sessions/{session_id}": ("signed in", "404 not a live session of yours"),
    "GET /api/me/export": ("signed in", ""),
    "POST /api/projects": ("signed in", "403 a `team_id` of a team you are not in, 422"),
    "GET /api/projects": ("signed in", ""),
    "GET /api/projects/{project_id}": ("viewer", "403 (also for a project that does not exist)"),
    "PATCH /api/projects/{project_id}": ("editor", "409 conflict body, 403, 422 nothing to change"),
    "DELETE /api/projects/{project_id}": ("owner", "403"),
    "GET /api/projects/{project_id}/members": ("owner", "403"),
    "POST /api/projects/{project_id}/members": ("owner", "403, 404 no such user, 409 a member"),
    "PATCH /api/projects/{project_id}/members/{user_id}": ("owner", "403, 404, 409 last owner"),
    "DELETE /api/projects/{project_id}/members/{user_id}": (
        "owner (any member: themself)",
        "403, 404, 409 last owner",
    ),
    "POST /api/projects/{project_id}/invitations": ("owner", "403"),
    "GET /api/projects/{project_id}/invitations": ("owner", "403"),
    "DELETE /api/projects/{project_id}/invitations/{invitation_id}": (
        "owner",
        "403, 404 no pending invitation with that id",
    ),
    "GET /api/invitations/{token}": (
        "anyone (holding the link)",
        "404 unknown or revoked, 410 expired, used, or its maker may no longer invite",
    ),
    "POST /api/invitations/{token}/accept": (
        "signed in",
        "404 unknown or revoked, 410 expired, used, or its maker may no longer invite",
    ),
    "GET /api/projects/{project_id}/teams": ("owner", "403"),
    "POST /api/projects/{project_id}/teams": ("owner", "403 unless also in the team"),
    "DELETE /api/projects/{project_id}/teams/{team_id}": ("owner", "403, 404 no such grant"),
    "POST /api/teams": ("signed in", ""),
    "GET /api/teams": ("signed in", ""),
    "GET /api/teams/{team_id}": ("team member", "403 not a team of yours"),
    "POST /api/teams/{team_id}/members": ("team owner", "403, 404 no such user, 409 in it"),
    "DELETE /api/teams/{team_id}/members/{user_id}": (
        "team owner (a member: themself)",
        "403, 404, 409 last owner",
    ),
    "GET /api/projects/{project_id}/rooms": ("viewer", "403"),
    "POST /api/projects/{project_id}/rooms": ("editor", "403, 422"),
    "PATCH /api/projects/{project_id}/rooms/{room_id}": ("editor", "409 conflict body, 403, 404"),
    "DELETE /api/projects/{project_id}/rooms/{room_id}": ("editor", "409 conflict body, 403, 404"),
    "GET /api/projects/{project_id}/rooms/{room_id}/items": ("viewer", "403"),
    "POST /api/projects/{project_id}/rooms/{room_id}/items": ("editor", "403, 404 room, 422"),
    "PATCH /api/projects/{project_id}/items/{item_id}": ("editor", "409 conflict body, 403, 404"),
    "DELETE /api/projects/{project_id}/items/{item_id}": ("editor", "409 conflict body, 403, 404"),
    "GET /api/projects/{project_id}/events": ("viewer", "403"),
    "POST /api/projects/{project_id}/resources": (
        "editor",
        "403, 413 too large or over the project's storage quota, "
        "415 not PNG/JPEG/WebP/GIF or bytes that are not that type",
    ),
    "GET /api/projects/{project_id}/resources/{resource_id}": ("viewer", "403, 404"),
    "POST /api/projects/{project_id}/generations": ("editor", "402 not enough credits, 403"),
    "GET /api/projects/{project_id}/generations": ("viewer", "403"),
    "GET /api/generations/{generation_id}": ("viewer", "403 (also for an unknown id)"),
    "POST /api/generations/{generation_id}/cancel": ("editor", "403, 409 finished already"),
    "POST /api/worker/claim": ("worker key", "403 a user's credentials"),
    "POST /api/worker/generations/{generation_id}/progress": ("worker key", _NOT_HELD),
    "POST /api/worker/generations/{generation_id}/complete": ("worker key", _NOT_HELD),
    "POST /api/worker/generations/{generation_id}/fail": ("worker key", _NOT_HELD),
    "POST /api/worker/generations/{generation_id}/asset": (
        "worker key",
        f"{_NOT_HELD}, 400 not a picture type or empty, 413 too large",
    ),
    "POST /api/admin/service-accounts": ("admin", "403"),
    "GET /api/admin/service-accounts": ("admin", "403"),
    "DELETE /api/admin/service-accounts/{account_id}": ("admin", "403, 404"),
    "POST /api/admin/service-accounts/{account_id}/rotate": ("admin", "403, 404, 409"),
    "DELETE /api/admin/service-accounts/{account_id}/previous-key": ("admin", "403, 404"),
    "POST /api/admin/users/{user_id}/credits": ("admin", "402 below zero, 403, 404"),
    "GET /api/admin/audit": ("admin", "403"),
}
# Served by the app but not part of the API: the page, its files, the OpenAPI document.
_NOT_API = ("/static", "/schema")


def _is_api(path: str) -> bool:
    return path != "/" and not any(path == p or path.startswith(p + "/") for p in _NOT_API)


def api_handlers(app: Litestar) -> Iterator[tuple[str, str, Any]]:
    """(method, path, handler) of every REST call, in the order the app declares them."""
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or not _is_api(route.path_format):
            continue
        for handler in route.route_handlers:
            for method in sorted(handler.http_methods - {"OPTIONS", "HEAD"}):
                yield method, route.path_format, handler


def _schema_name(ref: Any) -> str | None:
    if isinstance(ref, Reference):
        return ref.ref.rsplit("/", 1)[-1]
    return None


def _body(operation: Operation | None, handler: Any) -> str:
    if "data" not in handler.parsed_fn_signature.parameters:
        if handler.handler_name == "asset":
            return "raw picture bytes, `Content-Type: image/...`"
        if handler.handler_name == "upload":
            return (
                "raw picture bytes, `Content-Type` `image/png`, `image/jpeg`, `image/webp` "
                "or `image/gif`"
            )
        return "none"
    body = operation.request_body if operation is not None else None
    if isinstance(body, RequestBody):
        for media in body.content.values():
            name = _schema_name(media.schema)
            if name is not None:
                return f"`{name}`"
    return "`{base_version, ...fields}`"  # an open object: the fields to set


def _query(operation: Operation | None) -> str:
    if operation is None:
        return ""
    names = [
        p.name
        for p in operation.parameters or ()
        if isinstance(p, Parameter) and p.param_in == "query"
    ]
    return "?" + "&".join(f"{n}=" for n in names) if names else ""


def _answer(operation: Operation | None, handler: Any) -> str:
    if operation is None or operation.responses is None:
        return str(handler.status_code)
    parts = []
    for status, response in operation.responses.items():
        if not status.isdigit() or int(status) >= 300:
            continue
        shown = status
        content = getattr(response, "content", None) or {}
        for media_type, media in content.items():
            schema = media.schema
            name = _schema_name(schema)
            items = getattr(schema, "items", None)
            if name is not None:
                shown += f" `{name}`"
            elif items is not None and _schema_name(items) is not None:
                shown += f" list of `{_schema_name(items)}`"
            elif media_type.startswith("application/json"):
                shown += " JSON"
            else:
                shown += " the bytes"
        parts.append(shown)
    return ", ".join(parts)


def credentials(handler: Any) -> str:
    """What a handler authenticates: ``worker`` (a service-account key), ``caller``, or none."""
    parameters = handler.parsed_fn_signature.parameters
    return "worker" if "worker" in parameters else "caller" if "caller" in parameters else "none"


_METHOD_ORDER = {"GET": 0, "POST": 1, "PATCH": 2, "DELETE": 3}


def _route_order(route: tuple[str, str, Any]) -> tuple[bool, str, int]:
    method, path, _ = route
    return not path.startswith("/api"), path, _METHOD_ORDER.get(method, 9)


def _operation(app: Litestar, method: str, path: str) -> Operation | None:
    item = (app.openapi_schema.paths or {}).get(path)
    operation = getattr(item, method.lower(), None) if item is not None else None
    return operation if isinstance(operation, Operation) else None


def render_routes(app: Litestar) -> str:
    """The REST table of docs/protocol.md §2.2."""
    lines = [
        "| call | what it does | who may call | body | success | notable failures |",
        "|---|---|---|---|---|---|",
    ]
    for method, path, handler in sorted(api_handlers(app), key=_route_order):
        operation = _operation(app, method, path)
        who, failures = ROUTES[f"{method} {path}"]
        call = f"`{method} {path}{_query(operation)}`"
        lines.append(
            f"| {call} | {summary(handler.fn)} | {who} | {_body(operation, handler)} | "
            f"{_answer(operation, handler)} | {failures} |"
        )
    for route in app.routes:
        if isinstance(route, WebSocketRoute):
            lines.append(
                f"| `GET {route.path_format}` | the WebSocket (docs/protocol.md §3) | signed in"
                " (at the handshake or with an `auth` frame) | none | 101 | 403 foreign Origin |"
            )
    return "\n".join(lines)


def _structs_of(annotation: Any) -> Iterator[type[msgspec.Struct]]:
    if isinstance(annotation, type) and issubclass(annotation, msgspec.Struct):
        yield annotation
        return
    for arg in get_args(annotation):
        yield from _structs_of(arg)


def body_structs(app: Litestar) -> tuple[list[type[msgspec.Struct]], list[type[msgspec.Struct]]]:
    """The request and the response Structs the routes use, each once, in route order."""
    requests: dict[type[msgspec.Struct], None] = {}
    responses: dict[type[msgspec.Struct], None] = {}
    for _, _, handler in sorted(api_handlers(app), key=_route_order):
        signature = handler.parsed_fn_signature
        if "data" in signature.parameters:
            for cls in _structs_of(signature.parameters["data"].annotation):
                requests.setdefault(cls)
        for cls in _structs_of(signature.return_type.annotation):
            responses.setdefault(cls)
    pending = list(responses)
    while pending:  # the Structs the responses nest (a claim's room, an event page's events)
        cls = pending.pop(0)
        for field in msgspec.structs.fields(cls):
            for nested in _structs_of(field.type):
                if nested not in responses:
                    responses.setdefault(nested)
                    pending.append(nested)
    return list(requests), list(responses)


def render_bodies(app: Litestar) -> str:
    """Every request and response body of docs/protocol.md §2.10."""
    requests, responses = body_structs(app)
    lines = ["Request bodies (unknown fields are refused):", ""]
    for cls in requests:
        lines += [f"#### `{cls.__name__}`", "", *struct_table(cls)]
    lines += ["Response bodies (a client ignores fields it does not know):", ""]
    for cls in responses:
        lines += [f"#### `{cls.__name__}`", "", *struct_table(cls)]
    return "\n".join(lines).rstrip()


# --- the documents ----------------------------------------------------------------------------
