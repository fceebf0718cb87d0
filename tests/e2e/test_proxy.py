"""In front of the instances and beside them (issue 23): readiness that follows the drain,
workers that fail over, and the reference nginx configuration with two instances behind it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import signal
import ssl
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import InvalidStatus

from tests.conftest import IN_CI, free_port
from tests.e2e.test_workers import board, request
from tests.servers import (
    ServerProcess,
    call,
    create_service_account,
    running_worker,
    server_env,
    two_instances,
    worker_env,
)
from tests.wsclient import PASSWORD, TIMEOUT_S, Ws, ws

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
REFERENCE_CONF = ROOT / "deploy" / "nginx" / "moodboard.conf"


async def succeeded(server: ServerProcess, token: str, gid: str, timeout: float = 15.0) -> None:
    """Wait until the generation has succeeded (a worker claimed and finished it)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        status = (await call(server, "GET", f"/api/generations/{gid}", token)).json()["status"]
        if status == "succeeded":
            return
        assert asyncio.get_running_loop().time() < deadline, f"generation still {status}"
        await asyncio.sleep(0.1)


async def not_ready(server: ServerProcess) -> httpx.Response:
    """The first 503 of /readyz after a SIGTERM (the signal is handled within a loop turn)."""
    async with httpx.AsyncClient(base_url=server.url, timeout=2) as client:
        for _ in range(100):
            ready = await client.get("/readyz")
            if ready.status_code == 503:
                return ready
            await asyncio.sleep(0.01)
    raise AssertionError(f"/readyz still {ready.status_code} after SIGTERM: {ready.text}")


def request_lines(log: str, path: str) -> list[dict[str, Any]]:
    """The ``http.request`` lines of a server log for ``path``."""
    lines = (json.loads(line) for line in log.splitlines() if line.startswith("{"))
    return [x for x in lines if x.get("event") == "http.request" and x.get("path") == path]


async def test_a_draining_instance_leaves_rotation_and_its_worker_moves_on(
    cluster_db: str, redis_url: str, tmp_path: Path
) -> None:
    """SIGTERM: /readyz 503 and upgrades refused with 503 while the sockets still close; a
    worker given both instances keeps claiming from the other one, with no claim_failed."""
    env = server_env(cluster_db, REDIS_URL=redis_url, MOODBOARD_DRAIN_WINDOW_MS="3000")
    async with two_instances(env, tmp_path) as (a, b):
        key = await create_service_account(env)
        token, pid, room = await board(a)
        workers = worker_env(key)
        async with (
            running_worker(f"{a.url},{b.url}", workers, tmp_path, "both") as worker,
            ws(a.url, token) as first,
            ws(a.url, token) as second,  # two sockets: the drain closes them 1.5 s apart
        ):
            await first.expect("ready")
            await second.expect("ready")
            await succeeded(b, token, await request(a, token, pid, room, "before"))

            a.process.send_signal(signal.SIGTERM)
            ready = await not_ready(a)
            assert ready.json()["checks"] == {"instance": "draining"}
            async with httpx.AsyncClient(base_url=a.url) as client:
                assert (await client.get("/healthz")).status_code == 200  # alive, not ready
            with pytest.raises(InvalidStatus) as refused:
                async with ws(a.url, token):
                    pass
            assert refused.value.response.status_code == 503
            assert refused.value.response.headers["retry-after"] == "1"
            assert second.connection.close_code is None or first.connection.close_code is None
            assert {await first.closed(), await second.closed()} == {1012}
            assert await asyncio.wait_for(a.process.wait(), 10) == 0

            await succeeded(b, token, await request(b, token, pid, room, "after"))
        log = worker.log()
        assert "worker.claim_failed" not in log, log
        assert "worker.server_unavailable" in log  # it tried a first, then went on to b
    # An idle worker's empty claims and the health checks are logged at debug only.
    assert not [x for x in request_lines(b.log(), "/api/worker/claim") if x["status"] == 204]
    assert not request_lines(b.log(), "/readyz")


# --- nginx --------------------------------------------------------------------------------

NGINX_MAIN = """
daemon off;
worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/error.log info;
events {{ worker_connections 512; }}
http {{
    access_log {work}/access.log;
    client_body_temp_path {work}/body;
    proxy_temp_path {work}/proxy;
    fastcgi_temp_path {work}/fastcgi;
    uwsgi_temp_path {work}/uwsgi;
    scgi_temp_path {work}/scgi;
    include {work}/moodboard.conf;
}}
"""


