"""A protocol fuzzer for /ws: Hypothesis sends generated frames over a real socket.

docs/protocol.md §3.5: a bad message gets an ``error`` frame and the socket
stays open. What REST gets from Schemathesis (tests/api/test_openapi_fuzz.py)
the socket gets here: each example is a short sequence of frames sent on one
authenticated socket that has joined a project with a room and an item, so
edits and presence reach the database and the fan-out. The frames are

- well-formed frames of every client type whose fields take wild values:
  wrong types, integers hundreds of digits long, the bounds of int64 and
  float, lone UTF-16 surrogates (``"\\udc80"``, not valid UTF-8), deep
  nesting, unknown fields and missing ones;
- raw text: arbitrary strings, JSON nested thousands of levels deep,
  ``NaN``/``Infinity``, truncated JSON.

After the sequence the socket must still answer a ``ping``; the server must
never close it (a 4500 is the server's own failure) and its log must hold no
traceback. ``auth`` frames carry the socket's real token or a value that
fails validation: a well-formed wrong token closes with 4401 by contract.

The run is derandomized (the same cases every time). To explore, set
``MOODBOARD_FUZZ_EXAMPLES=1000``: that many examples with fresh seeds.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.servers import ServerProcess, running_server, server_env
from tests.wsclient import signup, ws

pytestmark = pytest.mark.e2e
EXPLORE = os.environ.get("MOODBOARD_FUZZ_EXAMPLES")


@dataclass
class Board:
    """The fuzzed user's token and the ids of their project, room and item."""

    token: str
    ids: dict[str, str]


@pytest.fixture(scope="module")
async def server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ServerProcess]:
    """One embedded-mode server whose rate limits stay out of the fuzzer's way."""
    tmp = tmp_path_factory.mktemp("socket-fuzz")
    env = server_env(
        f"sqlite:///{tmp / 'm.sqlite3'}",
        MOODBOARD_SOCKET_RATE="100000",
        MOODBOARD_SOCKET_BURST="100000",
        MOODBOARD_MAX_SOCKETS_PER_USER="1000",
    )
    async with running_server(env, tmp) as process:
        yield process


_boards: dict[int, Board] = {}


async def _board(server: ServerProcess) -> Board:
    """The user, project, room and item every example works on (made once)."""
    if server.port in _boards:
        return _boards[server.port]
    _, token = await signup(server.url, "fuzz", f"fuzz-{uuid.uuid4().hex[:8]}@example.com")
    auth = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=server.url, headers=auth) as client:
        project = (await client.post("/api/projects", json={"name": "Fuzz"})).json()
        pid = project["id"]
        room = (await client.post(f"/api/projects/{pid}/rooms", json={"name": "Hall"})).json()
        item = await client.post(
            f"/api/projects/{pid}/rooms/{room['id']}/items", json={"kind": "note"}
        )
    board = Board(token, {"$P": pid, "$R": room["id"], "$I": item.json()["id"]})
    _boards[server.port] = board
    return board


# --- what the frames are made of ------------------------------------------------------

huge_ints = st.one_of(
    st.sampled_from([2**31, 2**53 + 1, 2**63, 2**64, -(2**63) - 1, 10**400, -(10**400)]),
    st.integers(min_value=10**300, max_value=10**500),
    st.integers(max_value=-(10**300), min_value=-(10**500)),
)
# Lone surrogates: json.dumps writes them as \udXXX escapes, which no UTF-8 can carry.
bad_text = st.text(
    alphabet=st.one_of(st.characters(), st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)),
    max_size=40,
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    huge_ints,
    st.floats(),  # NaN and ±Infinity are not JSON: json.dumps writes them anyway
    bad_text,
    st.sampled_from(["$P", "$R", "$I", str(uuid.uuid4()), ""]),
)
wild = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(bad_text, inner, max_size=4),
    max_leaves=12,
)
ids = st.sampled_from(["$P", "$R", "$I", str(uuid.uuid4())]) | wild
numbers = st.one_of(st.integers(-5, 5), huge_ints, st.floats()) | wild
ITEM_FIELDS = ["room_id", "kind", "x", "y", "w", "h", "rotation", "z", "data"]
ROOM_FIELDS = ["name", "room_type", "attributes", "position"]
edit_data = st.dictionaries(
    st.sampled_from([*ITEM_FIELDS, *ROOM_FIELDS, "description", "unknown"]) | bad_text,
    st.one_of(numbers, st.sampled_from(["note", "kitchen", "$R"]), wild),
    max_size=4,
)
refs = st.one_of(st.none(), st.text(max_size=70), wild)
# A token that fails validation (a well-formed wrong one closes 4401 by contract).
bad_tokens = st.one_of(
    st.just("$TOKEN"),
    st.just(""),
    st.text(min_size=513, max_size=520),
    st.integers(),
    huge_ints,
    st.lists(st.integers(), max_size=2),
    st.none(),
)
FIELDS: dict[str, dict[str, st.SearchStrategy[Any]]] = {
    "auth": {"token": bad_tokens},
    "join": {"project_id": ids, "last_seq": numbers},
    "leave": {"project_id": ids},
    "presence": {"project_id": ids, "state": wild | st.dictionaries(bad_text, wild, max_size=4)},
    "ping": {},
    "edit": {
        "project_id": ids,
        "op_id": st.text(max_size=70) | wild,
        "action": st.sampled_from(["create", "update", "delete"]) | wild,
        "entity": st.sampled_from(["project", "room", "item"]) | wild,
        "id": ids,
        "base_version": numbers,
        "room_id": ids,
        "data": edit_data | wild,
    },
}


