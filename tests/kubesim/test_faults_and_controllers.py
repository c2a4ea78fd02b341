"""Fault injection, simulated controllers, wipe, multi-cluster isolation and the admin endpoint."""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from fleet.kubesim import SimCluster, Simulator
from fleet.kubesim import kubeconfig as kubeconfig_module


def _client(cluster: SimCluster) -> httpx.Client:
    verify: Any = ssl.create_default_context(cadata=cluster.ca_pem.decode()) if cluster.ca_pem else True
    return httpx.Client(base_url=cluster.url, verify=verify, timeout=10,
                        headers={"Authorization": f"Bearer {cluster.token}"})  # fmt: skip


def _wait_for(predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    pytest.fail("condition not reached in time")


def _workload(kind: str, name: str, **spec: Any) -> dict[str, Any]:
    template = {"metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}],
                         **({"restartPolicy": "Never"} if kind == "Job" else {})}}  # fmt: skip
    body: dict[str, Any] = {"apiVersion": "batch/v1" if kind == "Job" else "apps/v1", "kind": kind,
                            "metadata": {"name": name, "namespace": "default"}, "spec": {"template": template, **spec}}  # fmt: skip
    if kind != "Job":
        body["spec"]["selector"] = {"matchLabels": {"app": name}}
    return body


PATHS = {"Deployment": "apps/v1/namespaces/default/deployments", "StatefulSet": "apps/v1/namespaces/default/statefulsets",
         "DaemonSet": "apps/v1/namespaces/default/daemonsets", "Job": "batch/v1/namespaces/default/jobs"}  # fmt: skip


def _create(api: httpx.Client, kind: str, name: str, **spec: Any) -> None:
    response = api.post(f"/apis/{PATHS[kind]}", json=_workload(kind, name, **spec))
    assert response.status_code == 201, response.text


def test_controllers_bring_workloads_to_ready(sim_cluster: SimCluster) -> None:
    with _client(sim_cluster) as api:
        _create(api, "Deployment", "dep", replicas=2)
        _create(api, "StatefulSet", "sts", replicas=2, serviceName="sts")
        _create(api, "DaemonSet", "ds")
        _create(api, "Job", "job")
        deployment = _wait_for(lambda: (d := sim_cluster.get_object("apps/v1", "Deployment", "default", "dep"))
                               and d["status"].get("availableReplicas") == 2 and d)  # fmt: skip
        conditions = {c["type"]: c for c in deployment["status"]["conditions"]}
        assert conditions["Available"]["reason"] == "MinimumReplicasAvailable"
        assert conditions["Progressing"]["reason"] == "NewReplicaSetAvailable"
        assert deployment["status"]["observedGeneration"] == 1 and deployment["status"]["updatedReplicas"] == 2
        replicasets = api.get("/apis/apps/v1/namespaces/default/replicasets").json()["items"]
        assert len(replicasets) == 1 and replicasets[0]["metadata"]["ownerReferences"][0]["name"] == "dep"
        statefulset = _wait_for(lambda: (s := sim_cluster.get_object("apps/v1", "StatefulSet", "default", "sts"))
                                and s["status"].get("readyReplicas") == 2 and s)  # fmt: skip
        assert statefulset["status"]["currentRevision"] == statefulset["status"]["updateRevision"]
        daemonset = _wait_for(lambda: (d := sim_cluster.get_object("apps/v1", "DaemonSet", "default", "ds"))
                              and d["status"].get("numberReady") == 3 and d)  # fmt: skip
        assert daemonset["status"]["desiredNumberScheduled"] == 3
        job = _wait_for(lambda: (j := sim_cluster.get_object("batch/v1", "Job", "default", "job"))
                        and j["status"].get("succeeded") == 1 and j)  # fmt: skip
        assert {c["type"] for c in job["status"]["conditions"]} >= {"Complete"} and job["status"]["completionTime"]
        assert job["spec"]["selector"]["matchLabels"]["batch.kubernetes.io/controller-uid"] == job["metadata"]["uid"]

        pvc = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
               "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "5Gi"}}}}  # fmt: skip
        assert api.post("/api/v1/namespaces/default/persistentvolumeclaims", json=pvc).status_code == 201
        bound = _wait_for(lambda: (p := sim_cluster.get_object("v1", "PersistentVolumeClaim", "default", "data"))
                          and p["status"].get("phase") == "Bound" and p)  # fmt: skip
        assert bound["status"]["capacity"] == {"storage": "5Gi"} and bound["spec"]["storageClassName"] == "standard"

        service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "public"},
                   "spec": {"type": "LoadBalancer", "selector": {"app": "dep"}, "ports": [{"port": 80}]}}  # fmt: skip
        assert api.post("/api/v1/namespaces/default/services", json=service).status_code == 201
        _wait_for(lambda: ((sim_cluster.get_object("v1", "Service", "default", "public") or {})
                           .get("status", {}).get("loadBalancer", {}).get("ingress")))  # fmt: skip

        # scaling converges to the new count
        api.patch("/apis/apps/v1/namespaces/default/deployments/dep/scale", json={"spec": {"replicas": 4}},
                  headers={"Content-Type": "application/merge-patch+json"})  # fmt: skip
        scaled = _wait_for(lambda: (d := sim_cluster.get_object("apps/v1", "Deployment", "default", "dep"))
                           and d["status"].get("readyReplicas") == 4 and d)  # fmt: skip
        assert scaled["status"]["observedGeneration"] == 2
        scale = api.get("/apis/apps/v1/namespaces/default/deployments/dep/scale").json()
        assert scale["kind"] == "Scale" and scale["spec"]["replicas"] == 4 and scale["status"]["selector"] == "app=dep"


