"""One socket's state machine, sans I/O (docs/protocol.md §3).

(Not the login session: that is ``server/access/sessions.py``; a socket
authenticates as one, and closes with 4401 when it is revoked.)

``unauthenticated -> ready -> closed``, plus the set of joined projects. The
socket's pump (``connection.py``) feeds it decoded frames and the outcomes of
the work it asked for; it answers with effects: frames to send, work to do
(authenticate, join, leave, edit, presence), or a close with its code. It
never touches a socket, a database or a clock of its own, so every rule here
is tested directly (tests/realtime/test_socket_state.py).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from enum import Enum

from server.errors import CloseCode, ErrorCode
from server.realtime import protocol as p
from server.realtime.ratelimit import TokenBucket


class Phase(Enum):
    UNAUTHENTICATED = "unauthenticated"
    READY = "ready"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-connection limits (docs/protocol.md §3.5); keyword settings with numeric defaults."""

    max_joins: int = 20
    rate: float = 50.0
    burst: float = 100.0
    max_violations: int = 50  # rate-limited frames in a row before closing with 4429
    auth_timeout_s: float = 10.0


# --- effects -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Send:
    frame: p.ServerFrame


@dataclass(frozen=True, slots=True)
class Close:
    code: CloseCode
    reason: str


@dataclass(frozen=True, slots=True)
class Authenticate:
    token: str
    ref: str | None


@dataclass(frozen=True, slots=True)
class JoinProject:
    project_id: uuid.UUID
    last_seq: int | None
    ref: str | None


@dataclass(frozen=True, slots=True)
class LeaveProject:
    project_id: uuid.UUID
    ref: str | None


@dataclass(frozen=True, slots=True)
class ApplyEdit:
    edit: p.Edit


@dataclass(frozen=True, slots=True)
class SetPresence:
    project_id: uuid.UUID
    state: dict[str, object]


Effect = Send | Close | Authenticate | JoinProject | LeaveProject | ApplyEdit | SetPresence


def _without(projects: tuple[uuid.UUID, ...], project: uuid.UUID) -> tuple[uuid.UUID, ...]:
    return (
        tuple(other for other in projects if other != project) if project in projects else projects
    )


def _error(code: ErrorCode, message: str, ref: str | None) -> Send:
    return Send(p.Error(ref=ref, code=code, message=message))


