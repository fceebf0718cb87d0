"""The client's one exception tree (one root for all of them)."""

from __future__ import annotations

from typing import Any

from server.realtime import protocol as p


class ClientError(Exception):
    """Root of every error the Python client raises."""


class ApiError(ClientError):
    """A REST call answered with an RFC 9457 problem (docs/protocol.md §2.1).

    ``code`` is the problem's ``code`` member (docs/protocol.md §4), ``problem``
    the whole body (a 409 conflict carries the conflict members there).
    """

    def __init__(self, status: int, code: str | None, detail: str, problem: dict[str, Any]) -> None:
        super().__init__(f"{status} {code}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail
        self.problem = problem


class Unauthorized(ClientError):
    """The socket's credentials were refused (close 4401); the client does not retry."""


class ServerRefused(ClientError):
    """The server answered a request with an ``error`` frame (docs/protocol.md §3.5)."""

    def __init__(self, frame: p.Error) -> None:
        super().__init__(f"{frame.code}: {frame.message}")
        self.code = frame.code
        self.message = frame.message


class EditConflict(ClientError):
    """An edit that could not be rebased (the entity is gone, or rebasing kept failing).

    ``conflict`` is the server's last conflict frame (docs/protocol.md §3.3).
    """

    def __init__(self, conflict: p.Conflict, reason: str) -> None:
        super().__init__(f"{conflict.entity} {conflict.id}: {reason}")
        self.conflict = conflict
        self.reason = reason


class QueueFull(ClientError):
    """Too many edits are waiting for an answer (``max_pending``); retry after some settle."""


class EventsOverflow(ClientError):
    """An event iterator fell more than its buffer behind; events were not skipped silently."""


class Closed(ClientError):
    """The client was closed; nothing more will be sent or received."""
