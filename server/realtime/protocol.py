"""The WebSocket wire protocol of docs/protocol.md §3, sans I/O.

Every client and server message is a ``msgspec.Struct`` in a tagged union on
``type``. One module-level decoder turns a text frame into a client message
or a :class:`ProtocolError` carrying the ``error`` frame to send back, with a
message a client author can act on; one encoder turns server messages into
bytes. Nothing here touches a socket.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

import msgspec

from server.errors import ErrorCode

PROTOCOL_VERSION = 1
MAX_FRAME_BYTES = 64 * 1024  # larger frames close the socket with 1009 (docs/protocol.md §3.5)
MAX_PRESENCE_STATE_BYTES = 2 * 1024  # docs/protocol.md §3.4

Ref = Annotated[str, msgspec.Meta(max_length=64)]
OpId = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Token = Annotated[str, msgspec.Meta(min_length=1, max_length=512)]
Seq = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]
Version = Annotated[int, msgspec.Meta(ge=1, le=2**31 - 1)]
EditAction = Literal["create", "update", "delete"]
EditEntity = Literal["project", "room", "item"]
JoinMode = Literal["snapshot", "replay"]


class ClientMessage(msgspec.Struct, tag_field="type", forbid_unknown_fields=True, kw_only=True):
    """A frame a client sends; unknown fields are refused (docs/protocol.md §0)."""

    ref: Ref | None = None


class Auth(ClientMessage, tag="auth"):
    """Authenticate the socket with a session token (again: move to a fresh session)."""

    token: Token


class Join(ClientMessage, tag="join"):
    """Follow a project: a snapshot or the events after ``last_seq``, then live ones."""

    project_id: uuid.UUID
    last_seq: Seq | None = None


class Leave(ClientMessage, tag="leave"):
    """Stop following a project."""

    project_id: uuid.UUID


class Edit(ClientMessage, tag="edit"):
    """A versioned change: create, update or delete a room or an item; update the project."""

    project_id: uuid.UUID
    op_id: OpId
    action: EditAction
    entity: EditEntity
    id: uuid.UUID | None = None
    base_version: Version | None = None
    room_id: uuid.UUID | None = None
    data: dict[str, Any] | None = None


class Presence(ClientMessage, tag="presence"):
    """This connection's presence state in a joined project (cursor, selection)."""

    project_id: uuid.UUID
    state: dict[str, Any]


class Ping(ClientMessage, tag="ping"):
    """Ask for a ``pong`` (a liveness check the application can see)."""


ClientFrame = Auth | Join | Leave | Edit | Presence | Ping


class ServerMessage(msgspec.Struct, tag_field="type", kw_only=True):
    """A frame the server sends."""


class UserInfo(msgspec.Struct):
    """The signed-in user, as ``ready`` names it."""

    id: uuid.UUID
    name: str
    email: str


class Ready(ServerMessage, tag="ready", omit_defaults=True, kw_only=True):
    """The socket is authenticated (after ``auth``, or the handshake's credentials)."""

    protocol: int  # always PROTOCOL_VERSION; required so it is never omitted
    connection_id: str
    user: UserInfo
    ref: str | None = None


class PresenceEntry(msgspec.Struct):
    """One connection in a project's presence map."""

    user_id: uuid.UUID
    name: str
    state: dict[str, Any]


class Joined(ServerMessage, tag="joined", omit_defaults=True, kw_only=True):
    """The answer to ``join``: its seq, presence, and a snapshot (or a replay follows)."""

    ref: str | None = None
    project_id: uuid.UUID
    seq: int
    mode: JoinMode
    # Raw: encoded once and shared by the joins that read it (server/realtime/presence.py,
    # server/realtime/snapshots.py); a client decodes the JSON object either way.
    presence: dict[str, PresenceEntry] | msgspec.Raw
    snapshot: dict[str, Any] | msgspec.Raw | None = None


class Left(ServerMessage, tag="left", omit_defaults=True, kw_only=True):
    """The socket no longer follows the project: ``leave`` answered, or access revoked."""

    ref: str | None = None
    project_id: uuid.UUID
    reason: Literal["access_revoked"] | None = None


class EventFrame(ServerMessage, tag="event"):
    """One event of a project's log: in seq order, exactly once."""

    project_id: uuid.UUID
    seq: int
    kind: str
    entity: str
    id: uuid.UUID
    version: int | None
    data: dict[str, Any]
    actor_id: uuid.UUID | None
    op_id: str | None
    at: str


