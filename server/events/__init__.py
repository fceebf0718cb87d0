"""The per-project event log (docs/protocol.md §3.2)."""
