"""The WebSocket side: the wire protocol, per-connection state, fan-out, presence."""
