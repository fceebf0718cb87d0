"""Piccolo's configuration module (``PICCOLO_CONF=server.db.piccolo_conf``).

The engine is the one ``DATABASE_URL`` names; the root ``piccolo_conf.py``
re-exports this so Piccolo's own CLI works from a checkout.
"""

from piccolo.conf.apps import AppRegistry

from server.db.engine import create_engine
from server.settings import database_from_env

DB = create_engine(database_from_env())

APP_REGISTRY = AppRegistry(apps=["server.db.piccolo_app"])
