"""Logging: structlog for our lines and for the standard library's (uvicorn, piccolo).

Every line the server writes is one record: JSON where logs are collected,
readable in a terminal (``MOODBOARD_LOG_FORMAT``). The per-socket lines of
uvicorn and websockets are debug lines; Piccolo's migration runner, which
prints, is captured into one record (server/db/migrate.py).
Request and connection ids travel in ``structlog.contextvars`` so every line
emitted while serving one carries it. Secrets never reach a log: any key that
names a token, password, cookie, authorization header or key is redacted, and
the access log prints paths without query strings.
"""

from __future__ import annotations

import contextlib
import logging
import re
import sys
from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any

import structlog

from server.log_scrub import ScrubbingFormatter
from server.settings import LogFormat

REDACTED = "[redacted]"
# What uvicorn and websockets log at info for every socket (on the logger "uvicorn.error",
# which uvicorn also hands websockets' ServerProtocol): a thousand lines per thousand
# sockets. They become debug lines; the ``WebSocket <path>`` ones lose the query string.
_PER_SOCKET_LINES = frozenset(
    {
        '%s - "WebSocket %s" [accepted]',
        '%s - "WebSocket %s" 403',
        '%s - "WebSocket %s" %d',
        "connection open",
        "connection closed",
        "connection rejected (%d %s)",
        "HTTP response sent (%d %s)",
    }
)
_SECRET_KEY = re.compile(r"password|passwd|token|secret|cookie|authorization|api_key|^key$", re.I)


def redact(value: Any) -> Any:
    """Return ``value`` with every secret-named entry replaced, recursively."""
    if isinstance(value, Mapping):
        return {
            k: (REDACTED if isinstance(k, str) and _SECRET_KEY.search(k) else redact(v))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return type(value)(redact(v) for v in value)
    return value


def _redact_processor(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key in list(event_dict):
        if key == "event":
            continue
        if _SECRET_KEY.search(key):
            event_dict[key] = REDACTED
        else:
            event_dict[key] = redact(event_dict[key])
    return event_dict


class PerSocketLinesAtDebug(logging.Filter):
    """Turns the per-socket info lines of uvicorn and websockets into debug lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO or record.msg not in _PER_SOCKET_LINES:
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        if isinstance(record.args, tuple) and len(record.args) >= 2:
            path = str(record.args[1]).partition("?")[0]  # a query string may hold a token
            record.args = (record.args[0], path, *record.args[2:])
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


def configure_logging(log_format: LogFormat = "console", level: str = "info") -> None:
    """Configure structlog and route the standard library's logging through it."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact_processor,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.format_exc_info
            if log_format == "json"
            else structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        # A standard library record's traceback (uvicorn's "Exception in ASGI
        # application") becomes the record's "exception" string, as ours do.
        foreign_pre_chain=[*shared, structlog.processors.format_exc_info]
        if log_format == "json"
        else shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(ScrubbingFormatter(formatter))  # no token in any line (log_scrub.py)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.captureWarnings(True)  # a Python warning is a record too, not a bare stderr line
    # uvicorn's own access log prints query strings (where tokens could hide):
    # our middleware logs requests instead (server/http/middleware.py).
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    uvicorn_error = logging.getLogger("uvicorn.error")
    ours = PerSocketLinesAtDebug
    uvicorn_error.filters[:] = [f for f in uvicorn_error.filters if not isinstance(f, ours)]
    uvicorn_error.addFilter(PerSocketLinesAtDebug())
    access = logging.getLogger("uvicorn.access")
    access.handlers[:] = []
    access.propagate = False
    access.disabled = True


@contextlib.contextmanager
def swallowed(
    logger: structlog.stdlib.BoundLogger, event: str, *, level: int = logging.DEBUG, **context: Any
) -> Iterator[None]:
    """Go on past any exception in the block, logging what it was (debug: an expected end).

    For the places that must carry on whatever failed (closing a socket whose
    peer is gone, say): unlike ``contextlib.suppress(Exception)``, it says so.
    """
    try:
        yield
    except Exception as exc:
        logger.log(level, event, error=repr(exc), **context)


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """A bound structlog logger for module ``name``."""
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger
