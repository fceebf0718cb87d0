"""Moodboard Realtime: the real-time collaboration server of the Moodboard platform."""

__version__ = "0.1.0"
