from __future__ import annotations

import io
import json
import logging

from fleet.agent.logs import configure, fields
from fleet.secrets.redact import Redactor


def test_one_json_line_per_event_with_fields_and_redaction() -> None:
    stream = io.StringIO()
    redactor = Redactor()
    redactor.register(b"s3cret-value")
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        configure("info", stream=stream, redactor=redactor)
        log = logging.getLogger("fleet.agent.test")
        log.info("applied", extra=fields(objects=3, digest="abc"))
        log.warning("oops", extra=fields(error="server said s3cret-value"))
        log.debug("hidden")
        try:
            raise ValueError("s3cret-value in an exception")
        except ValueError:
            log.error("crashed", exc_info=True)
    finally:
        root.handlers[:], root.level = saved
    lines = stream.getvalue().splitlines()
    events = [json.loads(line) for line in lines]
    assert [e["event"] for e in events] == ["applied", "oops", "crashed"]
    assert events[0]["objects"] == 3 and events[0]["level"] == "info" and events[0]["digest"] == "abc"
    assert events[2]["exception"] == "ValueError"
    assert "s3cret-value" not in stream.getvalue()
