"""The Python client: one implementation of the protocol on the client side.

Used by the worker (``worker_api``), by tests and by the load tests; it speaks
the same msgspec protocol module as the server (docs/protocol.md). ``RestClient``
is the REST half, ``Client`` the realtime half; docs/python-client.md shows
both at work.
"""

from server.client.errors import (
    ApiError,
    ClientError,
    Closed,
    EditConflict,
    EventsOverflow,
    QueueFull,
    ServerRefused,
    Unauthorized,
)
from server.client.pending import EditResult, new_op_id
from server.client.realtime import Client
from server.client.rest import RestClient
from server.client.state import Applied, ProjectState
from server.client.stream import EventStream
from server.concurrency.backoff import Backoff

__all__ = [
    "ApiError",
    "Applied",
    "Backoff",
    "Client",
    "ClientError",
    "Closed",
    "EditConflict",
    "EditResult",
    "EventStream",
    "EventsOverflow",
    "ProjectState",
    "QueueFull",
    "RestClient",
    "ServerRefused",
    "Unauthorized",
    "new_op_id",
]
