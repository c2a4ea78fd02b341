"""Queries the hub runs against its store. One method per question or change.

Callers never see sessions; every method is its own short transaction, which
keeps SQLite writers brief and Postgres replicas consistent.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from fleet.store.db import make_engine, migrate
from fleet.store.models import (
    BootstrapTokenRecord,
    ClusterRecord,
    DesiredRecord,
    EventRecord,
    FailoverGroupRecord,
    ObjectStatusRecord,
    RevisionRecord,
    SecretVersionRecord,
    SourceStateRecord,
    utcnow,
)


def hash_secret(value: str) -> str:
    """Credentials and tokens are stored as SHA-256 hashes; they are high-entropy, so no salt is needed."""
    return hashlib.sha256(value.encode()).hexdigest()


class Store:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, url: str) -> Store:
        engine = make_engine(url)
        migrate(engine)
        return cls(engine)

    def close(self) -> None:
        self.engine.dispose()

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    # ------------------------------------------------------------ clusters

    def clusters(self, include_removed: bool = True) -> list[ClusterRecord]:
        with self.session() as s:
            query = select(ClusterRecord).order_by(col(ClusterRecord.name))
            if not include_removed:
                query = query.where(ClusterRecord.state != "removed")
            return list(s.exec(query).all())

    def cluster(self, name: str) -> ClusterRecord | None:
        with self.session() as s:
            return s.get(ClusterRecord, name)

    def upsert_cluster_spec(
        self, name: str, provider: str, region: str | None, labels: dict[str, str], spec: dict[str, Any]
    ) -> tuple[ClusterRecord, bool]:
        """Record a cluster declared in Git. Returns (record, created)."""
        with self.session() as s:
            record = s.get(ClusterRecord, name)
            created = record is None
            if record is None:
                record = ClusterRecord(name=name, provider=provider)
            record.provider = provider
            record.region = region
            record.labels = dict(labels)
            record.spec = spec
            if record.state == "removed":
                record.state = "pending"
                record.removed_at = None
            s.add(record)
            s.commit()
            s.refresh(record)
            return record, created

    def set_registration(
        self,
        name: str,
        *,
        state: str,
        message: str = "",
        provider_id: str | None = None,
        endpoint: str | None = None,
        ca_fingerprint: str | None = None,
        kubernetes_version: str | None = None,
    ) -> None:
        with self.session() as s:
            record = s.get(ClusterRecord, name)
            if record is None:
                return
            record.state = state
            record.state_message = message
            if state == "registered":
                record.provider_id = provider_id
                record.endpoint = endpoint
                record.ca_fingerprint = ca_fingerprint
                record.kubernetes_version = kubernetes_version
                record.registered_at = record.registered_at or utcnow()
            s.add(record)
            s.commit()

    def mark_removed(self, name: str) -> None:
        with self.session() as s:
            record = s.get(ClusterRecord, name)
            if record is None or record.state == "removed":
                return
            record.state = "removed"
            record.removed_at = utcnow()
            s.add(record)
            s.commit()

    # ------------------------------------------------------------ agents

    def set_agent_credential(self, name: str, credential: str, public_key: str, agent_version: str) -> None:
        with self.session() as s:
            record = s.get(ClusterRecord, name)
            if record is None:
                raise KeyError(name)
            record.agent_credential_hash = hash_secret(credential)
            record.agent_public_key = public_key
            record.agent_version = agent_version
            record.agent_bootstrapped_at = utcnow()
            s.add(record)
            s.commit()

    def revoke_agent_credential(self, name: str) -> None:
        with self.session() as s:
            record = s.get(ClusterRecord, name)
            if record is not None:
                record.agent_credential_hash = None
                s.add(record)
                s.commit()

    def cluster_for_credential(self, credential: str) -> str | None:
        digest = hash_secret(credential)
        with self.session() as s:
            record = s.exec(select(ClusterRecord).where(ClusterRecord.agent_credential_hash == digest)).first()
            if record is None or record.agent_credential_hash is None:
                return None
            return record.name if hmac.compare_digest(record.agent_credential_hash, digest) else None

    def heartbeat(self, name: str, at: datetime | None = None) -> None:
        with self.session() as s:
            record = s.get(ClusterRecord, name)
            if record is not None:
                record.agent_last_seen = at or utcnow()
                s.add(record)
                s.commit()

    def record_status(
        self,
        name: str,
        *,
        agent_version: str,
        applied_revision: str | None,
        applied_digest: str | None,
        phase: str,
        cluster_health: str,
        cluster_health_detail: dict[str, Any],
        objects: Sequence[ObjectStatusRecord],
        errors: Sequence[str],
        secret_versions: dict[str, str],
    ) -> ClusterRecord | None:
        now = utcnow()
        with self.session() as s:
            record = s.get(ClusterRecord, name)
            if record is None:
                return None
            record.agent_version = agent_version or record.agent_version
            record.agent_last_seen = now
            record.applied_revision = applied_revision
            record.applied_digest = applied_digest
            record.phase = phase
            record.cluster_health = cluster_health
            record.cluster_health_detail = cluster_health_detail
            if cluster_health in ("Unreachable", "Degraded"):
                record.unhealthy_since = record.unhealthy_since or now
            else:
                record.unhealthy_since = None
            record.object_count = len(objects)
            record.drifted_objects = sum(1 for o in objects if o.drifted)
            record.unhealthy_objects = sum(1 for o in objects if o.health not in ("Healthy", "Suspended"))
            record.last_error = "; ".join(errors)[:4000] if errors else None
            record.secret_versions = dict(secret_versions)
            record.status_updated_at = now
            s.add(record)
            s.execute(delete(ObjectStatusRecord).where(col(ObjectStatusRecord.cluster) == name))
            for obj in objects:
                obj.cluster = name
                obj.updated_at = now
                s.add(obj)
            s.commit()
            s.refresh(record)
            return record

    def object_statuses(self, name: str) -> list[ObjectStatusRecord]:
        with self.session() as s:
            query = (
                select(ObjectStatusRecord)
                .where(ObjectStatusRecord.cluster == name)
                .order_by(col(ObjectStatusRecord.key))
            )
            return list(s.exec(query).all())

    # ------------------------------------------------------------ bootstrap tokens

    def add_bootstrap_token(self, cluster: str, token: str, ttl: timedelta) -> datetime:
        expires = utcnow() + ttl
        with self.session() as s:
            s.add(BootstrapTokenRecord(token_hash=hash_secret(token), cluster=cluster, expires_at=expires))
            s.commit()
        return expires

    def consume_bootstrap_token(self, cluster: str, token: str) -> bool:
        """Single use: true once for a valid, unexpired token of this cluster."""
        now = utcnow()
        with self.session() as s:
            record = s.get(BootstrapTokenRecord, hash_secret(token), with_for_update=True)
            if record is None or record.cluster != cluster or record.used_at is not None:
                return False
            expires = record.expires_at if record.expires_at.tzinfo else record.expires_at.replace(tzinfo=now.tzinfo)
            if expires < now:
                return False
            record.used_at = now
            s.add(record)
            s.commit()
            return True

    def purge_expired_tokens(self) -> int:
        with self.session() as s:
            result = s.execute(
                delete(BootstrapTokenRecord).where(col(BootstrapTokenRecord.expires_at) < utcnow() - timedelta(days=1))
            )
            s.commit()
            return int(getattr(result, "rowcount", 0) or 0)

    # ------------------------------------------------------------ desired state

    def put_desired(self, cluster: str, revision: str, digest: str, epoch: int, bundle: dict[str, Any]) -> bool:
        """Store a cluster's desired bundle. Returns True when the digest changed."""
        with self.session() as s:
            record = s.get(DesiredRecord, cluster)
            changed = record is None or record.digest != digest
            if record is None:
                record = DesiredRecord(cluster=cluster, revision=revision, digest=digest)
            record.revision = revision
            if changed:
                record.digest = digest
                record.epoch = epoch
                record.bundle = bundle
                record.generated_at = utcnow()
            s.add(record)
            s.commit()
            return changed

    def desired(self, cluster: str) -> DesiredRecord | None:
        with self.session() as s:
            return s.get(DesiredRecord, cluster)

    def desired_digests(self) -> dict[str, tuple[str, str]]:
        """cluster -> (revision, digest), without loading bundles."""
        with self.session() as s:
            rows = s.exec(select(DesiredRecord.cluster, DesiredRecord.revision, DesiredRecord.digest)).all()
            return {cluster: (revision, digest) for cluster, revision, digest in rows}

    # ------------------------------------------------------------ source and revisions

    def source_state(self) -> SourceStateRecord:
        with self.session() as s:
            record = s.get(SourceStateRecord, 1)
            if record is None:
                record = SourceStateRecord(id=1)
                s.add(record)
                s.commit()
                s.refresh(record)
            return record

    def update_source_state(self, **changes: Any) -> SourceStateRecord:
        with self.session() as s:
            record = s.get(SourceStateRecord, 1) or SourceStateRecord(id=1)
            for key, value in changes.items():
                if not hasattr(record, key):
                    raise AttributeError(key)
                setattr(record, key, value)
            s.add(record)
            s.commit()
            s.refresh(record)
            return record

    def record_revision(
        self,
        sha: str,
        *,
        author: str,
        committer: str,
        committed_at: datetime,
        message: str,
        state: str,
        error: str | None = None,
        signature: str | None = None,
    ) -> None:
        with self.session() as s:
            record = s.get(RevisionRecord, sha) or RevisionRecord(sha=sha, seen_at=utcnow())
            record.author = author
            record.committer = committer
            record.committed_at = committed_at
            record.message = message[:4096]
            record.state = state
            record.error = error
            record.signature = signature
            s.add(record)
            s.commit()

    def revision(self, sha: str) -> RevisionRecord | None:
        with self.session() as s:
            return s.get(RevisionRecord, sha)

    # ------------------------------------------------------------ events

    def add_event(
        self,
        kind: str,
        message: str,
        *,
        severity: str = "info",
        cluster: str | None = None,
        commit: str | None = None,
        author: str | None = None,
    ) -> EventRecord:
        with self.session() as s:
            event = EventRecord(
                kind=kind, message=message[:8000], severity=severity, cluster=cluster, commit=commit, author=author
            )
            s.add(event)
            s.commit()
            s.refresh(event)
            return event

    def events(
        self,
        *,
        limit: int = 100,
        cluster: str | None = None,
        kinds: Iterable[str] | None = None,
        after_id: int | None = None,
    ) -> list[EventRecord]:
        with self.session() as s:
            query = select(EventRecord)
            if cluster is not None:
                query = query.where(EventRecord.cluster == cluster)
            if kinds:
                query = query.where(col(EventRecord.kind).in_(list(kinds)))
            if after_id is not None:
                query = query.where(col(EventRecord.id) > after_id)
            query = query.order_by(col(EventRecord.id).desc()).limit(limit)
            return list(reversed(s.exec(query).all()))

    def count_events(self) -> int:
        with self.session() as s:
            return int(s.exec(select(func.count()).select_from(EventRecord)).one())

    # ------------------------------------------------------------ failover

    def failover_groups(self) -> dict[str, FailoverGroupRecord]:
        with self.session() as s:
            return {r.name: r for r in s.exec(select(FailoverGroupRecord)).all()}

    def put_failover_group(
        self, name: str, active: str, epoch: int, reason: str, dns_value: str | None = None
    ) -> FailoverGroupRecord:
        with self.session() as s:
            record = s.get(FailoverGroupRecord, name) or FailoverGroupRecord(name=name, active=active)
            record.active = active
            record.epoch = epoch
            record.reason = reason
            record.moved_at = utcnow()
            if dns_value is not None:
                record.dns_value = dns_value
            s.add(record)
            s.commit()
            s.refresh(record)
            return record

    # ------------------------------------------------------------ secret versions

    def secret_versions(self) -> dict[str, SecretVersionRecord]:
        with self.session() as s:
            return {r.ref: r for r in s.exec(select(SecretVersionRecord)).all()}

    def put_secret_version(self, ref: str, version: str, keyed_digest: str | None) -> bool:
        """Returns True when the version changed."""
        with self.session() as s:
            record = s.get(SecretVersionRecord, ref)
            if record is not None and record.version == version and record.keyed_digest == keyed_digest:
                return False
            if record is None:
                record = SecretVersionRecord(ref=ref, version=version)
            elif record.version != version:
                record.previous_version = record.version
            record.version = version
            record.keyed_digest = keyed_digest
            record.updated_at = utcnow()
            s.add(record)
            s.commit()
            return True

    def update_secret_version(self, ref: str, **changes: Any) -> SecretVersionRecord | None:
        """Change rollout bookkeeping of a recorded source; None if the source was never recorded."""
        with self.session() as s:
            record = s.get(SecretVersionRecord, ref)
            if record is None:
                return None
            for key, value in changes.items():
                if not hasattr(record, key):
                    raise AttributeError(key)
                setattr(record, key, value)
            s.add(record)
            s.commit()
            s.refresh(record)
            return record
