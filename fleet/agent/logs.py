"""Structured logs: one JSON object per line, one line per event.

Callers log an event name as the message and put fields under
`extra={"fleet": {...}}`. Nothing here knows secret values, and callers never
pass them: object keys, digests, counts and error texts only.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from fleet.secrets.redact import Redactor


class JsonFormatter(logging.Formatter):
    def __init__(self, redactor: Redactor | None = None) -> None:
        super().__init__()
        self.redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        fields = getattr(record, "fleet", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info and record.exc_info[0] is not None:
            # the type only: exception texts from libraries may quote request data
            entry["exception"] = record.exc_info[0].__name__
        line = json.dumps(entry, default=str, sort_keys=False)
        # last line of defence: values the agent has opened never reach the log
        return self.redactor.redact(line) if self.redactor is not None else line


def configure(level: str = "info", stream: TextIO | None = None, redactor: Redactor | None = None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter(redactor))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # request lines of the HTTP libraries add nothing the agent's own events don't say
    for noisy in ("httpx", "httpcore", "urllib3", "kubernetes"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def fields(**values: Any) -> dict[str, Any]:
    """`extra=` for a log call: log.info("applied", extra=fields(count=3))."""
    return {"fleet": values}