def test_node_not_ready_and_daemonset(sim_cluster: SimCluster) -> None:
    with _client(sim_cluster) as api:
        _create(api, "DaemonSet", "agent")
        _wait_for(lambda: (sim_cluster.get_object("apps/v1", "DaemonSet", "default", "agent") or {})
                  .get("status", {}).get("numberReady") == 3)  # fmt: skip
        node_name = f"{sim_cluster.name}-node-2"
        sim_cluster.faults.node_ready(node_name, False)
        node = sim_cluster.get_object("v1", "Node", None, node_name)
        assert node is not None
        ready = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
        assert ready["status"] == "False"
        status = _wait_for(lambda: (d := sim_cluster.get_object("apps/v1", "DaemonSet", "default", "agent"))
                           and d["status"].get("numberReady") == 2 and d["status"])  # fmt: skip
        assert status["numberUnavailable"] == 1
        sim_cluster.faults.node_ready(node_name, True)
        _wait_for(lambda: (sim_cluster.get_object("apps/v1", "DaemonSet", "default", "agent") or {})
                  .get("status", {}).get("numberReady") == 3)  # fmt: skip
        with pytest.raises(KeyError):
            sim_cluster.faults.node_ready("no-such-node", False)


def test_stuck_deployment_reports_progress_deadline(sim_cluster: SimCluster) -> None:
    sim_cluster.faults.stuck("Deployment", "default", "slow", True)
    with _client(sim_cluster) as api:
        _create(api, "Deployment", "slow")

        def deadline_exceeded() -> Any:
            deployment = sim_cluster.get_object("apps/v1", "Deployment", "default", "slow") or {}
            conditions = {c["type"]: c for c in deployment.get("status", {}).get("conditions", [])}
            progressing = conditions.get("Progressing", {})
            return progressing.get("reason") == "ProgressDeadlineExceeded" and conditions

        conditions = _wait_for(deadline_exceeded)
        assert conditions["Available"]["status"] == "False"
        assert conditions["Progressing"]["status"] == "False"
        sim_cluster.faults.stuck("Deployment", "default", "slow", False)
        _wait_for(lambda: (sim_cluster.get_object("apps/v1", "Deployment", "default", "slow") or {})
                  .get("status", {}).get("availableReplicas") == 1)  # fmt: skip


def test_latency_and_error_rate(sim_cluster: SimCluster) -> None:
    with _client(sim_cluster) as api:
        sim_cluster.faults.latency(0.2)
        started = time.monotonic()
        assert api.get("/api/v1/namespaces").status_code == 200
        assert time.monotonic() - started >= 0.2
        sim_cluster.faults.latency(0)
        sim_cluster.faults.error_rate(1.0)
        failed = api.get("/api/v1/namespaces")
        assert failed.status_code in (500, 503) and failed.json()["kind"] == "Status"
        sim_cluster.faults.error_rate(0.5)
        codes = {api.get("/api/v1/namespaces").status_code for _ in range(40)}
        assert 200 in codes and codes & {500, 503}
        sim_cluster.faults.error_rate(0)
        assert api.get("/api/v1/namespaces").status_code == 200
        with pytest.raises(ValueError):
            sim_cluster.faults.error_rate(2)


