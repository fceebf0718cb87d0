"""The wire protocol module: every client frame decodes or becomes an error frame, never a crash."""

from __future__ import annotations

import json
import uuid

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.realtime import protocol as p

PID = uuid.UUID("6d5c1f5e-0b1e-4c55-9d7c-8f2f4c9b1a11")
DEEP = '{"a":' * 9000 + "1" + "}" * 9000  # deeper than msgspec's decoder goes

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)


@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_arbitrary_bytes_never_crash_the_decoder(raw: bytes) -> None:
    """Any input decodes to a client message or raises ProtocolError with an error frame."""
    try:
        message = p.decode(raw)
    except p.ProtocolError as exc:
        frame = json.loads(p.encode(exc.frame))
        assert frame["type"] == "error"
        assert frame["code"] in ("bad_request", "too_large")
        assert frame["message"]
    else:
        assert isinstance(message, p.ClientFrame)


@given(
    kind=st.sampled_from(["auth", "join", "leave", "edit", "presence", "ping", "nope", None]),
    fields=st.dictionaries(
        st.sampled_from(
            [
                "ref",
                "token",
                "project_id",
                "last_seq",
                "op_id",
                "action",
                "entity",
                "id",
                "base_version",
                "data",
                "state",
                "room_id",
                "extra",
            ]
        ),
        json_values,
        max_size=6,
    ),
)
@settings(max_examples=300)
def test_wrong_types_and_unknown_fields_are_errors(
    kind: str | None, fields: dict[str, object]
) -> None:
    """Frames with the wrong shapes give bad_request, and keep a valid ref for correlation."""
    frame = dict(fields)
    if kind is not None:
        frame["type"] = kind
    raw = json.dumps(frame).encode()
    try:
        p.decode(raw)
        error = None
    except p.ProtocolError as exc:
        error = exc.frame
    ref = frame.get("ref")
    if error is not None and isinstance(ref, str) and len(ref) <= 64:
        assert error.ref == ref


@pytest.mark.parametrize(
    "message",
    [
        p.Auth(token="mbs_x", ref="a"),
        p.Join(project_id=PID, last_seq=41, ref="j1"),
        p.Join(project_id=PID),
        p.Leave(project_id=PID, ref="l1"),
        p.Edit(
            project_id=PID,
            op_id="c-123",
            action="update",
            entity="item",
            id=PID,
            base_version=6,
            data={"x": 10, "y": 20},
            ref="e1",
        ),
        p.Presence(project_id=PID, state={"cursor": {"x": 1, "y": 2}, "selection": ["I"]}),
        p.Ping(ref="p"),
    ],
)
def test_valid_frames_round_trip(message: p.ClientFrame) -> None:
    """The examples of docs/protocol.md §3 decode to the message they describe."""
    assert p.decode(msgspec.json.encode(message)) == message


@pytest.mark.parametrize(
    ("raw", "code", "fragment"),
    [
        ('{"type":"nope"}', "bad_request", "type must be one of"),
        ('{"type":"ping","ref":"x","extra":1}', "bad_request", "unknown field `extra`"),
        ('{"type":"join","ref":"j","project_id":"zz"}', "bad_request", "$.project_id"),
        (
            f'{{"type":"edit","project_id":"{PID}","action":"update","entity":"item"}}',
            "bad_request",
            "op_id",
        ),
        ('{"type":"ping","ref":"%s"}' % ("r" * 65), "bad_request", "$.ref"),
        ("[1, 2]", "bad_request", "Expected `object`"),
        ("{bad json", "bad_request", "malformed"),
        (
            '{{"type":"presence","project_id":"{}","state":{{"a":"{}"}}}}'.format(PID, "x" * 3000),
            "too_large",
            "limit is 2048",
        ),
        ('{"type":"ping","pad":"%s"}' % ("x" * 70_000), "too_large", "65536"),
        (
            f'{{"type":"presence","project_id":"{PID}","state":{DEEP}}}',
            "bad_request",
            "nested too deeply",
        ),
    ],
)
def test_malformed_frames_say_what_is_wrong(raw: str, code: str, fragment: str) -> None:
    """Each malformed frame maps to an error code and a message naming the problem."""
    with pytest.raises(p.ProtocolError) as caught:
        p.decode(raw)
    assert caught.value.frame.code == code
    assert fragment in caught.value.frame.message


def test_server_frames_match_the_contract() -> None:
    """Server frames encode as docs/protocol.md §3.6 shows them (type tag, omitted empties)."""
    user = p.UserInfo(id=PID, name="Ada", email="ada@example.com")
    ready = json.loads(p.encode(p.Ready(protocol=1, connection_id="c1", user=user)))
    assert ready == {
        "type": "ready",
        "protocol": 1,
        "connection_id": "c1",
        "user": {"id": str(PID), "name": "Ada", "email": "ada@example.com"},
    }
    assert json.loads(p.encode(p.Pong(ref="p"))) == {"type": "pong", "ref": "p"}
    left = json.loads(p.encode(p.Left(project_id=PID, reason="access_revoked")))
    assert left == {"type": "left", "project_id": str(PID), "reason": "access_revoked"}
    error = json.loads(p.encode(p.binary_frame_error().frame))
    assert error["code"] == "bad_request"
    assert "binary" in error["message"]
