"""`vault:<mount>/<path>#<key>[?version=N]` references: parsing and per-cluster allow-lists.

The grammar is deliberately narrow (plain path segments, no escapes, no dot
segments) so that a reference can only ever mean one Vault path, and a
prefix check on its text is a prefix check on what Vault will read.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fleet.secrets.errors import VaultRefError

VAULT_PREFIX = "vault:"
CLUSTER_PLACEHOLDER = "{cluster}"

_SEGMENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@+=-]*$")
_KEY = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_VERSION = re.compile(r"^version=([1-9][0-9]{0,9})$")
_SECRET_FIELDS = ("stringData", "data")


@dataclass(frozen=True)
class VaultRef:
    """One value in a Vault KV v2 secret; `version` None means the current version."""

    mount: str
    path: str
    key: str
    version: int | None = None

    @property
    def location(self) -> str:
        """`mount/path`: what Vault versions (all keys of a path share its version)."""
        return f"{self.mount}/{self.path}"

    def unpinned(self) -> VaultRef:
        return VaultRef(self.mount, self.path, self.key, None)

    def __str__(self) -> str:
        pinned = f"?version={self.version}" if self.version is not None else ""
        return f"{VAULT_PREFIX}{self.location}#{self.key}{pinned}"


def is_vault_ref(value: object) -> bool:
    """True for anything that claims to be a reference (it may still be malformed: parse it)."""
    return isinstance(value, str) and value.startswith(VAULT_PREFIX)


def _check_segments(path: str, text: str) -> list[str]:
    if "//" in path or path.startswith("/") or path.endswith("/"):
        raise VaultRefError(f"{text!r}: empty path segment ('//' or a leading/trailing '/')")
    segments = path.split("/")
    for segment in segments:
        if segment in (".", ".."):
            raise VaultRefError(f"{text!r}: '.' and '..' segments are not allowed")
        if not _SEGMENT.match(segment):
            raise VaultRefError(
                f"{text!r}: path segment {segment!r} may only use letters, digits and _ . @ + = -"
            )
    return segments


def parse_vault_ref(text: str) -> VaultRef:
    """Parse a reference; anything ambiguous (escapes, dot segments, `//`) is refused."""
    if not isinstance(text, str) or not text.startswith(VAULT_PREFIX):
        raise VaultRefError("a Vault reference must look like vault:<mount>/<path>#<key>[?version=N]")
    body = text[len(VAULT_PREFIX) :]
    if "%" in body or "\\" in body:
        raise VaultRefError(f"{text!r}: URL-escapes and backslashes are not allowed in a Vault reference")
    if any(ch.isspace() for ch in body):
        raise VaultRefError(f"{text!r}: whitespace is not allowed in a Vault reference")
    location, hash_sign, rest = body.partition("#")
    if not hash_sign or "#" in rest:
        raise VaultRefError(f"{text!r}: expected exactly one '#<key>' after the path")
    key, question, query = rest.partition("?")
    version: int | None = None
    if question:
        match = _VERSION.match(query)
        if not match:
            raise VaultRefError(f"{text!r}: the only query allowed is ?version=N with N >= 1")
        version = int(match.group(1))
    if not _KEY.match(key):
        raise VaultRefError(f"{text!r}: key {key!r} may only use letters, digits and _ . -")
    if ".." in location:
        raise VaultRefError(f"{text!r}: '..' is not allowed in a Vault path")
    segments = _check_segments(location, text)
    if len(segments) < 2:
        raise VaultRefError(f"{text!r}: expected <mount>/<path>, e.g. vault:kv/shared/db#password")
    return VaultRef(mount=segments[0], path="/".join(segments[1:]), key=key, version=version)


def allowed_prefixes_for(cluster: str, prefixes: Sequence[str]) -> list[str]:
    """The cluster's prefixes with `{cluster}` substituted, each normalised to end at a segment."""
    resolved = []
    for prefix in prefixes:
        concrete = prefix.replace(CLUSTER_PLACEHOLDER, cluster).strip("/")
        if not concrete or ".." in concrete or "//" in concrete or "%" in concrete or "{" in concrete:
            raise VaultRefError(f"allowed Vault prefix {prefix!r} is malformed")
        resolved.append(concrete + "/")
    return resolved


def check_allowed(ref: VaultRef, cluster: str, prefixes: Sequence[str]) -> None:
    """Refuse a reference outside every allowed prefix of `cluster`."""
    # Re-parse the canonical text: a VaultRef built by hand gets the same checks as one parsed.
    canonical = parse_vault_ref(str(ref))
    target = canonical.location  # strictly below a prefix: "kv/shared/" does not admit "kv/shared" itself
    allowed = allowed_prefixes_for(cluster, prefixes)
    if not any(target.startswith(prefix) for prefix in allowed):
        raise VaultRefError(
            f"{ref} is not allowed for cluster {cluster!r}: allowed prefixes are "
            f"{', '.join(allowed) or '(none)'} (secrets.vault.allowedPrefixes in fleet.yaml)"
        )


def find_vault_refs(obj: dict[str, Any]) -> list[tuple[str, VaultRef]]:
    """(field path, reference) for every `vault:` value in a Secret's stringData/data."""
    if not isinstance(obj, dict) or obj.get("kind") != "Secret":
        return []
    found: list[tuple[str, VaultRef]] = []
    for field in _SECRET_FIELDS:
        entries = obj.get(field) or {}
        if not isinstance(entries, dict):
            continue
        for data_key in sorted(entries):
            value = entries[data_key]
            if is_vault_ref(value):
                try:
                    found.append((f"{field}.{data_key}", parse_vault_ref(value)))
                except VaultRefError as exc:
                    raise VaultRefError(f"{field}.{data_key}: {exc}") from None
    return found
