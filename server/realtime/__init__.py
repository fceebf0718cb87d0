"""The WebSocket side: protocol, sessions, fan-out, presence."""
