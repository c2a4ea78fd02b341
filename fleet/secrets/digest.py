"""Keyed digests of secret values, and the hub key they are keyed with.

The store and the bundles carry these instead of values: a digest shows that
a value changed without being a guessable hash of it (HMAC with a key only the
hub holds, so a short password cannot be brute-forced from the database).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import stat
from collections.abc import Mapping
from pathlib import Path

from fleet.secrets.errors import SecretError

HUB_KEY_BYTES = 32
DIGEST_PREFIX = "hmac-sha256:"


def keyed_digest(hub_key: bytes, data: Mapping[str, bytes]) -> str:
    """`hmac-sha256:<hex>` over the sorted key=value pairs (canonical JSON, values base64)."""
    if len(hub_key) < 16:
        raise SecretError("the hub key is too short to key digests")
    canonical = json.dumps(
        {key: base64.b64encode(value).decode("ascii") for key, value in data.items()},
        sort_keys=True,
        separators=(",", ":"),
    ).encode()
    return DIGEST_PREFIX + hmac.new(hub_key, canonical, hashlib.sha256).hexdigest()


def load_or_create_hub_key(path: Path) -> bytes:
    """Read the hub key, or create it (32 random bytes, mode 0600). Refuses a key others can read."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(secrets.token_bytes(HUB_KEY_BYTES))
            handle.flush()
            os.fsync(handle.fileno())
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise SecretError(f"hub key {path} is readable by others (mode {mode:o}); chmod 600 it")
    key = path.read_bytes()
    if len(key) != HUB_KEY_BYTES:
        raise SecretError(f"hub key {path} has the wrong length: expected {HUB_KEY_BYTES} bytes")
    return key
