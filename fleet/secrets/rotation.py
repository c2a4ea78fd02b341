"""Rotation primitives: new values, new Vault versions, and when the old one may go.

Scheduling lives in the hub. The rule encoded here: an old version is
destroyed only once every cluster that uses the reference runs the new one
and is healthy, so a rollback never needs a value that no longer exists.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from fleet.secrets.errors import SecretError, VaultRefError
from fleet.secrets.refs import VaultRef
from fleet.secrets.vault import VaultClient

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RotationResult:
    ref: VaultRef
    old_version: int | None  # None: the path did not exist before
    new_version: int

    @property
    def fingerprint(self) -> str:
        """The version fingerprint clusters report once they run the new value."""
        return f"vault:{self.ref.location}@{self.new_version}"


@dataclass(frozen=True)
class RolloutState:
    current: str  # the fingerprint being rolled out
    on_version: list[str]  # clusters running it and healthy
    behind: list[str]  # clusters still on another version, without a report, or unhealthy
    complete: bool


def generate_value(length: int) -> str:
    """A random URL-safe value of exactly `length` characters (6 bits of entropy each)."""
    if length < 8:
        raise SecretError("a generated secret needs at least 8 characters")
    return secrets.token_urlsafe(length)[:length]


def rotate(vault: VaultClient, ref: VaultRef, new_value: str) -> RotationResult:
    """Write `new_value` as a new KV v2 version of the reference's path (other keys are kept)."""
    if ref.version is not None:
        raise VaultRefError(f"{ref}: a reference pinned to a version cannot be rotated; unpin it first")
    try:
        old_version: int | None = vault.current_version(ref.mount, ref.path)
    except VaultRefError:
        old_version = None
    new_version = vault.write(ref.mount, ref.path, {ref.key: new_value})
    log.info("rotated %s: version %s -> %s", ref, old_version, new_version)
    return RotationResult(ref=ref.unpinned(), old_version=old_version, new_version=new_version)


def rollout_state(
    ref_version: str, per_cluster_applied: Mapping[str, str | None], healthy: Mapping[str, bool]
) -> RolloutState:
    """Which clusters run `ref_version` (a fingerprint such as "vault:kv/x@7") and are healthy."""
    on_version = sorted(
        cluster
        for cluster, applied in per_cluster_applied.items()
        if applied == ref_version and healthy.get(cluster, False)
    )
    behind = sorted(set(per_cluster_applied) - set(on_version))
    return RolloutState(current=ref_version, on_version=on_version, behind=behind, complete=not behind)


def destroy_old(vault: VaultClient, ref: VaultRef, old_version: int, state: RolloutState) -> None:
    """Destroy the version a rotation replaced; only once `state` shows the rollout complete."""
    if not state.complete:
        raise SecretError(
            f"{ref}: not destroying version {old_version}: clusters still behind: {', '.join(state.behind)}"
        )
    prefix = f"vault:{ref.location}@"
    if not state.current.startswith(prefix):
        raise SecretError(f"{ref}: the rollout state is for {state.current}, not this path")
    suffix = state.current[len(prefix) :]
    if not suffix.isdigit():
        raise SecretError(f"{ref}: the rollout state names no version ({state.current})")
    current = int(suffix)
    if old_version >= current:
        raise SecretError(f"{ref}: version {old_version} is not older than the rolled-out version {current}")
    vault.destroy_versions(ref.mount, ref.path, [old_version])
    log.info("destroyed version %s of %s", old_version, ref.location)
