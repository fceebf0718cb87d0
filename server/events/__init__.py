"""The per-project event log (PROTOCOL.md 3.2)."""
