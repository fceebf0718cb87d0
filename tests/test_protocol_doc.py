"""docs/protocol.md and docs/architecture.md are in step with the code they document."""

from __future__ import annotations

from typing import get_args

import pytest
from litestar import Litestar

from server import protocol_doc, protocol_doc_rest
from server.errors import CloseCode, ErrorCode
from server.realtime import envelope, protocol
from tests.api.test_authz_matrix import CALLERS, EXPECTED, expected_statuses

# who may call (the ROUTES table's words) -> the callers of the authz matrix who succeed
_SUCCEEDS = {
    "anyone": set(CALLERS),
    "signed in": set(CALLERS) - {"anonymous", "service"},
    "viewer": {"viewer", "editor", "team_editor", "owner"},
    "editor": {"editor", "team_editor", "owner"},
    "owner": {"owner"},
    "team member": {"team_editor", "owner"},
    "team owner": {"owner"},
    "admin": {"admin"},
    "worker key": {"service"},
    "loopback peers, or the metrics token": set(CALLERS),  # the matrix calls from loopback
}


@pytest.fixture(scope="module")
def app() -> Litestar:
    return protocol_doc._app()


def test_protocol_doc_is_up_to_date(app: Litestar) -> None:
    """Regenerating the reference parts of docs/protocol.md changes nothing."""
    current = protocol_doc.PROTOCOL_DOC.read_text()
    assert protocol_doc.updated_protocol(current, app) == current, (
        "run: .venv/bin/python -m server.protocol_doc"
    )


def test_architecture_doc_is_up_to_date() -> None:
    """Regenerating the bus messages of docs/architecture.md changes nothing."""
    current = protocol_doc.ARCHITECTURE_DOC.read_text()
    assert protocol_doc.updated_architecture(current) == current, (
        "run: .venv/bin/python -m server.protocol_doc"
    )


def test_every_route_is_described(app: Litestar) -> None:
    """Each REST route has a row in ROUTES (who may call it, its failures), and each row a route."""
    routes = {f"{method} {path}" for method, path, _ in protocol_doc_rest.api_handlers(app)}
    described = set(protocol_doc_rest.ROUTES)
    assert routes == described, (
        f"undescribed: {sorted(routes - described)}; described but gone: "
        f"{sorted(described - routes)}"
    )


def test_who_may_call_agrees_with_the_authorization_matrix(app: Litestar) -> None:
    """The documented caller of each route is exactly who the authz matrix lets through."""
    for method, path, handler in protocol_doc_rest.api_handlers(app):
        who = protocol_doc_rest.ROUTES[f"{method} {path}"][0].split(" (")[0]
        kind = protocol_doc_rest.credentials(handler)
        assert (who == "worker key") == (kind == "worker"), f"{method} {path}: {who} vs {kind}"
        if (method, path) not in EXPECTED:
            assert who == "anyone", f"{method} {path} is public in the matrix"
            continue
        statuses = expected_statuses((method, path))
        succeed = {caller for caller, status in statuses.items() if status < 300}
        assert succeed == _SUCCEEDS[who], f"{method} {path}: documented {who!r}, matrix {succeed}"


def test_every_error_and_close_code_is_described() -> None:
    """ERROR_MEANINGS covers exactly ErrorCode, CLOSE_MEANINGS exactly CloseCode."""
    assert set(protocol_doc.ERROR_MEANINGS) == set(get_args(ErrorCode))
    assert set(protocol_doc.CLOSE_MEANINGS) == set(CloseCode)
    for code in get_args(ErrorCode):
        assert protocol_doc.http_statuses(code), f"{code}: no HTTP status carries it"


def test_every_frame_and_bus_message_says_what_it_is() -> None:
    """Each frame and bus message Struct has its own docstring (the reference shows it)."""
    unions = (protocol.ClientFrame, protocol.ServerFrame, envelope.AnyEnvelope)
    for cls in (member for union in unions for member in get_args(union)):
        assert cls.__doc__, f"{cls.__name__}: no docstring"
        assert cls.__doc__ != cls.__mro__[1].__doc__, f"{cls.__name__}: only its base's docstring"
