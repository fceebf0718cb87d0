"""What request handlers need from the running app, built once in the lifespan."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from piccolo.engine.base import Engine

from server.access.throttle import LoginThrottle
from server.events.notify import Notifier
from server.generations.queue import GenerationQueue
from server.settings import Settings


@dataclass(frozen=True, slots=True)
class AppContext:
    """The app's long-lived resources (``app.state.ctx``)."""

    settings: Settings
    engine: Engine[Any]
    redis: aioredis.Redis | None
    throttle: LoginThrottle
    notifier: Notifier
    queue: GenerationQueue
