"""Apply order by kind: pure functions shared by apply (forward) and prune (reverse).

Like Flux's kustomize-controller: CRDs first (and wait for them), then
Namespaces, then what workloads depend on, then workloads, then the rest
(custom resources, ingresses, autoscalers). Prune walks the waves backwards
so workloads go before their namespaces and custom resources before their CRDs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

CRD_KIND = "CustomResourceDefinition"

WAVE_CRDS = 0
WAVE_NAMESPACES = 1
WAVE_RBAC = 2
WAVE_CONFIG = 3
WAVE_WORKLOADS = 4
WAVE_REST = 5
WAVE_NAMES = ("crds", "namespaces", "rbac", "config", "workloads", "rest")

_WAVE_BY_KIND: dict[str, int] = {
    CRD_KIND: WAVE_CRDS,
    "Namespace": WAVE_NAMESPACES,
    # cluster policy and identity: workloads fail admission or start without them
    "ServiceAccount": WAVE_RBAC,
    "ClusterRole": WAVE_RBAC,
    "ClusterRoleBinding": WAVE_RBAC,
    "Role": WAVE_RBAC,
    "RoleBinding": WAVE_RBAC,
    "ResourceQuota": WAVE_RBAC,
    "LimitRange": WAVE_RBAC,
    "NetworkPolicy": WAVE_RBAC,
    "PriorityClass": WAVE_RBAC,
    "StorageClass": WAVE_RBAC,
    "PodSecurityPolicy": WAVE_RBAC,
    # what pods mount or reach
    "ConfigMap": WAVE_CONFIG,
    "Secret": WAVE_CONFIG,
    "PersistentVolume": WAVE_CONFIG,
    "PersistentVolumeClaim": WAVE_CONFIG,
    "Service": WAVE_CONFIG,
    "Endpoints": WAVE_CONFIG,
    # workloads
    "Deployment": WAVE_WORKLOADS,
    "StatefulSet": WAVE_WORKLOADS,
    "DaemonSet": WAVE_WORKLOADS,
    "ReplicaSet": WAVE_WORKLOADS,
    "ReplicationController": WAVE_WORKLOADS,
    "Pod": WAVE_WORKLOADS,
    "Job": WAVE_WORKLOADS,
    "CronJob": WAVE_WORKLOADS,
}


def wave_of(kind: str) -> int:
    return _WAVE_BY_KIND.get(kind, WAVE_REST)


def kind_of_key(key: str) -> str:
    """The kind part of an `object_key` (group/kind/namespace/name)."""
    parts = key.split("/")
    return parts[1] if len(parts) >= 4 else ""


def apply_waves(objects: Sequence[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Group objects into non-empty waves, keeping the given order inside a wave."""
    waves: list[list[dict[str, Any]]] = [[] for _ in WAVE_NAMES]
    for obj in objects:
        waves[wave_of(str(obj.get("kind", "")))].append(obj)
    return [wave for wave in waves if wave]


def delete_order(keys: Iterable[str]) -> list[str]:
    """Keys sorted for deletion: the last wave first; stable by key inside a wave."""
    return sorted(keys, key=lambda key: (-wave_of(kind_of_key(key)), key))
