"""What render needs to know about Kubernetes kinds: scope, apply order, pod templates."""

from __future__ import annotations

from typing import Any

CLUSTER_SCOPED_KINDS = frozenset(
    {
        "Namespace",
        "Node",
        "PersistentVolume",
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "StorageClass",
        "PriorityClass",
        "IngressClass",
        "RuntimeClass",
        "CSIDriver",
        "APIService",
        "ValidatingWebhookConfiguration",
        "MutatingWebhookConfiguration",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
    }
)

# Apply order: CRDs, then Namespaces, then RBAC, then config, then workloads, then the rest.
_WAVES: dict[str, int] = {
    "CustomResourceDefinition": 0,
    "Namespace": 1,
    "ServiceAccount": 2,
    "ClusterRole": 2,
    "Role": 2,
    "ClusterRoleBinding": 2,
    "RoleBinding": 2,
    "PriorityClass": 3,
    "StorageClass": 3,
    "ResourceQuota": 3,
    "LimitRange": 3,
    "NetworkPolicy": 3,
    "ConfigMap": 3,
    "Secret": 3,
    "PersistentVolume": 3,
    "PersistentVolumeClaim": 3,
    "Service": 4,
    "Deployment": 5,
    "StatefulSet": 5,
    "DaemonSet": 5,
    "ReplicaSet": 5,
    "Job": 5,
    "CronJob": 5,
    "Pod": 5,
    "HorizontalPodAutoscaler": 6,
    "PodDisruptionBudget": 6,
    "Ingress": 6,
}
CUSTOM_RESOURCE_WAVE = 7

SCALABLE_KINDS = frozenset({"Deployment", "StatefulSet", "ReplicaSet"})
POD_TEMPLATE_KINDS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"})


def wave(obj: dict[str, Any]) -> int:
    return _WAVES.get(str(obj.get("kind")), CUSTOM_RESOURCE_WAVE)


def is_namespaced(obj: dict[str, Any], custom_scopes: dict[tuple[str, str], bool] | None = None) -> bool:
    """Custom resources take their scope from a CRD in the same bundle; otherwise namespaced."""
    kind = str(obj.get("kind"))
    if kind in CLUSTER_SCOPED_KINDS:
        return False
    group = str(obj.get("apiVersion", "")).rpartition("/")[0]
    if custom_scopes and (group, kind) in custom_scopes:
        return custom_scopes[(group, kind)]
    return True


def crd_scopes(objects: list[dict[str, Any]]) -> dict[tuple[str, str], bool]:
    """(group, kind) -> namespaced, for CRDs declared among `objects`."""
    scopes: dict[tuple[str, str], bool] = {}
    for obj in objects:
        if obj.get("kind") != "CustomResourceDefinition":
            continue
        spec = obj.get("spec") or {}
        kind = (spec.get("names") or {}).get("kind")
        if kind:
            scopes[(str(spec.get("group", "")), str(kind))] = spec.get("scope", "Namespaced") == "Namespaced"
    return scopes


def pod_template(obj: dict[str, Any]) -> dict[str, Any] | None:
    """The pod template inside a workload (CronJob: inside its job template), or None."""
    kind = obj.get("kind")
    spec = obj.get("spec")
    if kind == "CronJob" and isinstance(spec, dict):
        spec = (spec.get("jobTemplate") or {}).get("spec")
    elif kind not in POD_TEMPLATE_KINDS:
        return None
    template = spec.get("template") if isinstance(spec, dict) else None
    return template if isinstance(template, dict) else None


def pod_spec(obj: dict[str, Any]) -> dict[str, Any] | None:
    """The pod spec of a Pod or of a workload's pod template, or None."""
    if obj.get("kind") == "Pod":
        spec = obj.get("spec")
        return spec if isinstance(spec, dict) else None
    inner = (pod_template(obj) or {}).get("spec")
    return inner if isinstance(inner, dict) else None


def pod_template_metadata(obj: dict[str, Any]) -> dict[str, Any] | None:
    """The pod template's metadata dict (created if missing), or None for non-workloads."""
    template = pod_template(obj)
    if template is None:
        return None
    meta = template.setdefault("metadata", {})
    return meta if isinstance(meta, dict) else None