def require_programs(*names: str) -> dict[str, str]:
    """Each program's path; skip loudly without one (fail under CI=true)."""
    found = {name: shutil.which(name) or shutil.which(name, path="/usr/sbin") for name in names}
    missing = [name for name, path in found.items() if path is None]
    if missing:
        message = f"!!! the reverse-proxy test needs {', '.join(missing)} (apt-get install nginx)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return {name: str(path) for name, path in found.items()}


def nginx_directory(openssl: str, upstreams: list[int], port: int) -> Path:
    """A temporary directory with a throwaway certificate, nginx.conf and the reference
    configuration, changed only in its addresses, ports and certificate paths."""
    work = Path(tempfile.mkdtemp(prefix="moodboard-nginx-"))
    work.chmod(0o755)  # as root, nginx's workers run as nobody and use their temp dirs in here
    subprocess.run(
        [
            *(openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"),
            *("-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1"),
            *("-keyout", str(work / "key.pem"), "-out", str(work / "cert.pem")),
        ],
        check=True,
        capture_output=True,
    )
    conf = REFERENCE_CONF.read_text()
    changes = {
        "server 10.0.0.11:8000": f"server 127.0.0.1:{upstreams[0]}",
        "server 10.0.0.12:8000": f"server 127.0.0.1:{upstreams[1]}",
        "listen 443 ssl http2;": f"listen 127.0.0.1:{port} ssl http2;",
        "listen 80;": f"listen 127.0.0.1:{free_port()};",
        "/etc/ssl/moodboard/fullchain.pem": str(work / "cert.pem"),
        "/etc/ssl/moodboard/privkey.pem": str(work / "key.pem"),
    }
    for old, new in changes.items():
        assert old in conf, f"{REFERENCE_CONF} no longer has {old!r}: update this test"
        conf = conf.replace(old, new)
    (work / "moodboard.conf").write_text(conf)
    (work / "nginx.conf").write_text(NGINX_MAIN.format(work=work))
    return work


@contextlib.asynccontextmanager
async def running_nginx(
    programs: dict[str, str], upstreams: list[int], port: int
) -> AsyncIterator[Path]:
    """nginx on 127.0.0.1:``port`` in front of ``upstreams`` (nginx_directory); its
    certificate. Stopped (SIGTERM to its master) and its directory removed after."""
    work = nginx_directory(programs["openssl"], upstreams, port)
    error_log = work / "error.log"
    process = await asyncio.create_subprocess_exec(
        programs["nginx"],
        *("-p", str(work), "-c", str(work / "nginx.conf"), "-e", str(error_log)),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            assert process.returncode is None, error_log.read_text()
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                break
            await asyncio.sleep(0.05)
        yield work / "cert.pem"
    finally:
        if process.returncode is None:
            process.terminate()
            await asyncio.wait_for(process.wait(), 10)
        shutil.rmtree(work, ignore_errors=True)


async def test_nginx_in_front_of_two_instances(
    cluster_db: str, redis_url: str, tmp_path: Path
) -> None:
    """The reference nginx configuration (TLS, WebSocket upgrade, two instances): join, an
    edit seen by a peer, a drained instance's sockets resume on the other one with last_seq,
    new sockets during the drain all land, and a worker given the proxy's URL keeps claiming."""
    programs = require_programs("nginx", "openssl")
    port = free_port()
    public = f"https://127.0.0.1:{port}"
    env = server_env(
        cluster_db,
        REDIS_URL=redis_url,
        MOODBOARD_PUBLIC_URL=public,
        MOODBOARD_DRAIN_WINDOW_MS="2000",
    )
    async with (
        two_instances(env, tmp_path) as (a, b),
        running_nginx(programs, [a.port, b.port], port) as cert,
    ):
        tls = ssl.create_default_context(cafile=cert)
        await in_front(a, b, env, public, tls, cert, tmp_path)


async def in_front(
    a: ServerProcess,
    b: ServerProcess,
    env: dict[str, str],
    public: str,
    tls: ssl.SSLContext,
    cert: Path,
    tmp_path: Path,
) -> None:
    """The scenario of the nginx test, with a proxy at ``public``."""
    port = int(public.rsplit(":", 1)[1])
    async with (
        httpx.AsyncClient(base_url=public, verify=tls, timeout=TIMEOUT_S) as proxy,
    ):
        email = f"proxy-{uuid.uuid4().hex[:8]}@example.com"
        registered = await proxy.post(
            "/api/auth/register",
            json={"email": email, "password": PASSWORD, "name": "P"},
            headers={"X-Forwarded-For": "203.0.113.9"},  # a client naming its own address
        )
        assert registered.status_code == 201, registered.text
        # X-Forwarded-Proto reached the instance: the cookie of an https request is Secure.
        assert "secure" in registered.headers["set-cookie"].lower()
        token = registered.json()["token"]
        auth = {"Authorization": f"Bearer {token}"}
        # X-Forwarded-For is the proxy's word, not the client's: the real peer is recorded.
        [session] = (await proxy.get("/api/me/sessions", headers=auth)).json()
        assert session["ip"] == "127.0.0.1"
        created = await proxy.post("/api/projects", json={"name": "Behind"}, headers=auth)
        pid = created.json()["id"]
        room = await proxy.post(f"/api/projects/{pid}/rooms", json={"name": "R"}, headers=auth)

        def through_proxy() -> contextlib.AbstractAsyncContextManager[Ws]:
            # A browser's socket: the public origin, the session cookie's token as bearer.
            return ws(f"wss://127.0.0.1:{port}", token, origin=public, ssl=tls)

        async with contextlib.AsyncExitStack() as stack:
            socks = [await stack.enter_async_context(through_proxy()) for _ in range(4)]
            instance_of = []  # the instance id that prefixes each socket's connection id
            for sock in socks:
                instance_of.append((await sock.expect("ready"))["connection_id"].rsplit(".", 1)[0])
                joined = await sock.request({"type": "join", "ref": "j", "project_id": pid})
                assert joined["type"] == "joined", joined
            assert len(set(instance_of)) == 2, instance_of  # least_conn: both hold some
            edit = {
                "type": "edit",
                "ref": "e",
                "project_id": pid,
                "op_id": "c-1",
                "action": "create",
                "entity": "item",
                "room_id": room.json()["id"],
                "data": {"kind": "note", "data": {"text": "hello"}},
            }
            ack = await socks[0].request(edit)
            assert ack["type"] == "ack", ack
            for sock in socks[1:]:  # peers, on both instances
                assert (await sock.expect("event", seq=ack["seq"]))["kind"] == "item.created"

            a.process.send_signal(signal.SIGTERM)
            await not_ready(a)  # from now on no upgrade is accepted there
            # Sockets opened during the drain: nginx retries a's 503 on b, so every one lands.
            late = [await stack.enter_async_context(through_proxy()) for _ in range(3)]
            on_b = {
                (await sock.expect("ready"))["connection_id"].rsplit(".", 1)[0] for sock in late
            }
            assert len(on_b) == 1, on_b
            drained = [s for s, at in zip(socks, instance_of, strict=True) if at not in on_b]
            for sock in drained:
                assert await sock.closed() == 1012
            assert await asyncio.wait_for(a.process.wait(), 10) == 0
            assert all(s.connection.close_code is None for s in socks if s not in drained)
            assert all(sock.connection.close_code is None for sock in late)

            # An edit while the drained sockets are away; they resume through the proxy.
            edit.update(ref="e2", op_id="c-2")
            missed = await late[0].request(edit)
            assert missed["type"] == "ack", missed
            for _ in drained:
                async with through_proxy() as back:
                    await back.expect("ready")
                    joined = await back.request(
                        {"type": "join", "ref": "r", "project_id": pid, "last_seq": ack["seq"]}
                    )
                    assert (joined["mode"], joined["seq"]) == ("replay", missed["seq"])
                    replayed = await back.expect("event")
                    assert (replayed["seq"], replayed["op_id"]) == (missed["seq"], "c-2")

        # A worker given the balancer's URL claims through it, with a gone.
        key = await create_service_account(env)
        workers = worker_env(key, SSL_CERT_FILE=str(cert))  # httpx trusts it from there
        async with running_worker(public, workers, tmp_path, "proxied") as worker:
            made = await proxy.post(
                f"/api/projects/{pid}/generations",
                json={"room_id": room.json()["id"], "prompt": "through nginx"},
                headers=auth,
            )
            assert made.status_code == 202, made.text
            await succeeded(b, token, made.json()["id"])
        assert "worker.claim_failed" not in worker.log(), worker.log()
