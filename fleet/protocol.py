"""The hub <-> agent wire protocol, shared by both sides.

Agents never read Git and the hub never applies to clusters: this module is
the whole contract between them. Every model rejects unknown fields so a
version skew shows up as a clear 422 rather than silently dropped data.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

API_PREFIX = "/v1"

# Ownership: every object fleet applies carries these labels. Prune only ever
# considers objects that carry them (and are in the agent's inventory).
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "fleet"
LABEL_APP = "fleet.dev/app"
LABEL_CLUSTER = "fleet.dev/cluster"

# Annotations set by the hub's renderer
ANNOTATION_SECRET_SOURCE = "fleet.dev/secret-source"  # "sops:<file>" | "vault"; value comes sealed
ANNOTATION_SECRET_DIGEST = "fleet.dev/secret-digest"  # keyed HMAC of the values, never the values
ANNOTATION_SECRETS_CHECKSUM = "fleet.dev/secrets-checksum"  # on pod templates: rolls workloads on change
ANNOTATION_SELF_HEAL = "fleet.dev/self-heal"  # "false" turns drift revert off for an object

FIELD_MANAGER = "fleet-agent"

HealthStatus = Literal["Healthy", "Progressing", "Degraded", "Missing", "Suspended", "Unknown"]
ClusterHealthStatus = Literal["Healthy", "Progressing", "Degraded", "Unreachable", "Unknown"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def object_key(obj: dict[str, Any]) -> str:
    """Stable identity of a Kubernetes object: apiVersion/kind/namespace/name.

    The group is kept (not the version) so an apiVersion bump of the same
    kind is the same object.
    """
    api_version = str(obj.get("apiVersion", ""))
    group = api_version.rpartition("/")[0] if "/" in api_version else ""
    meta = obj.get("metadata") or {}
    namespace = meta.get("namespace") or ""
    return f"{group}/{obj.get('kind', '')}/{namespace}/{meta.get('name', '')}"


# ------------------------------------------------------------ bootstrap


class BootstrapRequest(Strict):
    token: str = Field(min_length=16, max_length=256)
    publicKey: str = Field(pattern=r"^age1[0-9a-z]{58}$", description="the agent's age recipient")
    agentVersion: str = Field(default="", max_length=64)


class BootstrapResponse(Strict):
    cluster: str
    credential: str = Field(description="per-cluster bearer credential; the hub keeps only its hash")


# ------------------------------------------------------------ desired state


class AppPolicy(Strict):
    name: str
    selfHeal: bool = True
    prune: bool = True


class PrunePolicy(Strict):
    enabled: bool = True
    maxDeleteShare: float = 0.5


class SealedSecrets(Strict):
    """Secret values for one cluster, age-encrypted to its agent's public key."""

    recipient: str
    ciphertext: str = Field(description="base64 of the age ciphertext of a JSON object {objectKey: {data: {...}}}")


class DesiredState(Strict):
    cluster: str
    revision: str
    digest: str
    epoch: int = Field(default=0, description="failover fencing epoch; agents ignore older ones")
    generatedAt: datetime
    objects: list[dict[str, Any]] = Field(description="ordered: CRDs, Namespaces, RBAC, config, workloads")
    apps: list[AppPolicy] = Field(default_factory=list)
    prune: PrunePolicy = Field(default_factory=PrunePolicy)
    pollInterval: int = 15
    driftInterval: int = 30
    secrets: SealedSecrets | None = None
    secretVersions: dict[str, str] = Field(
        default_factory=dict, description="secret reference -> version fingerprint delivered in this bundle"
    )


# ------------------------------------------------------------ status


class ObjectStatus(Strict):
    key: str
    app: str = ""
    health: HealthStatus = "Unknown"
    message: str = Field(default="", max_length=1024)
    drifted: bool = False


class DriftEvent(Strict):
    key: str
    fields: list[str] = Field(default_factory=list, max_length=100)
    reverted: bool = False
    at: datetime


class ClusterHealth(Strict):
    status: ClusterHealthStatus = "Unknown"
    apiReachable: bool = False
    nodesReady: int = 0
    nodesTotal: int = 0
    message: str = Field(default="", max_length=1024)


class StatusReport(Strict):
    """Posted by the agent after every cycle; it is also the heartbeat."""

    agentVersion: str = Field(default="", max_length=64)
    epoch: int = 0
    appliedRevision: str | None = None
    appliedDigest: str | None = None
    phase: Literal["Idle", "Applied", "Progressing", "Failed", "Fenced"] = "Idle"
    clusterHealth: ClusterHealth = Field(default_factory=ClusterHealth)
    objects: list[ObjectStatus] = Field(default_factory=list, max_length=20000)
    drift: list[DriftEvent] = Field(default_factory=list, max_length=1000)
    pruned: list[str] = Field(default_factory=list, max_length=20000)
    errors: list[str] = Field(default_factory=list, max_length=100)
    secretVersions: dict[str, str] = Field(default_factory=dict)