field_values = st.one_of(huge_ints, st.floats(), st.integers(-5, 5), wild)


def _edit(
    action: str, entity: str, fields: list[str], **given: str | int
) -> st.SearchStrategy[str]:
    """An edit right in every way but its data: its values reach the field checks and the write."""
    data = st.dictionaries(st.sampled_from(fields), field_values, min_size=1, max_size=3)
    if action == "create" and entity == "item":
        data = data.map(lambda d: {"kind": "note", **d})
    return st.fixed_dictionaries(
        {
            "type": st.just("edit"),
            "project_id": st.just("$P"),
            "op_id": st.uuids().map(str),
            "action": st.just(action),
            "entity": st.just(entity),
            "data": data,
            **{key: st.just(value) for key, value in given.items()},
        }
    ).map(json.dumps)


plausible_edits = st.one_of(
    _edit("create", "item", ITEM_FIELDS, room_id="$R"),
    _edit("update", "item", ITEM_FIELDS, id="$I", base_version=1),
    _edit("create", "room", ROOM_FIELDS),
    _edit("update", "room", ROOM_FIELDS, id="$R", base_version=1),
    _edit("update", "project", ["name", "description"], id="$P", base_version=1),
)


def _typed(type_: str) -> st.SearchStrategy[str]:
    """A frame of ``type_`` whose fields (some left out, maybe one unknown) are wild."""
    optional = {"ref": refs, "extra": wild, **FIELDS[type_]}
    return st.fixed_dictionaries({"type": st.just(type_)}, optional=optional).map(json.dumps)


def _nested(depth: int) -> str:
    return '{"type":"edit","data":' + '{"a":' * depth + "1" + "}" * depth + "}"


raw_frames = st.one_of(
    st.text(max_size=200),
    st.integers(400, 5000).map(lambda n: "[" * n + "]" * n),
    st.integers(30, 3000).map(_nested),
    st.sampled_from(
        [
            '{"type":"ping","ref":"\\udc80"}',
            '{"type":"ping","ref":"\\ud800\\ud800"}',
            '{"type":"join","project_id":"$P","last_seq":1' + "0" * 400 + "}",
            '{"type":"ping","ref":NaN}',
            '{"type":"ping"',
            '{"type":"ping","type":"join"}',
            "null",
            "[]",
            '"ping"',
        ]
    ),
)
frames = st.one_of(
    plausible_edits,
    st.sampled_from(sorted(FIELDS)).flatmap(_typed),
    raw_frames,
    wild.map(json.dumps),
)


@settings(
    max_examples=int(EXPLORE or 150),
    derandomize=not EXPLORE,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(sequence=st.lists(frames, min_size=1, max_size=8))
def test_no_frame_breaks_the_socket_or_the_server(
    server: ServerProcess, sequence: list[str]
) -> None:
    """Any frames get replies or errors; the socket still answers a ping; no traceback."""
    asyncio.run(_send_all(server, sequence))
    log = server.log()
    assert "Traceback" not in log, log[log.index("Traceback") - 2000 :][:6000]


async def _send_all(server: ServerProcess, sequence: list[str]) -> None:
    board = await _board(server)
    async with ws(server.url, board.token) as sock:
        await sock.expect("ready")
        joined = await sock.request({"type": "join", "ref": "j", "project_id": board.ids["$P"]})
        assert joined["type"] == "joined", joined
        for frame in sequence:
            for placeholder, value in [*board.ids.items(), ("$TOKEN", board.token)]:
                frame = frame.replace(placeholder, value)
            await sock.connection.send(frame)
        end = f"end-{uuid.uuid4().hex}"
        try:
            reply = await sock.request({"type": "ping", "ref": end})
        except Exception as exc:
            raise AssertionError(
                f"socket closed {sock.connection.close_code} {sock.connection.close_reason!r}"
                f" after {sequence!r}"
            ) from exc
        assert reply == {"type": "pong", "ref": end}
        assert sock.connection.close_code is None