@dataclass(slots=True)
class SocketStateMachine:
    """The protocol state of one socket; ``session_id`` is the login session it runs as."""

    connection_id: str
    limits: Limits = field(default_factory=Limits)
    phase: Phase = Phase.UNAUTHENTICATED
    user: p.UserInfo | None = None
    session_id: uuid.UUID | None = None
    # Tuples, not sets: at most ``max_joins`` (20) each, and an empty or one-project
    # tuple costs 0 or 48 bytes against a set's 216 per idle socket.
    joined: tuple[uuid.UUID, ...] = ()
    joining: tuple[uuid.UUID, ...] = ()
    _bucket: TokenBucket = field(init=False)
    _violations: int = 0

    def __post_init__(self) -> None:
        self._bucket = TokenBucket(rate=self.limits.rate, burst=self.limits.burst)

    # --- inputs from the socket ---------------------------------------------------

    def receive(self, message: p.ClientFrame, now: float) -> list[Effect]:
        """A decoded client frame arrived at ``now`` (monotonic seconds)."""
        if self.phase is Phase.CLOSED:
            return []
        limited = self._over_rate(now, message.ref)
        if limited is not None:
            return limited
        if isinstance(message, p.Ping):
            return [Send(p.Pong(ref=message.ref))]
        if isinstance(message, p.Auth):
            return [Authenticate(token=message.token, ref=message.ref)]
        if self.phase is Phase.UNAUTHENTICATED:
            return [
                _error("unauthorized", "authenticate first: send {type: auth, token}", message.ref)
            ]
        if isinstance(message, p.Join):
            return self._join(message)
        if isinstance(message, p.Leave):
            self.joining = _without(self.joining, message.project_id)
            return [LeaveProject(project_id=message.project_id, ref=message.ref)]
        if isinstance(message, p.Presence):
            if message.project_id not in self.joined:
                return [
                    _error("bad_request", "join the project before sending presence", message.ref)
                ]
            return [SetPresence(project_id=message.project_id, state=message.state)]
        return [ApplyEdit(edit=message)]

    def receive_invalid(self, error: p.ProtocolError, now: float) -> list[Effect]:
        """A frame that did not decode: its error frame, unless the rate limit speaks first."""
        if self.phase is Phase.CLOSED:
            return []
        return self._over_rate(now, error.frame.ref) or [Send(error.frame)]

    def _over_rate(self, now: float, ref: str | None) -> list[Effect] | None:
        if self._bucket.take(now):
            self._violations = 0
            return None
        self._violations += 1
        if self._violations >= self.limits.max_violations:
            return self.close(CloseCode.RATE_LIMITED, "message rate limit exceeded")
        return [
            _error(
                "rate_limited",
                f"at most {self.limits.rate:g} messages a second "
                f"(burst {self.limits.burst:g}); slow down",
                ref,
            )
        ]

    def _join(self, message: p.Join) -> list[Effect]:
        project = message.project_id
        if project in self.joined or project in self.joining:
            return [
                _error(
                    "bad_request",
                    "already joined (or joining) this project; leave it first",
                    message.ref,
                )
            ]
        if len(self.joined) + len(self.joining) >= self.limits.max_joins:
            return [
                _error(
                    "too_large",
                    f"at most {self.limits.max_joins} projects per socket; leave one first",
                    message.ref,
                )
            ]
        self.joining = (*self.joining, project)
        return [JoinProject(project_id=project, last_seq=message.last_seq, ref=message.ref)]

    # --- outcomes of the work the handler did ----------------------------------------

    def authenticated(
        self, user: p.UserInfo, session_id: uuid.UUID, ref: str | None
    ) -> list[Effect]:
        """The token checked out: ready (again). A socket never changes user."""
        if self.phase is Phase.CLOSED:
            return []
        if self.user is not None and self.user.id != user.id:
            return [
                _error(
                    "unauthorized",
                    "this socket belongs to another user; open a new socket to switch users",
                    ref,
                )
            ]
        self.user, self.session_id, self.phase = user, session_id, Phase.READY
        return [
            Send(
                p.Ready(
                    protocol=p.PROTOCOL_VERSION,
                    connection_id=self.connection_id,
                    user=user,
                    ref=ref,
                )
            )
        ]

    def authentication_failed(self) -> list[Effect]:
        """A bad token: close 4401 (the client signs in again)."""
        return self.close(CloseCode.UNAUTHORIZED, "invalid or expired token")

    def auth_deadline(self) -> list[Effect]:
        """The auth timeout passed: close 4401 unless authenticated by now."""
        if self.phase is Phase.UNAUTHENTICATED:
            return self.close(
                CloseCode.UNAUTHORIZED, f"no auth within {self.limits.auth_timeout_s:g} s"
            )
        return []

    def join_done(self, project_id: uuid.UUID) -> None:
        """The join completed (``joined`` was sent)."""
        if project_id in self.joining:
            self.joining = _without(self.joining, project_id)
            self.joined = (*self.joined, project_id)

    def join_failed(self, project_id: uuid.UUID) -> None:
        self.joining = _without(self.joining, project_id)

    def left(self, project_id: uuid.UUID) -> None:
        """The socket no longer follows the project (left, or access revoked)."""
        self.joined = _without(self.joined, project_id)
        self.joining = _without(self.joining, project_id)

    def session_revoked(self, session_ids: set[uuid.UUID]) -> list[Effect]:
        """Logout or revocation somewhere: close 4401 if it is this socket's session."""
        if self.session_id is not None and self.session_id in session_ids:
            return self.close(CloseCode.UNAUTHORIZED, "session revoked")
        return []

    def close(self, code: CloseCode, reason: str) -> list[Effect]:
        """Close once; later calls do nothing."""
        if self.phase is Phase.CLOSED:
            return []
        self.phase = Phase.CLOSED
        return [Close(code=code, reason=reason)]