class Ack(ServerMessage, tag="ack"):
    """An edit committed (``merged``: over a stale base, by the field rule)."""

    ref: str | None
    op_id: str
    id: uuid.UUID
    version: int | None
    seq: int
    merged: bool


class Conflict(ServerMessage, tag="conflict"):
    """An edit refused: later versions changed its fields. Nothing was written."""

    ref: str | None
    op_id: str
    entity: str
    id: uuid.UUID
    base_version: int | None
    current_version: int | None
    current: dict[str, Any] | None
    fields: list[str]


class PresenceDiff(ServerMessage, tag="presence_diff"):
    """Presence changes: entries added or replaced (``joins``), removed (``leaves``)."""

    project_id: uuid.UUID
    joins: dict[str, PresenceEntry]
    leaves: dict[str, PresenceEntry]


class Error(ServerMessage, tag="error", omit_defaults=True, kw_only=True):
    """A message the server could not accept or carry out; the socket stays open."""

    ref: str | None = None
    code: ErrorCode
    message: str


class Pong(ServerMessage, tag="pong", omit_defaults=True, kw_only=True):
    """The answer to ``ping``."""

    ref: str | None = None


ServerFrame = Ready | Joined | Left | EventFrame | Ack | Conflict | PresenceDiff | Error | Pong


class ProtocolError(Exception):
    """A frame the server cannot accept; ``frame`` is the ``error`` reply to send."""

    def __init__(self, code: ErrorCode, message: str, ref: str | None = None) -> None:
        super().__init__(message)
        self.frame = Error(ref=ref, code=code, message=message)


_decoder: msgspec.json.Decoder[ClientFrame] = msgspec.json.Decoder(ClientFrame)
_server_decoder: msgspec.json.Decoder[ServerFrame] = msgspec.json.Decoder(ServerFrame)
_encoder = msgspec.json.Encoder()
_TYPES = ("auth", "join", "leave", "edit", "presence", "ping")


def _salvage_ref(raw: bytes | str) -> str | None:
    """The ``ref`` of a frame that failed validation, when it is itself valid."""
    try:
        value = msgspec.json.decode(raw)
    except (msgspec.DecodeError, RecursionError):
        return None
    ref = value.get("ref") if isinstance(value, dict) else None
    return ref if isinstance(ref, str) and len(ref) <= 64 else None


def decode(raw: bytes | str) -> ClientFrame:
    """Decode one client text frame.

    Raises:
        ProtocolError: malformed JSON, an unknown ``type``, a wrong or missing
            field, an unknown field, or an oversized value; its ``frame`` says
            which, with the offending path.
    """
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogatepass")
    if len(raw) > MAX_FRAME_BYTES:
        raise ProtocolError("too_large", f"frame is {len(raw)} bytes; the limit is 65536")
    try:
        message = _decoder.decode(raw)
    except msgspec.ValidationError as exc:
        text = str(exc)
        if "`$.type`" in text or "missing required field `type`" in text:
            text = f"{text}; type must be one of {', '.join(_TYPES)}"
        raise ProtocolError("bad_request", text, _salvage_ref(raw)) from None
    except msgspec.DecodeError as exc:
        raise ProtocolError("bad_request", f"not a JSON object: {exc}") from None
    except RecursionError:
        # msgspec gives up on very deep nesting; the frame is refused, the socket lives.
        raise ProtocolError("bad_request", "JSON nested too deeply") from None
    if isinstance(message, Presence):
        size = len(_encoder.encode(message.state))
        if size > MAX_PRESENCE_STATE_BYTES:
            raise ProtocolError(
                "too_large",
                f"presence state is {size} bytes; the limit is {MAX_PRESENCE_STATE_BYTES}",
                message.ref,
            )
    return message


def binary_frame_error() -> ProtocolError:
    """The reply to a binary frame (docs/protocol.md §3.5: a bad message)."""
    return ProtocolError(
        "bad_request", "binary frames are not part of the protocol; send JSON text"
    )


def encode(message: ServerFrame) -> bytes:
    """Encode a server message once; the bytes go to every subscriber as they are."""
    return _encoder.encode(message)


# --- the client side (server/client/) --------------------------------------------------


def encode_client(message: ClientFrame) -> bytes:
    """Encode a client message (the Python client's half of the contract)."""
    return _encoder.encode(message)


def decode_server(raw: bytes | str) -> ServerFrame:
    """Decode one server text frame (for clients).

    Fields a later server adds are ignored, so an older client keeps working.

    Raises:
        msgspec.ValidationError: the frame breaks the contract of docs/protocol.md §3.
        msgspec.DecodeError: the frame is not JSON.
    """
    return _server_decoder.decode(raw)
