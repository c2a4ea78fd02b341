"""Tables of the hub store. No secret values live here: only versions and keyed digests.

Schema changes go through an Alembic migration in `fleet/store/migrations`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Text
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


def _ts(nullable: bool = True) -> Any:
    return Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=nullable))


class ClusterRecord(SQLModel, table=True):
    __tablename__ = "clusters"

    name: str = Field(primary_key=True, max_length=63)
    provider: str = Field(max_length=16)
    region: str | None = Field(default=None, max_length=64)
    labels: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    spec: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # registration
    state: str = Field(default="pending", max_length=16)  # pending | registered | error | removed
    state_message: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    provider_id: str | None = None
    endpoint: str | None = None
    ca_fingerprint: str | None = None
    kubernetes_version: str | None = None
    registered_at: datetime | None = _ts()
    removed_at: datetime | None = _ts()
    # agent
    agent_public_key: str | None = None
    agent_credential_hash: str | None = Field(default=None, max_length=128, index=True)  # looked up per agent request
    agent_version: str | None = None
    agent_last_seen: datetime | None = _ts()
    agent_bootstrapped_at: datetime | None = _ts()
    applied_revision: str | None = None
    applied_digest: str | None = None
    phase: str | None = None
    cluster_health: str = Field(default="Unknown", max_length=16)
    cluster_health_detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    unhealthy_since: datetime | None = _ts()
    drifted_objects: int = 0
    object_count: int = 0
    unhealthy_objects: int = 0
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    secret_versions: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    status_updated_at: datetime | None = _ts()


class DesiredRecord(SQLModel, table=True):
    """The last good rendered bundle per cluster (secret placeholders only)."""

    __tablename__ = "desired"

    cluster: str = Field(primary_key=True, max_length=63)
    revision: str
    digest: str
    epoch: int = 0
    bundle: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    generated_at: datetime | None = _ts()


class ObjectStatusRecord(SQLModel, table=True):
    __tablename__ = "object_status"

    cluster: str = Field(primary_key=True, max_length=63)
    key: str = Field(primary_key=True, max_length=512)
    app: str = ""
    health: str = "Unknown"
    message: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    drifted: bool = False
    updated_at: datetime | None = _ts()


class RevisionRecord(SQLModel, table=True):
    __tablename__ = "revisions"

    sha: str = Field(primary_key=True, max_length=64)
    author: str = ""
    committer: str = ""
    committed_at: datetime | None = _ts()
    message: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    state: str = Field(default="pending", max_length=16)  # pending | applied | rejected | held | unverified
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    signature: str | None = None
    seen_at: datetime | None = _ts()


class SourceStateRecord(SQLModel, table=True):
    """One row: where the hub stands on the tracked branch."""

    __tablename__ = "source_state"

    id: int = Field(default=1, primary_key=True)
    url: str = ""
    branch: str = "main"
    current_sha: str | None = None  # last good revision in force
    remote_sha: str | None = None  # branch head at last fetch
    held_sha: str | None = None
    held_reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    accepted: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    last_fetch_at: datetime | None = _ts()
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class EventRecord(SQLModel, table=True):
    """The audit trail: what happened, to what, from which commit, when."""

    __tablename__ = "events"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False, index=True))
    kind: str = Field(max_length=64, index=True)
    severity: str = Field(default="info", max_length=8)  # info | warning | error
    cluster: str | None = Field(default=None, index=True)
    message: str = Field(sa_column=Column(Text, nullable=False))
    commit: str | None = None
    author: str | None = None


class BootstrapTokenRecord(SQLModel, table=True):
    __tablename__ = "bootstrap_tokens"

    token_hash: str = Field(primary_key=True, max_length=128)
    cluster: str = Field(max_length=63, index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))
    expires_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    used_at: datetime | None = _ts()


class FailoverGroupRecord(SQLModel, table=True):
    __tablename__ = "failover_groups"

    name: str = Field(primary_key=True, max_length=63)
    active: str
    epoch: int = 0
    reason: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    moved_at: datetime | None = _ts()
    dns_value: str | None = None


class SecretVersionRecord(SQLModel, table=True):
    """Current version fingerprint of each secret source (a Vault ref or a SOPS file), and a keyed digest."""

    __tablename__ = "secret_versions"

    ref: str = Field(primary_key=True, max_length=512)
    version: str
    keyed_digest: str | None = None
    previous_version: str | None = None
    updated_at: datetime | None = _ts()
    # Rollout of `rollout_version` to the clusters using the source (fleet/hub/rotation.py).
    rollout_version: str | None = None
    rollout_state: str = Field(default="", max_length=16)  # "" | rolling | complete | stalled
    rollout_started_at: datetime | None = _ts()
    rollout_completed_at: datetime | None = _ts()
    rotated_at: datetime | None = _ts()
    rotated_by: str | None = None
    # Old Vault versions to destroy once the rollout is complete, and those already destroyed.
    destroy_pending: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    destroyed: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
