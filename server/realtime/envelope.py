"""What instances tell each other over the bus (docs/architecture.md §3.5).

Event and presence envelopes carry the already-encoded client frame as raw
JSON (``msgspec.Raw``): the publishing instance encodes it once, and every
receiving instance writes those bytes to its sockets without re-encoding.
"""

from __future__ import annotations

import uuid

import msgspec


class Envelope(msgspec.Struct, tag_field="k", kw_only=True):
    """A bus message."""


class EventEnvelope(Envelope, tag="ev"):
    """A committed event of a project: its seq and the encoded ``event`` frame."""

    project_id: uuid.UUID
    seq: int
    frame: msgspec.Raw
    published_at: float = 0.0  # wall clock at publish: the fan-out latency metric


class PresenceEnvelope(Envelope, tag="pr"):
    """A ``presence_diff`` frame, not echoed to the connections that caused it.

    ``source``: a connection that gets nothing of it. ``sources``: connections
    whose own entries are among the frame's joins (a coalesced batch,
    server/realtime/presence_batch.py); each gets the frame without its own
    entry. An instance that knows only ``source`` skips ``sources`` (unknown
    fields are ignored): they are the publisher's sockets, never its own.
    """

    project_id: uuid.UUID
    source: str | None
    frame: msgspec.Raw
    sources: list[str] = msgspec.field(default_factory=list)


class SessionsRevoked(Envelope, tag="sr"):
    """These sessions ended (logout, revocation, erasure): close their sockets with 4401."""

    session_ids: list[uuid.UUID]


class AccessChanged(Envelope, tag="ac"):
    """Re-check these users' access to the project (None: everyone's)."""

    project_id: uuid.UUID
    user_ids: list[uuid.UUID] | None


AnyEnvelope = EventEnvelope | PresenceEnvelope | SessionsRevoked | AccessChanged

_decoder: msgspec.json.Decoder[AnyEnvelope] = msgspec.json.Decoder(AnyEnvelope)
_encoder = msgspec.json.Encoder()

# The broker puts MOODBOARD_REDIS_PREFIX before them. The project id is the
# channel's hash tag: on a Redis Cluster it sits in the slot of the project's
# presence keys, and each project's sharded channel is served by one shard.
CONTROL_CHANNEL = "control"


def project_channel(project_id: uuid.UUID) -> str:
    return f"p:{{{project_id}}}"


def encode(envelope: AnyEnvelope) -> bytes:
    return _encoder.encode(envelope)


def decode(payload: bytes) -> AnyEnvelope:
    """Decode a bus payload (raises msgspec errors on garbage: the bus is ours)."""
    return _decoder.decode(payload)
