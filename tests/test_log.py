"""server/log.py: what the libraries log becomes one JSON record a line, at a sensible level."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import pytest

from server.log import configure_logging


def records(err: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in err.splitlines()]  # each line must be one record


def test_per_socket_library_lines_are_debug_and_lose_the_query_string(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """uvicorn's "[accepted]" and websockets' "connection open" vanish at info, show at debug."""
    uvicorn_error = logging.getLogger("uvicorn.error")
    for level in ("info", "debug"):
        configure_logging("json", level)
        uvicorn_error.info('%s - "WebSocket %s" [accepted]', "1.2.3.4:5", "/ws?token=secret")
        uvicorn_error.info("connection open")
        uvicorn_error.info("Application startup complete.")
    configure_logging("json", "info")
    seen = [(r["level"], r["event"]) for r in records(capfd.readouterr().err)]
    assert seen == [
        ("info", "Application startup complete."),
        ("debug", '1.2.3.4:5 - "WebSocket /ws" [accepted]'),
        ("debug", "connection open"),
        ("info", "Application startup complete."),
    ]


def test_a_library_traceback_and_a_warning_are_single_records(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """A standard library record's traceback is its "exception" field, not extra lines."""
    configure_logging("json", "info")
    try:
        raise ZeroDivisionError("boom")
    except ZeroDivisionError:
        logging.getLogger("uvicorn.error").exception("Exception in ASGI application\n")
    [crash] = records(capfd.readouterr().err)
    assert "ZeroDivisionError: boom" in str(crash["exception"])
    # A warning, in a process of its own (the suite turns warnings into errors).
    script = (
        "import warnings; from server.log import configure_logging; "
        "configure_logging('json', 'info'); warnings.warn('careful', stacklevel=1)"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    [warning] = records(done.stderr)
    assert (warning["level"], warning["logger"]) == ("warning", "py.warnings")
    assert "UserWarning: careful" in str(warning["event"])
