"""Keyed digests, the hub key file, and the redaction filter."""

from __future__ import annotations

import base64
import logging
import os
import stat
from pathlib import Path

import pytest

from fleet.secrets.digest import keyed_digest, load_or_create_hub_key
from fleet.secrets.errors import SecretError
from fleet.secrets.redact import REDACTED, Redactor
from tests.secrets.conftest import CANARY


def test_keyed_digest_is_canonical_and_keyed() -> None:
    key, other_key = b"k" * 32, b"o" * 32
    digest = keyed_digest(key, {"a": b"1", "b": CANARY.encode()})
    assert digest.startswith("hmac-sha256:") and len(digest) == len("hmac-sha256:") + 64
    assert keyed_digest(key, {"b": CANARY.encode(), "a": b"1"}) == digest
    assert keyed_digest(key, {"a": b"1", "b": b"changed"}) != digest
    assert keyed_digest(other_key, {"a": b"1", "b": CANARY.encode()}) != digest
    # Boundaries are unambiguous: moving bytes between key and value changes the digest.
    assert keyed_digest(key, {"ab": b"c"}) != keyed_digest(key, {"a": b"bc"})
    assert CANARY not in digest


def test_hub_key_is_created_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "state" / "hub.key"
    key = load_or_create_hub_key(path)
    assert len(key) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_hub_key(path) == key
    assert load_or_create_hub_key(tmp_path / "other.key") != key


def test_hub_key_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "hub.key"
    load_or_create_hub_key(path)
    os.chmod(path, 0o644)
    with pytest.raises(SecretError, match="chmod 600"):
        load_or_create_hub_key(path)


def test_redactor_scrubs_values_and_their_base64() -> None:
    redactor = Redactor()
    redactor.register(CANARY)
    binary = b"\x00\x01binary-secret"
    redactor.register(binary)
    encoded = base64.b64encode(CANARY.encode()).decode()
    binary_encoded = base64.b64encode(binary).decode()
    text = f"a {CANARY} b {encoded} c {binary_encoded} {CANARY}"
    scrubbed = redactor.redact(text)
    assert CANARY not in scrubbed and encoded not in scrubbed
    assert scrubbed.count(REDACTED) == 4
    assert redactor.redact("nothing secret here") == "nothing secret here"
    assert CANARY not in repr(redactor)
    # It keeps no value, only keyed hashes.
    assert CANARY not in repr(vars(redactor))


def test_redactor_ignores_tiny_values() -> None:
    redactor = Redactor()
    redactor.register("abc")
    assert redactor.redact("abcabc") == "abcabc"


def test_logging_filter_scrubs_messages_args_and_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    redactor = Redactor()
    redactor.register(CANARY)
    logger = logging.getLogger("tests.secrets.redact")
    handler_filter = redactor.filter()
    caplog.handler.addFilter(handler_filter)
    try:
        with caplog.at_level(logging.DEBUG, logger="tests.secrets.redact"):
            logger.info("value is %s", CANARY)
            try:
                raise ValueError(f"bad {CANARY}")
            except ValueError:
                logger.exception("failed")
    finally:
        caplog.handler.removeFilter(handler_filter)
    assert CANARY not in caplog.text
    assert caplog.text.count(REDACTED) == 2