def _refused(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) != 0


def test_api_down_refuses_only_that_cluster_and_comes_back_on_the_same_port(simulator: Simulator) -> None:
    first = simulator.add_cluster("down-a")
    second = simulator.add_cluster("down-b")
    try:
        with _client(first) as api:
            api.post("/api/v1/namespaces/default/configmaps",
                     json={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kept"}})  # fmt: skip
        port = first.port
        first.faults.api_down(True)
        assert _refused(port)
        with _client(second) as other:
            assert other.get("/api/v1/namespaces").status_code == 200
        first.faults.api_down(False)
        assert first.port == port
        with _client(first) as api:
            assert api.get("/api/v1/namespaces/default/configmaps/kept").status_code == 200
    finally:
        simulator.remove_cluster("down-a")
        simulator.remove_cluster("down-b")
    assert _refused(port)


def test_wipe_loses_everything_but_builtins(sim_cluster: SimCluster) -> None:
    with _client(sim_cluster) as api:
        api.post("/api/v1/namespaces", json={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "mine"}})
        crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
               "metadata": {"name": "things.wipe.example.com"},
               "spec": {"group": "wipe.example.com", "scope": "Cluster",
                        "names": {"kind": "Thing", "plural": "things"},
                        "versions": [{"name": "v1", "served": True, "storage": True,
                                      "schema": {"openAPIV3Schema": {"type": "object",
                                                                     "x-kubernetes-preserve-unknown-fields": True}}}]}}  # fmt: skip
        assert api.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json=crd).status_code == 201
        _wait_for(lambda: api.get("/apis/wipe.example.com/v1").status_code == 200)
        sim_cluster.wipe()
        assert api.get("/api/v1/namespaces/mine").status_code == 404
        assert api.get("/apis/wipe.example.com/v1").status_code == 404
        names = {n["metadata"]["name"] for n in api.get("/api/v1/namespaces").json()["items"]}
        assert names == {"default", "kube-node-lease", "kube-public", "kube-system"}
        assert len(api.get("/api/v1/nodes").json()["items"]) == 3


def test_kubeconfig_and_admin_endpoint(simulator: Simulator, sim_cluster: SimCluster, tmp_path: Any) -> None:
    admin_url = simulator.start_admin()
    path = simulator.write_kubeconfig(tmp_path / "all.kubeconfig")
    assert path.stat().st_mode & 0o777 == 0o600
    config = kubeconfig_module.admin_endpoint(__import__("yaml").safe_load(path.read_text()))
    assert config is not None and config[0] == admin_url
    document = simulator.kubeconfig()
    contexts = {c["name"] for c in document["contexts"]}
    assert sim_cluster.name in contexts and document["current-context"] == next(iter(simulator.clusters))
    headers = {"Authorization": f"Bearer {config[1]}"}
    assert httpx.get(f"{admin_url}/clusters", timeout=10).status_code == 401
    clusters = httpx.get(f"{admin_url}/clusters", headers=headers, timeout=10).json()
    assert clusters[sim_cluster.name]["url"] == sim_cluster.url
    response = httpx.post(f"{admin_url}/clusters/{sim_cluster.name}/faults", json={"api_down": True}, headers=headers,
                          timeout=10)  # fmt: skip
    assert response.status_code == 200 and _refused(sim_cluster.port)
    httpx.post(f"{admin_url}/clusters/{sim_cluster.name}/faults", json={"api_down": False}, headers=headers, timeout=10)
    assert not _refused(sim_cluster.port)
    counters = httpx.get(f"{admin_url}/clusters/{sim_cluster.name}/counters", headers=headers, timeout=10).json()
    assert set(counters) >= {"get", "list", "watch", "create", "update", "patch", "delete", "total"}
    assert httpx.get(f"{admin_url}/clusters/nope/counters", headers=headers, timeout=10).status_code == 404


def test_plain_http_simulator_and_add_before_start() -> None:
    simulator = Simulator(tls=False, controller_delay=0.01, nodes_per_cluster=1)
    cluster = simulator.add_cluster("early")
    simulator.start()
    try:
        assert cluster.url.startswith("http://") and cluster.ca_pem is None
        with _client(cluster) as api:
            nodes = api.get("/api/v1/nodes").json()["items"]
            assert [n["metadata"]["name"] for n in nodes] == ["early-node-1"]
        assert "certificate-authority-data" not in simulator.kubeconfig()["clusters"][0]["cluster"]
    finally:
        simulator.stop()
