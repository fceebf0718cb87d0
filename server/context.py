"""What request handlers need from the running app, built once in the lifespan."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from piccolo.engine.base import Engine

from server.access.throttle import LoginThrottle
from server.db.database import Database
from server.events.notify import Notifier
from server.generations.queue import GenerationQueue
from server.settings import Settings


@dataclass(frozen=True, slots=True)
class AppContext:
    """The app's long-lived resources (``app.state.ctx``)."""

    settings: Settings
    database: Database
    redis: aioredis.Redis | None
    throttle: LoginThrottle
    notifier: Notifier
    queue: GenerationQueue

    @property
    def engine(self) -> Engine[Any]:
        """The database's engine (what Piccolo writes and transactions take)."""
        return self.database.engine
