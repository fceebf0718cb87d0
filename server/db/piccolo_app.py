"""Piccolo's view of our schema: one app whose migrations live in ``piccolo_migrations/``."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from piccolo.conf.apps import AppConfig

from server.db.tables import TABLES

APP_NAME = "moodboard"


def migrations_folder() -> Path:
    """Where ``piccolo_migrations`` is, in a checkout or an installed wheel alike."""
    spec = importlib.util.find_spec("piccolo_migrations")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the piccolo_migrations package is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


APP_CONFIG = AppConfig(
    app_name=APP_NAME,
    migrations_folder_path=str(migrations_folder()),
    table_classes=list(TABLES),
    migration_dependencies=[],
    commands=[],
)
