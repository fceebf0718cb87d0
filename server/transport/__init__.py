"""Between the ASGI app and the socket: uvicorn, its protocols, and WebSocket frames.

This package is the only place that reaches below ASGI into uvicorn and
websockets internals. Checked against uvicorn 0.54.0 (httptools 0.9.0) and
websockets 17.4, the versions in requirements/base.lock; pyproject.toml bounds
both to those minor series. Before widening a bound, re-read every name below
in the new release and run ``tests/transport/``; at startup
:mod:`~server.transport.fast_paths` probes both fast paths, logs
``transport.fast_paths`` once and sets ``moodboard_transport_fast_path``, so one
that silently turned off is seen.

Modules:

- ``wire.py``: one frame serialized once, written straight to a socket's
  transport (the direct write path).
- ``lean.py``: uvicorn's WebSocket protocol keeping only what an open socket
  needs (idle memory per socket).
- ``upgrade.py``: the WebSocket upgrade given the request httptools parsed (the
  fast upgrade; ``MOODBOARD_FAST_UPGRADE``), and the HTTP protocol that lets
  go of its parser after an upgrade (no reference cycle per socket).
- ``serve.py``: uvicorn's configuration and ``Server`` subclass (the SIGTERM
  drain, the garbage-collector tuning, the startup probe).
- ``fast_paths.py``: the startup probe and its report.
- ``guard.py``: the HTTP protocol with a deadline for request headers and a
  cap on open connections (``MOODBOARD_HEADER_TIMEOUT_MS``,
  ``MOODBOARD_MAX_CONNECTIONS``).

Private (undocumented) names touched, by library:

uvicorn
    ``uvicorn.protocols.websockets.websockets_sansio_impl.WebSocketsSansIOProtocol``
    (subclassed; constructed with ``config=``, ``server_state=``, ``app_state=``):
    ``conn`` (the websockets ``ServerProtocol``), ``transport``,
    ``handshake_complete``, ``close_sent``, ``writable`` (an ``asyncio.Event``
    that ``pause_writing`` clears), ``connection_made``, ``handle_connect``;
    (lean.py) ``queue`` (an ``asyncio.Queue``: ``put_nowait``, ``get``,
    ``empty``) and ``writable`` replaced after ``__init__``, ``receive``
    overridden (with ``read_paused``), ``request`` and ``response`` let go in
    ``start_keepalive`` (called once the upgrade is answered), and the names
    of the attributes it makes slots;
    and the fact that the ASGI ``send`` it hands the app is its own bound
    method (``send.__self__``). Tests also override ``run_asgi``.
    ``uvicorn.protocols.http.httptools_impl.HttpToolsProtocol`` (subclassed):
    ``handle_websocket_upgrade`` (overridden), ``ws_protocol_class``, ``url``,
    ``scope``, ``connections``, ``config``, ``server_state``, ``app_state``,
    ``transport``, ``parser``; and (guard.py) the parser callbacks
    ``on_message_begin`` and ``on_headers_complete``, ``connection_made``,
    ``connection_lost``, ``data_received``, ``loop``, and the fact that
    ``connections`` (``ServerState.connections``) holds every open HTTP and
    WebSocket protocol of the server.
    ``uvicorn.server.ServerState`` (the probe's); ``uvicorn.Server.startup``,
    ``handle_exit`` and ``started`` (overridden or read by ``DrainingServer``);
    ``Config.load``, ``http_protocol_class``, ``ws_protocol_class``.
    The logger ``uvicorn.error``, which uvicorn also hands websockets'
    ``ServerProtocol`` (server/log.py sets its level for that reason).

websockets
    ``websockets.frames.Frame.serialize(mask=False)``;
    ``websockets.http11.Request``, ``MAX_LINE_LENGTH``, ``MAX_NUM_HEADERS``;
    ``websockets.datastructures.Headers``; ``websockets.protocol.Protocol.parse``
    (the frame parser, a generator) and ``ServerProtocol.parser``,
    ``ServerProtocol.extensions``.
"""
