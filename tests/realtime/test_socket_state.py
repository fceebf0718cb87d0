"""The socket state machine: what a socket may do in each phase, and its limits (pure)."""

from __future__ import annotations

import uuid

from server.errors import CloseCode
from server.realtime import protocol as p
from server.realtime.socket_state import (
    ApplyEdit,
    Authenticate,
    Close,
    JoinProject,
    LeaveProject,
    Limits,
    Phase,
    Send,
    SetPresence,
    SocketStateMachine,
)

USER = p.UserInfo(id=uuid.uuid4(), name="Ada", email="ada@example.com")
SESSION = uuid.uuid4()


def ready(limits: Limits | None = None) -> SocketStateMachine:
    machine = SocketStateMachine("c1", limits or Limits())
    machine.authenticated(USER, SESSION, None)
    return machine


def only_frame(effects: list[object]) -> p.ServerFrame:
    assert len(effects) == 1
    effect = effects[0]
    assert isinstance(effect, Send)
    return effect.frame


def test_auth_then_ready_with_the_ref() -> None:
    """An auth frame asks to check the token; success answers ready with the same ref."""
    machine = SocketStateMachine("c1")
    assert machine.receive(p.Auth(token="t", ref="a1"), 0.0) == [Authenticate("t", "a1")]
    frame = only_frame(machine.authenticated(USER, SESSION, "a1"))
    assert frame == p.Ready(protocol=1, connection_id="c1", user=USER, ref="a1")
    assert machine.phase is Phase.READY


def test_nothing_but_auth_and_ping_before_authentication() -> None:
    """Before auth, ping answers pong and everything else is an unauthorized error."""
    machine = SocketStateMachine("c1")
    assert only_frame(machine.receive(p.Ping(ref="p"), 0.0)) == p.Pong(ref="p")
    pid = uuid.uuid4()
    for message in (p.Join(project_id=pid, ref="j"), p.Presence(project_id=pid, state={})):
        frame = only_frame(machine.receive(message, 0.0))
        assert isinstance(frame, p.Error)
        assert (frame.code, frame.ref) == ("unauthorized", message.ref)


def test_bad_token_and_timeout_close_4401() -> None:
    """A failed authentication or the auth deadline closes with 4401, once."""
    machine = SocketStateMachine("c1")
    assert machine.authentication_failed() == [
        Close(CloseCode.UNAUTHORIZED, "invalid or expired token")
    ]
    assert machine.auth_deadline() == []  # already closed: no second close
    late = SocketStateMachine("c2")
    assert isinstance(late.auth_deadline()[0], Close)
    assert ready().auth_deadline() == []  # authenticated in time: nothing happens


def test_reauth_keeps_the_user() -> None:
    """auth again with a fresh token for the same user answers ready; another user is refused."""
    machine = ready()
    new_session = uuid.uuid4()
    assert isinstance(only_frame(machine.authenticated(USER, new_session, "r")), p.Ready)
    assert machine.session_id == new_session
    other = p.UserInfo(id=uuid.uuid4(), name="Bo", email="bo@example.com")
    frame = only_frame(machine.authenticated(other, uuid.uuid4(), "r2"))
    assert isinstance(frame, p.Error)
    assert machine.user == USER


def test_join_limit_counts_pending_joins() -> None:
    """At most max_joins projects per socket, counting joins still in progress."""
    machine = ready(Limits(max_joins=2))
    a, b, c = (uuid.uuid4() for _ in range(3))
    assert machine.receive(p.Join(project_id=a), 0.0) == [JoinProject(a, None, None)]
    assert machine.receive(p.Join(project_id=b, last_seq=3, ref="j"), 0.0) == [
        JoinProject(b, 3, "j")
    ]
    frame = only_frame(machine.receive(p.Join(project_id=c, ref="j3"), 0.0))
    assert isinstance(frame, p.Error)
    assert frame.code == "too_large"
    machine.join_failed(a)
    assert machine.receive(p.Join(project_id=c), 0.0) == [JoinProject(c, None, None)]


