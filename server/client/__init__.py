"""The Python client: one implementation of the protocol on the client side.

Used by the worker (``worker_api``), by tests and by the load tests; it speaks
the same msgspec protocol module as the server (PROTOCOL.md).
"""
