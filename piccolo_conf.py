"""Piccolo's configuration for its CLI, run from the repository root.

See server/db/piccolo_conf.py.
"""

from server.db.piccolo_conf import APP_REGISTRY, DB

__all__ = ["APP_REGISTRY", "DB"]