def test_double_join_is_refused_and_leave_frees_the_slot() -> None:
    """Joining a project twice is a bad request; after leaving it can be joined again."""
    machine = ready()
    pid = uuid.uuid4()
    machine.receive(p.Join(project_id=pid), 0.0)
    machine.join_done(pid)
    assert isinstance(only_frame(machine.receive(p.Join(project_id=pid), 0.0)), p.Error)
    assert machine.receive(p.Leave(project_id=pid, ref="l"), 0.0) == [LeaveProject(pid, "l")]
    machine.left(pid)
    assert machine.receive(p.Join(project_id=pid), 0.0) == [JoinProject(pid, None, None)]


def test_presence_needs_a_joined_project_and_edits_go_through() -> None:
    """Presence for an unjoined project is refused; edits become work for the handler."""
    machine = ready()
    pid = uuid.uuid4()
    frame = only_frame(machine.receive(p.Presence(project_id=pid, state={"x": 1}), 0.0))
    assert isinstance(frame, p.Error)
    machine.receive(p.Join(project_id=pid), 0.0)
    machine.join_done(pid)
    assert machine.receive(p.Presence(project_id=pid, state={"x": 1}), 0.0) == [
        SetPresence(pid, {"x": 1})
    ]
    edit = p.Edit(project_id=pid, op_id="o", action="delete", entity="item", id=pid, base_version=1)
    assert machine.receive(edit, 0.0) == [ApplyEdit(edit)]


def test_rate_limit_errors_then_closes_4429() -> None:
    """Past the burst, frames get rate_limited errors; if it goes on, the socket closes 4429."""
    machine = ready(Limits(rate=10, burst=5, max_violations=3))
    pings = [machine.receive(p.Ping(ref=str(i)), 0.0) for i in range(5)]
    assert all(isinstance(only_frame(e), p.Pong) for e in pings)
    first = only_frame(machine.receive(p.Ping(ref="x"), 0.0))
    assert isinstance(first, p.Error)
    assert (first.code, first.ref) == ("rate_limited", "x")
    assert isinstance(only_frame(machine.receive(p.Ping(), 0.0)), p.Error)
    assert machine.receive(p.Ping(), 0.0) == [
        Close(CloseCode.RATE_LIMITED, "message rate limit exceeded")
    ]
    assert machine.receive(p.Ping(), 0.0) == []


def test_rate_recovers_with_time() -> None:
    """After a pause the bucket refills: the same client may send again."""
    machine = ready(Limits(rate=10, burst=2, max_violations=100))
    for _ in range(2):
        machine.receive(p.Ping(), 0.0)
    assert isinstance(only_frame(machine.receive(p.Ping(), 0.0)), p.Error)
    assert isinstance(only_frame(machine.receive(p.Ping(), 0.2)), p.Pong)


def test_invalid_frames_count_against_the_rate() -> None:
    """Malformed frames get their error frame, and a flood of them is rate limited too."""
    machine = ready(Limits(rate=1, burst=1, max_violations=2))
    error = p.ProtocolError("bad_request", "nope", "r")
    assert only_frame(machine.receive_invalid(error, 0.0)) == error.frame
    limited = only_frame(machine.receive_invalid(error, 0.0))
    assert isinstance(limited, p.Error)
    assert limited.code == "rate_limited"
    assert isinstance(machine.receive_invalid(error, 0.0)[0], Close)


def test_revoked_session_closes_only_its_sockets() -> None:
    """A revocation closes the socket of that login session with 4401, and no other."""
    machine = ready()
    assert machine.session_revoked({uuid.uuid4()}) == []
    assert machine.session_revoked({SESSION}) == [Close(CloseCode.UNAUTHORIZED, "session revoked")]


def test_outbox_is_bounded_by_frames_and_size() -> None:
    """The outbound queue refuses frames past its frame or size bound and queues nothing then."""
    from server.realtime.outbox import Outbox

    box = Outbox(max_frames=3, max_bytes=10)
    assert [box.offer("ab") for _ in range(3)] == [True, True, True]
    assert box.offer("x") is False  # frame bound
    assert (len(box), box.size) == (3, 6)
    small = Outbox(max_frames=100, max_bytes=10)
    assert small.offer("123456") is True
    assert small.offer("12345") is False  # size bound
    assert (len(small), small.size) == (1, 6)
    small.close()
    assert small.offer("1") is False
