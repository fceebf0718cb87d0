"""Make the OpenAPI document describe the errors the server really sends (docs/protocol.md §2.1).

Litestar documents each handler's success response and, for handlers with
input, a 400 in its own ``{status_code, detail, extra}`` JSON shape. Every
error this server sends is RFC 9457 ``application/problem+json`` instead
(``server/http/problems.py``), and most calls can also answer 401, 403 or
404. :func:`document_problems` rewrites the built document once, from what
each route declares, so clients and the Schemathesis fuzz test
(``tests/api/test_openapi_fuzz.py``) read the truth:

- a ``Problem`` schema component;
- 400 on every operation that takes a parameter or a body;
- 401 and 403 on every operation that needs a signed-in caller or a
  service-account key (the worker API);
- 404 on every operation with a path parameter (an unknown id, or one that
  is not a UUID and so matches no route);
- ``default``: any other error (402, 409, 410, 413, 422, 429, 5xx), as a Problem;
- no body on a 204 (RFC 9110 15.3.5; Litestar documents ``Response[None]``
  as a JSON ``null``);
- ``additionalProperties: false`` on every request body that forbids unknown
  fields (docs/protocol.md §0: they are rejected, never stored), which Litestar
  leaves out.
"""

from __future__ import annotations

from typing import get_args

from litestar import Litestar
from litestar.openapi.spec import (
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Reference,
    Schema,
)
from litestar.routes import HTTPRoute

from server.errors import ErrorCode
from server.http.problems import PROBLEM_JSON
from server.http.schemas import Body

PROBLEM_SCHEMA = Schema(
    type=OpenAPIType.OBJECT,
    required=["type", "status", "title", "detail", "code"],
    properties={
        "type": Schema(type=OpenAPIType.STRING),
        "status": Schema(type=OpenAPIType.INTEGER),
        "title": Schema(type=OpenAPIType.STRING),
        "detail": Schema(type=OpenAPIType.STRING),
        "code": Schema(type=OpenAPIType.STRING, enum=list(get_args(ErrorCode))),
    },
    # Extension members: ``errors`` (validation), ``retry_after`` (429), the
    # conflict frame of docs/protocol.md §3.3 (409), ``checks`` (503 from /readyz).
    additional_properties=True,
    description="An RFC 9457 problem; `code` is one of docs/protocol.md §4.",
)

_DESCRIPTIONS = {
    400: "A parameter or the body failed validation; `detail` names the field (`bad_request`).",
    401: "No live session (or, on /api/worker, no valid service-account key) (`unauthorized`).",
    403: "Not allowed, or a project the caller cannot read (`forbidden`); a user's "
    "credentials on the worker API.",
    404: "No such resource, or an id that is not a UUID (`not_found`).",
}
_DEFAULT_DESCRIPTION = (
    "Any other error, as a Problem: 402 `payment_required`, 409 `conflict`, 410 `not_found` "
    "(gone), 413 `too_large`, 422 `bad_request`, 429 `rate_limited`, 5xx `internal`."
)
_METHODS = ("get", "put", "post", "delete", "patch")


def _problem(description: str) -> OpenAPIResponse:
    schema = Reference(ref="#/components/schemas/Problem")
    return OpenAPIResponse(
        description=description, content={PROBLEM_JSON: OpenAPIMediaType(schema=schema)}
    )


def _authenticated(app: Litestar) -> set[tuple[str, str]]:
    """(path, method) of every handler that takes the signed-in ``caller`` or a ``worker``."""
    return {
        (route.path_format, method.lower())
        for route in app.routes
        if isinstance(route, HTTPRoute)
        for handler in route.route_handlers
        if {"caller", "worker"} & handler.parsed_fn_signature.parameters.keys()
        for method in handler.http_methods
    }


def _closed_bodies() -> set[str]:
    """Names of the request-body Structs that reject unknown fields."""
    found: set[str] = set()
    pending: list[type[Body]] = [Body]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if cls.__struct_config__.forbid_unknown_fields:
            found.add(cls.__name__)
    return found


def _error_statuses(operation: Operation, authenticated: bool) -> list[int]:
    parameters = [p for p in operation.parameters or () if not isinstance(p, Reference)]
    statuses = []
    if parameters or operation.request_body is not None:
        statuses.append(400)
    if authenticated:
        statuses += [401, 403]
    if any(p.param_in == "path" for p in parameters):
        statuses.append(404)
    return statuses


def document_problems(app: Litestar) -> None:
    """Rewrite ``app``'s OpenAPI document so its error responses are the real ones."""
    document = app.openapi_schema
    schemas = document.components.schemas
    schemas["Problem"] = PROBLEM_SCHEMA
    for name in _closed_bodies() & schemas.keys():
        schemas[name].additional_properties = False
    authenticated = _authenticated(app)
    for path, item in (document.paths or {}).items():
        for method in _METHODS:
            operation: Operation | None = getattr(item, method)
            if operation is None or operation.responses is None:
                continue
            responses = operation.responses
            for status, response in list(responses.items()):
                if status.isdigit() and int(status) >= 400:
                    del responses[status]  # Litestar's own error shape, which we never send
                elif status == "204" and isinstance(response, OpenAPIResponse):
                    response.content = None
            for status_code in _error_statuses(operation, (path, method) in authenticated):
                responses[str(status_code)] = _problem(_DESCRIPTIONS[status_code])
            responses["default"] = _problem(_DEFAULT_DESCRIPTION)
