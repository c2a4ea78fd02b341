"""The hub's data directory: database, checkouts, and its private keys and tokens (all 0600)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

ADMIN_TOKEN_FILE = "admin.token"
WEBHOOK_SECRET_FILE = "webhook.secret"
HUB_KEY_FILE = "hub.key"
HUB_URL_FILE = "hub.url"


def default_data_dir() -> Path:
    env = os.environ.get("FLEET_DATA_DIR")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "fleet"


def ensure_data_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)
    (path / "checkouts").mkdir(exist_ok=True)
    return path


def write_private(path: Path, content: str | bytes) -> None:
    """Create or replace a file readable only by its owner, never briefly world-readable."""
    data = content.encode() if isinstance(content, str) else content
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def read_or_create_token(path: Path, prefix: str) -> str:
    if path.exists():
        return path.read_text().strip()
    token = prefix + secrets.token_urlsafe(32)
    write_private(path, token + "\n")
    return token


def admin_token(data_dir: Path) -> str:
    return read_or_create_token(data_dir / ADMIN_TOKEN_FILE, "fleet-admin-")


def webhook_secret(data_dir: Path) -> str:
    return read_or_create_token(data_dir / WEBHOOK_SECRET_FILE, "")
