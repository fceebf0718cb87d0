"""Between the ASGI app and the socket: uvicorn, its protocols, and WebSocket frames."""
