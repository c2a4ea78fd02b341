from __future__ import annotations

from typing import Any

import pytest

from fleet.agent.health import cluster_health, object_health


def _deploy(**status: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "generation": 2},
        "spec": {"replicas": 3},
        "status": {"observedGeneration": 2, **status},
    }


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ({"replicas": 3, "updatedReplicas": 3, "availableReplicas": 3}, "Healthy"),
        ({"replicas": 3, "updatedReplicas": 1, "availableReplicas": 1}, "Progressing"),
        ({"replicas": 4, "updatedReplicas": 3, "availableReplicas": 3}, "Progressing"),
        ({"replicas": 3, "updatedReplicas": 3, "availableReplicas": 2}, "Progressing"),
        (
            {"replicas": 3, "updatedReplicas": 1, "conditions": [
                {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]},
            "Degraded",
        ),
    ],
)
def test_deployment(status: dict[str, Any], expected: str) -> None:
    assert object_health(_deploy(**status)).status == expected


def test_deployment_unobserved_generation_and_paused() -> None:
    unobserved = _deploy(replicas=3, updatedReplicas=3, availableReplicas=3, observedGeneration=1)
    assert object_health(unobserved).status == "Progressing"
    paused = _deploy()
    paused["spec"]["paused"] = True
    assert object_health(paused).status == "Suspended"


def test_statefulset_daemonset_replicaset() -> None:
    sts = {"kind": "StatefulSet", "metadata": {"generation": 1}, "spec": {"replicas": 2},
           "status": {"observedGeneration": 1, "readyReplicas": 2, "currentRevision": "a", "updateRevision": "a"}}
    assert object_health(sts).status == "Healthy"
    sts["status"]["updateRevision"] = "b"
    assert object_health(sts).status == "Progressing"
    sts["status"]["readyReplicas"] = 1
    assert "ready" in object_health(sts).message
    ds = {"kind": "DaemonSet", "metadata": {"generation": 1},
          "status": {"observedGeneration": 1, "desiredNumberScheduled": 3, "updatedNumberScheduled": 3, "numberAvailable": 3}}
    assert object_health(ds).status == "Healthy"
    ds["status"]["numberAvailable"] = 2
    assert object_health(ds).status == "Progressing"
    rs = {"kind": "ReplicaSet", "metadata": {"generation": 1}, "spec": {"replicas": 1},
          "status": {"observedGeneration": 1, "availableReplicas": 0,
                     "conditions": [{"type": "ReplicaFailure", "status": "True", "message": "quota"}]}}
    assert object_health(rs).status == "Degraded"


def test_job_and_cronjob() -> None:
    job = {"kind": "Job", "status": {}}
    assert object_health(job).status == "Progressing"
    job["status"]["conditions"] = [{"type": "Complete", "status": "True"}]
    assert object_health(job).status == "Healthy"
    job["status"]["conditions"] = [{"type": "Failed", "status": "True", "message": "BackoffLimitExceeded"}]
    assert object_health(job).status == "Degraded"
    assert object_health({"kind": "CronJob", "spec": {"suspend": True}}).status == "Suspended"
    assert object_health({"kind": "CronJob", "spec": {}}).status == "Healthy"


def test_service_ingress_pvc_pod_crd_namespace() -> None:
    lb = {"kind": "Service", "spec": {"type": "LoadBalancer"}, "status": {}}
    assert object_health(lb).status == "Progressing"
    lb["status"] = {"loadBalancer": {"ingress": [{"ip": "10.0.0.1"}]}}
    assert object_health(lb).status == "Healthy"
    assert object_health({"kind": "Service", "spec": {"type": "ClusterIP"}}).status == "Healthy"
    assert object_health({"kind": "Ingress", "status": {}}).status == "Progressing"
    for phase, expected in (("Bound", "Healthy"), ("Pending", "Progressing"), ("Lost", "Degraded")):
        assert object_health({"kind": "PersistentVolumeClaim", "status": {"phase": phase}}).status == expected
    crash = {"kind": "Pod", "status": {"phase": "Running", "containerStatuses": [
        {"name": "c", "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}}
    assert object_health(crash).status == "Degraded"
    ready = {"kind": "Pod", "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}
    assert object_health(ready).status == "Healthy"
    crd = {"kind": "CustomResourceDefinition", "status": {"conditions": [{"type": "Established", "status": "True"}]}}
    assert object_health(crd).status == "Healthy"
    assert object_health({"kind": "CustomResourceDefinition"}).status == "Progressing"
    assert object_health({"kind": "Namespace", "status": {"phase": "Terminating"}}).status == "Progressing"
    assert object_health({"kind": "Widget"}).status == "Healthy"
    assert object_health(None).status == "Missing"
    deleting = {"kind": "ConfigMap", "metadata": {"deletionTimestamp": "2024-01-01T00:00:00Z"}}
    assert object_health(deleting).status == "Progressing"


def _node(name: str, ready: bool) -> dict[str, Any]:
    return {"metadata": {"name": name},
            "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def test_cluster_health() -> None:
    healthy = cluster_health([_node("n1", True), _node("n2", True)])
    assert (healthy.status, healthy.nodesReady, healthy.nodesTotal) == ("Healthy", 2, 2)
    degraded = cluster_health([_node("n1", True), _node("n2", False)])
    assert degraded.status == "Degraded" and "n2" in degraded.message and degraded.nodesReady == 1
    down = cluster_health(None, "connection refused")
    assert (down.status, down.apiReachable) == ("Unreachable", False)
