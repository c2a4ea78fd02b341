"""What a plan may show of a Secret: its identity and placeholders, never a value.

A Secret's `data`/`stringData` values (and anything else outside its metadata)
show as `<redacted>`; `vault:` references are placeholders and stay visible,
as do labels and annotations, except the one kubectl fills with the object.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fleet.secrets.errors import VaultRefError
from fleet.secrets.refs import is_vault_ref, parse_vault_ref

REDACTED = "<redacted>"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
_SECRET_VISIBLE_FIELDS = frozenset({"apiVersion", "kind", "metadata", "type", "immutable"})


def is_secret(obj: Mapping[str, Any]) -> bool:
    # any apiVersion: over-redacting a look-alike is harmless, showing a value is not
    return obj.get("kind") == "Secret"


def is_sensitive(obj: Mapping[str, Any], path: Sequence[str | int]) -> bool:
    """True if `path` inside `obj` may hold a secret value (or contain one below it)."""
    if not is_secret(obj):
        return False
    if not path:
        return True  # the whole object: callers redact it field by field
    if path[0] not in _SECRET_VISIBLE_FIELDS:
        return True
    return len(path) >= 3 and tuple(path[:3]) == ("metadata", "annotations", LAST_APPLIED)


def _placeholder(value: Any) -> bool:
    if not is_vault_ref(value):
        return False
    try:
        parse_vault_ref(value)
    except VaultRefError:
        return False
    return True


def redact_value(value: Any) -> Any:
    """Keys and structure stay; every leaf that is not a `vault:` placeholder becomes `<redacted>`."""
    if isinstance(value, dict):
        return {key: redact_value(item) for key, item in value.items()}
    if isinstance(value, list):
        return [redact_value(item) for item in value]
    return value if _placeholder(value) else REDACTED


def redact_at(obj: Mapping[str, Any], path: Sequence[str | int], value: Any) -> Any:
    """`value`, found at `path` inside `obj`, as a plan may show it."""
    if not is_secret(obj):
        return value
    if is_sensitive(obj, path):
        return redact_value(value)
    if isinstance(value, dict):
        return {key: redact_at(obj, [*path, key], item) for key, item in value.items()}
    if isinstance(value, list):
        return [redact_at(obj, [*path, index], item) for index, item in enumerate(value)]
    return value
