"""What operators see: per-cluster status rows computed from store records. Pure functions.

The API serves these models; `fleet status` renders them. A cluster's overall
health folds together its agent's heartbeat, the cluster health the agent
reported, its objects' health and whether it runs the desired digest.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from fleet.store.models import ClusterRecord, EventRecord, ObjectStatusRecord

OverallHealth = Literal["Healthy", "Progressing", "Degraded", "Unreachable", "Unknown", "Removed"]

# Sort order for tables: problems first.
HEALTH_RANK: dict[str, int] = {
    "Unreachable": 0,
    "Degraded": 1,
    "Progressing": 2,
    "Unknown": 3,
    "Healthy": 4,
    "Removed": 5,
}


class ClusterRow(BaseModel):
    name: str
    provider: str
    region: str | None
    labels: dict[str, str]
    state: str
    stateMessage: str = ""
    endpoint: str | None = None
    kubernetesVersion: str | None = None
    agentLastSeen: datetime | None = None
    agentSecondsAgo: float | None = None
    desiredRevision: str | None = None
    desiredDigest: str | None = None
    appliedRevision: str | None = None
    appliedDigest: str | None = None
    inSync: bool = False
    phase: str | None = None
    driftedObjects: int = 0
    objects: int = 0
    unhealthyObjects: int = 0
    clusterHealth: str = "Unknown"
    health: OverallHealth = "Unknown"
    lastError: str | None = None
    epoch: int = 0
    failoverGroup: str | None = None
    failoverRole: str | None = None
    active: bool | None = None


class ObjectRow(BaseModel):
    key: str
    app: str
    health: str
    drifted: bool
    message: str


class EventRow(BaseModel):
    id: int
    at: datetime
    kind: str
    severity: str
    cluster: str | None
    message: str
    commit: str | None
    author: str | None


class ClusterDetail(BaseModel):
    cluster: ClusterRow
    objects: list[ObjectRow]
    events: list[EventRow]


class FleetSummary(BaseModel):
    total: int
    byHealth: dict[str, int]
    inSync: int
    outOfSync: int
    drifted: int
    ok: bool


class FailoverGroupRow(BaseModel):
    name: str
    active: str
    epoch: int
    reason: str
    movedAt: datetime | None
    members: list[str]
    policy: str
    mode: str
    dnsValue: str | None = None


class SourceRow(BaseModel):
    url: str
    branch: str
    currentRevision: str | None
    remoteRevision: str | None
    heldRevision: str | None
    heldReason: str | None
    lastFetchAt: datetime | None
    lastError: str | None
    pollInterval: int


class FleetStatus(BaseModel):
    source: SourceRow
    clusters: list[ClusterRow]
    summary: FleetSummary
    failover: list[FailoverGroupRow] = []


def _aware(value: datetime | None, now: datetime) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=now.tzinfo)


def overall_health(
    record: ClusterRecord, in_sync: bool, seconds_since_seen: float | None, unreachable_after: float
) -> OverallHealth:
    if record.state == "removed":
        return "Removed"
    if seconds_since_seen is None:
        return "Unknown" if record.state != "error" else "Degraded"
    if seconds_since_seen > unreachable_after or record.cluster_health == "Unreachable":
        return "Unreachable"
    if record.cluster_health == "Degraded" or record.phase == "Failed" or record.state == "error":
        return "Degraded"
    if record.unhealthy_objects:
        # Missing/Degraded objects on a synced cluster are a problem; while syncing they are progress.
        return "Degraded" if in_sync and record.phase != "Progressing" else "Progressing"
    if not in_sync or record.phase == "Progressing":
        return "Progressing"
    return "Healthy"


def cluster_row(
    record: ClusterRecord,
    desired: tuple[str, str] | None,
    now: datetime,
    unreachable_after: float,
    failover_active: dict[str, str] | None = None,
    epoch: int = 0,
    watching_since: datetime | None = None,
) -> ClusterRow:
    seen = _aware(record.agent_last_seen, now)
    seconds = (now - seen).total_seconds() if seen else None
    # silence while the hub itself was down says nothing about the cluster
    heard = max(seen, watching_since) if seen and watching_since else seen
    silent = (now - heard).total_seconds() if heard else None
    desired_revision, desired_digest = desired if desired else (None, None)
    in_sync = desired_digest is not None and record.applied_digest == desired_digest
    spec_failover = (record.spec or {}).get("failover") or {}
    group = spec_failover.get("group")
    return ClusterRow(
        name=record.name,
        provider=record.provider,
        region=record.region,
        labels=dict(record.labels),
        state=record.state,
        stateMessage=record.state_message,
        endpoint=record.endpoint,
        kubernetesVersion=record.kubernetes_version,
        agentLastSeen=seen,
        agentSecondsAgo=round(seconds, 1) if seconds is not None else None,
        desiredRevision=desired_revision,
        desiredDigest=desired_digest,
        appliedRevision=record.applied_revision,
        appliedDigest=record.applied_digest,
        inSync=in_sync,
        phase=record.phase,
        driftedObjects=record.drifted_objects,
        objects=record.object_count,
        unhealthyObjects=record.unhealthy_objects,
        clusterHealth=record.cluster_health,
        health=overall_health(record, in_sync, silent, unreachable_after),
        lastError=record.last_error,
        epoch=epoch,
        failoverGroup=group,
        failoverRole=spec_failover.get("role"),
        active=(failover_active or {}).get(group) == record.name if group else None,
    )


def sort_rows(rows: Iterable[ClusterRow]) -> list[ClusterRow]:
    """Problems first, then out-of-sync, then by name."""
    return sorted(rows, key=lambda r: (HEALTH_RANK.get(r.health, 9), r.inSync, r.driftedObjects == 0, r.name))


def summarize(rows: Sequence[ClusterRow]) -> FleetSummary:
    live = [r for r in rows if r.health != "Removed"]
    by_health: dict[str, int] = {}
    for row in live:
        by_health[row.health] = by_health.get(row.health, 0) + 1
    in_sync = sum(1 for r in live if r.inSync)
    drifted = sum(1 for r in live if r.driftedObjects)
    # An empty fleet is not "ok": before the first revision loads, nothing has converged.
    ok = bool(live) and all(r.health == "Healthy" and r.inSync for r in live)
    return FleetSummary(
        total=len(live), byHealth=by_health, inSync=in_sync, outOfSync=len(live) - in_sync, drifted=drifted, ok=ok
    )


def object_rows(records: Iterable[ObjectStatusRecord]) -> list[ObjectRow]:
    rows = [ObjectRow(key=r.key, app=r.app, health=r.health, drifted=r.drifted, message=r.message) for r in records]
    return sorted(rows, key=lambda r: (HEALTH_RANK.get(r.health, 3) if r.health != "Missing" else 0, not r.drifted, r.key))


def event_row(record: EventRecord) -> EventRow:
    return EventRow(
        id=record.id or 0,
        at=record.at,
        kind=record.kind,
        severity=record.severity,
        cluster=record.cluster,
        message=record.message,
        commit=record.commit,
        author=record.author,
    )
