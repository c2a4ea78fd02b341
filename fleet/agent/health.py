"""Per-object and per-cluster health, Argo CD style. Pure functions of live objects."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fleet.protocol import ClusterHealth, HealthStatus


@dataclass(frozen=True)
class Health:
    status: HealthStatus
    message: str = ""


HEALTHY = Health("Healthy")

# container waiting reasons that will not fix themselves
_BAD_WAITING_REASONS = frozenset(
    {
        "CrashLoopBackOff",
        "ErrImagePull",
        "ImagePullBackOff",
        "CreateContainerConfigError",
        "InvalidImageName",
        "CreateContainerError",
        "RunContainerError",
    }
)


def _conditions(obj: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return {str(c.get("type")): c for c in conditions if isinstance(c, Mapping)}


def _generation_observed(obj: Mapping[str, Any]) -> bool:
    generation = (obj.get("metadata") or {}).get("generation") or 0
    observed = (obj.get("status") or {}).get("observedGeneration") or 0
    return bool(observed) and generation <= observed


def _deployment(obj: Mapping[str, Any]) -> Health:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    if spec.get("paused"):
        return Health("Suspended", "deployment is paused")
    if not _generation_observed(obj):
        return Health("Progressing", "waiting for rollout: the controller has not observed the latest generation")
    progressing = _conditions(obj).get("Progressing")
    if progressing and progressing.get("reason") == "ProgressDeadlineExceeded":
        return Health("Degraded", f"deployment {obj['metadata'].get('name')} exceeded its progress deadline")
    wanted = spec.get("replicas", 1)
    updated = status.get("updatedReplicas") or 0
    total = status.get("replicas") or 0
    available = status.get("availableReplicas") or 0
    if updated < wanted:
        return Health("Progressing", f"waiting for rollout: {updated} of {wanted} new replicas updated")
    if total > updated:
        return Health("Progressing", f"waiting for rollout: {total - updated} old replicas pending termination")
    if available < updated:
        return Health("Progressing", f"waiting for rollout: {available} of {updated} updated replicas available")
    return HEALTHY


def _statefulset(obj: Mapping[str, Any]) -> Health:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    if not _generation_observed(obj):
        return Health("Progressing", "waiting for the controller to observe the latest generation")
    wanted = spec.get("replicas", 1)
    ready = status.get("readyReplicas") or 0
    if ready < wanted:
        return Health("Progressing", f"waiting for {wanted - ready} pods to be ready")
    strategy = spec.get("updateStrategy") or {}
    if strategy.get("type") == "OnDelete":
        return HEALTHY
    partition = (strategy.get("rollingUpdate") or {}).get("partition") or 0
    if partition:
        updated = status.get("updatedReplicas") or 0
        if updated < wanted - partition:
            return Health("Progressing", f"partitioned rollout: {updated} of {wanted - partition} pods updated")
        return Health("Healthy", "partitioned rollout complete")
    if status.get("updateRevision") and status.get("updateRevision") != status.get("currentRevision"):
        return Health("Progressing", "waiting for the rolling update to complete")
    return HEALTHY


def _daemonset(obj: Mapping[str, Any]) -> Health:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    if not _generation_observed(obj):
        return Health("Progressing", "waiting for the controller to observe the latest generation")
    if (spec.get("updateStrategy") or {}).get("type") == "OnDelete":
        return HEALTHY
    wanted = status.get("desiredNumberScheduled") or 0
    updated = status.get("updatedNumberScheduled") or 0
    available = status.get("numberAvailable") or 0
    if updated < wanted:
        return Health("Progressing", f"waiting for rollout: {updated} of {wanted} pods updated")
    if available < wanted:
        return Health("Progressing", f"waiting for rollout: {available} of {wanted} pods available")
    return HEALTHY


def _replicaset(obj: Mapping[str, Any]) -> Health:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    if not _generation_observed(obj):
        return Health("Progressing", "waiting for the controller to observe the latest generation")
    failure = _conditions(obj).get("ReplicaFailure")
    if failure and failure.get("status") == "True":
        return Health("Degraded", str(failure.get("message") or "replica failure"))
    wanted = spec.get("replicas", 1)
    available = status.get("availableReplicas") or 0
    if available < wanted:
        return Health("Progressing", f"{available} of {wanted} replicas available")
    return HEALTHY


def _job(obj: Mapping[str, Any]) -> Health:
    conditions = _conditions(obj)
    outcomes: tuple[tuple[str, HealthStatus], ...] = (
        ("Failed", "Degraded"),
        ("Complete", "Healthy"),
        ("Suspended", "Suspended"),
    )
    for kind, health in outcomes:
        condition = conditions.get(kind)
        if condition and condition.get("status") == "True":
            return Health(health, str(condition.get("message") or condition.get("reason") or ""))
    return Health("Progressing", "job is running")


def _cronjob(obj: Mapping[str, Any]) -> Health:
    if (obj.get("spec") or {}).get("suspend"):
        return Health("Suspended", "cronjob is suspended")
    return HEALTHY


def _has_lb_ingress(obj: Mapping[str, Any]) -> bool:
    return bool(((obj.get("status") or {}).get("loadBalancer") or {}).get("ingress"))


def _service(obj: Mapping[str, Any]) -> Health:
    if (obj.get("spec") or {}).get("type") == "LoadBalancer" and not _has_lb_ingress(obj):
        return Health("Progressing", "waiting for the load balancer")
    return HEALTHY


def _ingress(obj: Mapping[str, Any]) -> Health:
    return HEALTHY if _has_lb_ingress(obj) else Health("Progressing", "waiting for the load balancer address")


def _pvc(obj: Mapping[str, Any]) -> Health:
    phase = (obj.get("status") or {}).get("phase")
    if phase == "Bound":
        return HEALTHY
    if phase == "Lost":
        return Health("Degraded", "the claim lost its volume")
    return Health("Progressing", f"claim is {phase or 'Pending'}")


def _pod(obj: Mapping[str, Any]) -> Health:
    status = obj.get("status") or {}
    phase = status.get("phase")
    for container in status.get("containerStatuses") or []:
        waiting = (container.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in _BAD_WAITING_REASONS:
            return Health("Degraded", f"container {container.get('name')}: {waiting['reason']}")
    if phase == "Succeeded":
        return HEALTHY
    if phase == "Failed":
        return Health("Degraded", str(status.get("message") or status.get("reason") or "pod failed"))
    if phase == "Running":
        ready = _conditions(obj).get("Ready")
        if ready and ready.get("status") == "True":
            return HEALTHY
        return Health("Progressing", "pod is running but not ready")
    if phase == "Pending" or phase is None:
        return Health("Progressing", "pod is pending")
    return Health("Unknown", f"pod phase {phase}")


def _crd(obj: Mapping[str, Any]) -> Health:
    conditions = _conditions(obj)
    names = conditions.get("NamesAccepted")
    if names and names.get("status") == "False":
        return Health("Degraded", str(names.get("message") or "names not accepted"))
    established = conditions.get("Established")
    if established and established.get("status") == "True":
        return HEALTHY
    return Health("Progressing", "waiting for the CRD to be established")


def _namespace(obj: Mapping[str, Any]) -> Health:
    phase = (obj.get("status") or {}).get("phase")
    if phase in (None, "Active"):
        return HEALTHY
    return Health("Progressing", f"namespace is {phase}")


_BY_KIND: dict[str, Callable[[Mapping[str, Any]], Health]] = {
    "Deployment": _deployment,
    "StatefulSet": _statefulset,
    "DaemonSet": _daemonset,
    "ReplicaSet": _replicaset,
    "Job": _job,
    "CronJob": _cronjob,
    "Service": _service,
    "Ingress": _ingress,
    "PersistentVolumeClaim": _pvc,
    "Pod": _pod,
    "CustomResourceDefinition": _crd,
    "Namespace": _namespace,
}


def object_health(live: Mapping[str, Any] | None) -> Health:
    """Health of one live object; None means it does not exist."""
    if live is None:
        return Health("Missing", "object does not exist in the cluster")
    if (live.get("metadata") or {}).get("deletionTimestamp"):
        return Health("Progressing", "object is being deleted")
    assess = _BY_KIND.get(str(live.get("kind", "")))
    return assess(live) if assess else HEALTHY


def _node_ready(node: Mapping[str, Any]) -> bool:
    ready = _conditions(node).get("Ready")
    return ready is not None and ready.get("status") == "True"


def cluster_health(nodes: Sequence[Mapping[str, Any]] | None, error: str = "") -> ClusterHealth:
    """Cluster health from its node list; `nodes=None` means the API could not be reached."""
    if nodes is None:
        return ClusterHealth(
            status="Unreachable", apiReachable=False, message=(error or "API server unreachable")[:1024]
        )
    total = len(nodes)
    ready = sum(1 for node in nodes if _node_ready(node))
    if total == 0:
        return ClusterHealth(status="Degraded", apiReachable=True, message="no nodes registered")
    if ready < total:
        not_ready = sorted(
            str((n.get("metadata") or {}).get("name")) for n in nodes if not _node_ready(n)
        )
        message = f"{total - ready} of {total} nodes not ready: {', '.join(not_ready[:10])}"
        return ClusterHealth(
            status="Degraded", apiReachable=True, nodesReady=ready, nodesTotal=total, message=message[:1024]
        )
    return ClusterHealth(status="Healthy", apiReachable=True, nodesReady=ready, nodesTotal=total)
