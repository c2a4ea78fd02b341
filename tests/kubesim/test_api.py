"""HTTP-level behaviour of kubesim: errors, discovery, watch semantics, tables, counters."""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from fleet.kubesim import SimCluster, Simulator

APPLY = {"Content-Type": "application/apply-patch+yaml"}
MERGE = {"Content-Type": "application/merge-patch+json"}


def _client(cluster: SimCluster, token: str | None = None) -> httpx.Client:
    verify: Any = True
    if cluster.ca_pem is not None:
        verify = ssl.create_default_context(cadata=cluster.ca_pem.decode())
    return httpx.Client(base_url=cluster.url, verify=verify, timeout=30,
                        headers={"Authorization": f"Bearer {token or cluster.token}", "User-Agent": "api-test/1.0"})  # fmt: skip


@pytest.fixture
def api(sim_cluster: SimCluster) -> Iterator[httpx.Client]:
    with _client(sim_cluster) as client:
        yield client


def _configmap(name: str, namespace: str = "default", **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace}, "data": data}


CM = "/api/v1/namespaces/default/configmaps"


def _status(response: httpx.Response, code: int, reason: str) -> dict[str, Any]:
    assert response.status_code == code, response.text
    body = response.json()
    assert body["kind"] == "Status" and body["apiVersion"] == "v1" and body["status"] == "Failure"
    assert body["code"] == code and body["reason"] == reason
    return body  # type: ignore[no-any-return]


def test_authentication(sim_cluster: SimCluster) -> None:
    with _client(sim_cluster, token="wrong") as client:
        _status(client.get("/api/v1/namespaces"), 401, "Unauthorized")
        assert client.get("/version").json()["gitVersion"] == "v1.32.4"


def test_error_statuses(api: httpx.Client) -> None:
    _status(api.post(CM, content=b"{not json", headers={"Content-Type": "application/json"}), 400, "BadRequest")
    missing = _status(api.get(f"{CM}/nope"), 404, "NotFound")
    assert missing["message"] == 'configmaps "nope" not found'
    assert missing["details"] == {"name": "nope", "kind": "configmaps"}
    _status(api.get("/api/v1/namespaces/default/frobs"), 404, "NotFound")
    _status(api.get("/apis/nope.example.com/v1/things"), 404, "NotFound")
    big = _configmap("big", blob="x" * (3 * 1024 * 1024 + 10))
    _status(api.post(CM, content=json.dumps(big)), 413, "RequestEntityTooLarge")
    invalid = _status(api.post(CM, json=_configmap("Not_Valid")), 422, "Invalid")
    assert invalid["details"]["causes"][0]["field"] == "metadata.name"
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"k": "%%%"}}
    _status(api.post("/api/v1/namespaces/default/secrets", json=secret), 422, "Invalid")
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": {
        "selector": {"matchLabels": {"app": "a"}},
        "template": {"metadata": {"labels": {"app": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}}  # fmt: skip
    _status(api.post("/apis/apps/v1/namespaces/default/deployments", json=deployment), 422, "Invalid")
    assert api.post(CM, json=_configmap("dup")).status_code == 201
    _status(api.post(CM, json=_configmap("dup")), 409, "AlreadyExists")
    current = api.get(f"{CM}/dup").json()
    stale = {**current, "metadata": {**current["metadata"], "resourceVersion": "1"}}
    _status(api.put(f"{CM}/dup", json=stale), 409, "Conflict")
    _status(api.post("/api/v1/namespaces/missing/configmaps", json=_configmap("x", "missing")), 404, "NotFound")
    _status(api.patch(f"{CM}/dup", json={}, headers={"Content-Type": "text/plain"}), 415, "UnsupportedMediaType")
    _status(api.patch(f"{CM}/dup", content=b"kind: ConfigMap", headers=APPLY), 400, "BadRequest")  # no fieldManager
    wrong_type = _status(api.post(CM, json={"metadata": {"name": "typed"}, "data": {"a": 1}}), 400, "BadRequest")
    assert "cannot unmarshal integer" in wrong_type["message"]
    protobuf = {"Content-Type": "application/vnd.kubernetes.protobuf"}
    _status(api.post(CM, content=b"not protobuf", headers=protobuf), 415, "UnsupportedMediaType")


def test_metadata_semantics(api: httpx.Client) -> None:
    created = api.post(CM, json=_configmap("meta", a="1")).json()
    metadata = created["metadata"]
    assert metadata["uid"] and metadata["creationTimestamp"].endswith("Z")
    assert "generation" not in metadata  # ConfigMaps have none, like a real server
    assert metadata["managedFields"][0]["manager"] == "api-test"  # from the User-Agent
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "gen"}, "spec": {
        "selector": {"matchLabels": {"app": "g"}},
        "template": {"metadata": {"labels": {"app": "g"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}}  # fmt: skip
    path = "/apis/apps/v1/namespaces/default/deployments/gen"
    assert api.post("/apis/apps/v1/namespaces/default/deployments", json=deployment).json()["metadata"]["generation"] == 1
    labelled = api.patch(path, json={"metadata": {"labels": {"x": "1"}}}, headers=MERGE).json()
    assert labelled["metadata"]["generation"] == 1
    changed = api.patch(path, json={"spec": {"replicas": 2}}, headers=MERGE).json()
    assert changed["metadata"]["generation"] == 2
    rvs = [int(created["metadata"]["resourceVersion"]), int(labelled["metadata"]["resourceVersion"]),
           int(changed["metadata"]["resourceVersion"])]  # fmt: skip
    assert rvs == sorted(rvs) and len(set(rvs)) == 3
    # a status write through the main resource is ignored
    ignored = api.patch(path, json={"status": {"replicas": 99}}, headers=MERGE).json()
    assert ignored["status"].get("replicas") != 99
    generated = api.post(CM, json={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "gen-"}})
    assert generated.status_code == 201 and generated.json()["metadata"]["name"].startswith("gen-")


def test_dry_run_everywhere(api: httpx.Client, sim_cluster: SimCluster) -> None:
    api.post(CM, json=_configmap("dry", a="1"))
    rv = api.get(f"{CM}/dry").json()["metadata"]["resourceVersion"]
    assert api.post(CM, params={"dryRun": "All"}, json=_configmap("dry2")).status_code == 201
    assert api.get(f"{CM}/dry2").status_code == 404
    patched = api.patch(f"{CM}/dry", params={"dryRun": "All"}, json={"data": {"a": "2"}}, headers=MERGE).json()
    assert patched["data"]["a"] == "2"
    current = api.get(f"{CM}/dry").json()
    put = api.put(f"{CM}/dry", params={"dryRun": "All"}, json={**current, "data": {"a": "3"}})
    assert put.status_code == 200
    applied = api.patch(f"{CM}/dry", params={"dryRun": "All", "fieldManager": "m", "force": "true"},
                        content=json.dumps(_configmap("dry", a="4")), headers=APPLY)  # fmt: skip
    assert applied.json()["data"]["a"] == "4"
    assert api.delete(f"{CM}/dry", params={"dryRun": "All"}).status_code == 200
    after = api.get(f"{CM}/dry").json()
    assert after["data"] == {"a": "1"} and after["metadata"]["resourceVersion"] == rv
    _status(api.post(CM, params={"dryRun": "Some"}, json=_configmap("x")), 400, "BadRequest")


def test_field_validation(api: httpx.Client) -> None:
    body = _configmap("fv", a="1")
    body["bogus"] = 1
    strict = _status(api.post(CM, params={"fieldValidation": "Strict"}, json=body), 400, "BadRequest")
    assert 'unknown field "bogus"' in strict["message"]
    warned = api.post(CM, params={"fieldValidation": "Warn"}, json=body)
    assert warned.status_code == 201 and "bogus" in warned.headers.get("warning", "")
    assert "bogus" not in warned.json()  # unknown fields are dropped, as a real server does
    body["metadata"]["name"] = "fv2"
    assert api.post(CM, params={"fieldValidation": "Ignore"}, json=body).status_code == 201


def test_server_side_apply_over_http(api: httpx.Client) -> None:
    doc = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\n  namespace: default\ndata:\n  a: '1'\n"
    created = api.patch(f"{CM}/ssa", params={"fieldManager": "yaml-applier"}, content=doc, headers=APPLY)
    assert created.status_code == 201
    again = api.patch(f"{CM}/ssa", params={"fieldManager": "yaml-applier"}, content=doc, headers=APPLY)
    assert again.status_code == 200
    assert again.json()["metadata"]["resourceVersion"] == created.json()["metadata"]["resourceVersion"]
    assert again.json()["metadata"]["managedFields"] == created.json()["metadata"]["managedFields"]
    conflict = api.patch(f"{CM}/ssa", params={"fieldManager": "other"}, content=doc.replace("'1'", "'2'"), headers=APPLY)
    body = _status(conflict, 409, "Conflict")
    assert body["details"]["causes"] == [{"type": "FieldManagerConflict", "message": 'conflict with "yaml-applier" using v1',
                                          "field": ".data.a"}]  # fmt: skip
    forced = api.patch(f"{CM}/ssa", params={"fieldManager": "other", "force": "true"},
                       content=doc.replace("'1'", "'2'"), headers=APPLY)  # fmt: skip
    assert forced.status_code == 200 and forced.json()["data"]["a"] == "2"


def test_pagination_and_selectors(api: httpx.Client) -> None:
    for index in range(5):
        body = _configmap(f"p{index}")
        body["metadata"]["labels"] = {"group": "even" if index % 2 == 0 else "odd"}
        api.post(CM, json=body)
    first = api.get(CM, params={"limit": 2, "labelSelector": "group in (even,odd)"}).json()
    assert [i["metadata"]["name"] for i in first["items"]] == ["p0", "p1"]
    assert first["metadata"]["remainingItemCount"] == 3
    second = api.get(CM, params={"limit": 2, "labelSelector": "group", "continue": first["metadata"]["continue"]}).json()
    assert [i["metadata"]["name"] for i in second["items"]] == ["p2", "p3"]
    odd = api.get(CM, params={"labelSelector": "group=odd"}).json()
    assert [i["metadata"]["name"] for i in odd["items"]] == ["p1", "p3"]
    every = api.get("/api/v1/configmaps", params={"fieldSelector": "metadata.namespace=default,metadata.name!=p0"}).json()
    names = {i["metadata"]["name"] for i in every["items"]}
    assert "p0" not in names and {"p1", "p2"} <= names
    _status(api.get(CM, params={"fieldSelector": "spec.bogus=1"}), 400, "BadRequest")
    _status(api.get(CM, params={"continue": "garbage"}), 400, "BadRequest")
    deleted = api.request("DELETE", CM, params={"labelSelector": "group=even"})
    assert deleted.status_code == 200 and len(deleted.json()["items"]) == 3
    left = {i["metadata"]["name"] for i in api.get(CM, params={"labelSelector": "group"}).json()["items"]}
    assert left == {"p1", "p3"}


def _watch_lines(api: httpx.Client, path: str, params: dict[str, Any], stop_after: int = 100) -> list[dict[str, Any]]:
    events = []
    with api.stream("GET", path, params={"watch": "true", **params}) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line:
                events.append(json.loads(line))
                if len(events) >= stop_after:
                    break
    return events


def test_watch_from_resource_version_with_bookmarks(api: httpx.Client) -> None:
    start = api.get(CM).json()["metadata"]["resourceVersion"]
    api.post(CM, json=_configmap("w1", a="1"))
    api.patch(f"{CM}/w1", json={"data": {"a": "2"}}, headers=MERGE)
    api.delete(f"{CM}/w1")
    events = _watch_lines(api, CM, {"resourceVersion": start, "timeoutSeconds": 1, "allowWatchBookmarks": "true"})
    assert [e["type"] for e in events] == ["ADDED", "MODIFIED", "DELETED", "BOOKMARK"]
    assert events[1]["object"]["data"] == {"a": "2"}
    assert int(events[3]["object"]["metadata"]["resourceVersion"]) >= int(events[2]["object"]["metadata"]["resourceVersion"])


def test_watch_label_transitions_and_initial_state(api: httpx.Client) -> None:
    body = _configmap("t1")
    body["metadata"]["labels"] = {"watched": "yes"}
    api.post(CM, json=body)
    start = api.get(CM).json()["metadata"]["resourceVersion"]
    api.patch(f"{CM}/t1", json={"metadata": {"labels": {"watched": "no"}}}, headers=MERGE)
    api.patch(f"{CM}/t1", json={"metadata": {"labels": {"watched": "yes"}}}, headers=MERGE)
    events = _watch_lines(api, CM, {"resourceVersion": start, "labelSelector": "watched=yes", "timeoutSeconds": 1})
    assert [e["type"] for e in events] == ["DELETED", "ADDED"]
    initial = _watch_lines(api, CM, {"labelSelector": "watched=yes", "timeoutSeconds": 1})
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in initial] == [("ADDED", "t1")]


def test_watch_sees_live_events(api: httpx.Client, sim_cluster: SimCluster) -> None:
    start = api.get(CM).json()["metadata"]["resourceVersion"]

    def later() -> None:
        time.sleep(0.3)
        with _client(sim_cluster) as other:
            other.post(CM, json=_configmap("live"))

    thread = threading.Thread(target=later)
    thread.start()
    events = _watch_lines(api, CM, {"resourceVersion": start, "timeoutSeconds": 5}, stop_after=1)
    thread.join()
    assert events[0]["type"] == "ADDED" and events[0]["object"]["metadata"]["name"] == "live"


def test_watch_expired_resource_version_gets_410() -> None:
    simulator = Simulator(tls=False, controller_delay=0.01, watch_history=5).start()
    try:
        cluster = simulator.add_cluster("short-history")
        with _client(cluster) as api:
            start = api.get(CM).json()["metadata"]["resourceVersion"]
            for index in range(10):
                api.post(CM, json=_configmap(f"c{index}"))
            events = _watch_lines(api, CM, {"resourceVersion": start, "timeoutSeconds": 1})
            assert len(events) == 1 and events[0]["type"] == "ERROR"
            status = events[0]["object"]
            assert status["code"] == 410 and status["reason"] == "Expired" and status["kind"] == "Status"
    finally:
        simulator.stop()


def test_finalizers_and_namespace_termination(api: httpx.Client) -> None:
    api.post("/api/v1/namespaces", json={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "doomed"}})
    held = _configmap("held", "doomed")
    held["metadata"]["finalizers"] = ["example.com/keep"]
    api.post("/api/v1/namespaces/doomed/configmaps", json=held)
    api.post("/api/v1/namespaces/doomed/configmaps", json=_configmap("plain", "doomed"))
    terminating = api.delete("/api/v1/namespaces/doomed").json()
    assert terminating["status"]["phase"] == "Terminating"
    forbidden = api.post("/api/v1/namespaces/doomed/configmaps", json=_configmap("new", "doomed"))
    _status(forbidden, 403, "Forbidden")
    deadline = time.monotonic() + 10
    while api.get("/api/v1/namespaces/doomed/configmaps/plain").status_code != 404 and time.monotonic() < deadline:
        time.sleep(0.02)
    pending = api.get("/api/v1/namespaces/doomed/configmaps/held").json()
    assert pending["metadata"]["deletionTimestamp"]
    assert api.get("/api/v1/namespaces/doomed").status_code == 200
    api.patch("/api/v1/namespaces/doomed/configmaps/held", json={"metadata": {"finalizers": None}}, headers=MERGE)
    while api.get("/api/v1/namespaces/doomed").status_code != 404 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert api.get("/api/v1/namespaces/doomed").status_code == 404
    _status(api.delete("/api/v1/namespaces/default"), 403, "Forbidden")


def test_discovery_documents(api: httpx.Client) -> None:
    legacy = api.get("/apis").json()
    groups = {g["name"] for g in legacy["groups"]}
    assert {"apps", "batch", "networking.k8s.io", "rbac.authorization.k8s.io", "coordination.k8s.io",
            "apiextensions.k8s.io"} <= groups  # fmt: skip
    core = api.get("/api/v1").json()
    kinds = {r["kind"] for r in core["resources"] if "/" not in r["name"]}
    assert {"Namespace", "Node", "ConfigMap", "Secret", "Service", "ServiceAccount", "Pod", "PersistentVolumeClaim",
            "Endpoints", "Event"} <= kinds  # fmt: skip
    apps = {r["name"] for r in api.get("/apis/apps/v1").json()["resources"]}
    assert {"deployments", "deployments/scale", "deployments/status", "statefulsets", "daemonsets", "replicasets"} <= apps
    aggregated = api.get("/apis", headers={"Accept": "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"})
    assert aggregated.headers["content-type"] == "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    apps_group = next(i for i in aggregated.json()["items"] if i["metadata"]["name"] == "apps")
    deployments = next(r for r in apps_group["versions"][0]["resources"] if r["resource"] == "deployments")
    assert deployments["scope"] == "Namespaced" and deployments["shortNames"] == ["deploy"]
    assert {s["subresource"] for s in deployments["subresources"]} == {"scale", "status"}
    openapi = api.get("/openapi/v3").json()
    assert "apis/apps/v1" in openapi["paths"]
    document = api.get(openapi["paths"]["apis/apps/v1"]["serverRelativeURL"]).json()
    assert any(p.get("patch", {}).get("x-kubernetes-group-version-kind", {}).get("kind") == "Deployment"
               for p in document["paths"].values())  # fmt: skip


def test_tables(api: httpx.Client) -> None:
    accept = {"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"}
    nodes = api.get("/api/v1/nodes", headers=accept).json()
    assert nodes["kind"] == "Table"
    assert [c["name"] for c in nodes["columnDefinitions"] if c["priority"] == 0] == ["Name", "Status", "Roles", "Age", "Version"]
    assert all(row["cells"][1] == "Ready" for row in nodes["rows"])
    assert nodes["rows"][0]["object"]["kind"] == "PartialObjectMetadata"
    single = api.get("/api/v1/namespaces/default", headers=accept).json()
    assert single["rows"][0]["cells"][:2] == ["default", "Active"]


def test_counters_count_each_verb(api: httpx.Client, sim_cluster: SimCluster) -> None:
    sim_cluster.reset_counters()
    api.post(CM, json=_configmap("count"))
    api.get(f"{CM}/count")
    api.get(CM)
    _watch_lines(api, CM, {"resourceVersion": "0", "timeoutSeconds": 0.2})
    current = api.get(f"{CM}/count").json()
    api.put(f"{CM}/count", json=current)
    api.patch(f"{CM}/count", json={"data": {"x": "1"}}, headers=MERGE)
    api.delete(f"{CM}/count")
    api.get("/apis")
    counts = sim_cluster.counters()
    assert {k: counts[k] for k in ("get", "list", "watch", "create", "update", "patch", "delete")} == {
        "get": 2, "list": 1, "watch": 1, "create": 1, "update": 1, "patch": 1, "delete": 1}
    assert counts["total"] == 8 and counts["discovery"] == 1
    sim_cluster.reset_counters()
    assert sim_cluster.counters()["total"] == 0


def test_get_object_reads_without_counting(sim_cluster: SimCluster) -> None:
    sim_cluster.reset_counters()
    namespace = sim_cluster.get_object("v1", "Namespace", None, "kube-system")
    assert namespace is not None and namespace["status"]["phase"] == "Active"
    assert sim_cluster.get_object("v1", "ConfigMap", "default", "kube-root-ca.crt") is not None
    assert sim_cluster.get_object("v1", "ConfigMap", "default", "absent") is None
    assert sim_cluster.get_object("example.com/v1", "Nope", "default", "x") is None
    assert sim_cluster.counters()["total"] == 0


def test_custom_resource_versions_scale_and_schema(api: httpx.Client) -> None:
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": "pools.scale.example.com"},
           "spec": {"group": "scale.example.com", "scope": "Namespaced",
                    "names": {"kind": "Pool", "plural": "pools"},
                    "versions": [
                        {"name": "v1beta1", "served": True, "storage": False,
                         "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}},
                        {"name": "v1", "served": True, "storage": True,
                         "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.size",
                                                                  "statusReplicasPath": ".status.size"}},
                         "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                             "spec": {"type": "object", "required": ["size"], "properties": {
                                 "size": {"type": "integer"},
                                 "members": {"type": "array", "x-kubernetes-list-type": "map",
                                             "x-kubernetes-list-map-keys": ["name"],
                                             "items": {"type": "object", "properties": {
                                                 "name": {"type": "string"}, "weight": {"type": "integer"}}}}}},
                             "status": {"type": "object", "properties": {"size": {"type": "integer"}}}}}}},
                    ]}}  # fmt: skip
    assert api.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json=crd).status_code == 201
    deadline = time.monotonic() + 10
    while api.get("/apis/scale.example.com/v1").status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.02)
    established = api.get("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/pools.scale.example.com").json()
    assert {c["type"]: c["status"] for c in established["status"]["conditions"]} == {"NamesAccepted": "True", "Established": "True"}
    assert api.get("/apis/scale.example.com").json()["preferredVersion"]["version"] == "v1"
    base = "/apis/scale.example.com/v1/namespaces/default/pools"
    pool = {"apiVersion": "scale.example.com/v1", "kind": "Pool", "metadata": {"name": "p"},
            "spec": {"size": 1, "members": [{"name": "a", "weight": 1}]}}  # fmt: skip
    assert api.post(base, json=pool).status_code == 201
    invalid = api.post(base, json={**pool, "metadata": {"name": "bad"}, "spec": {"size": "big"}})
    assert invalid.status_code == 422 and invalid.json()["details"]["causes"][0]["field"] == "spec.size"
    # the same object through the other served version
    assert api.get("/apis/scale.example.com/v1beta1/namespaces/default/pools/p").json()["apiVersion"] == "scale.example.com/v1beta1"
    # list-map members merge by key under server-side apply
    other = {"apiVersion": "scale.example.com/v1", "kind": "Pool", "metadata": {"name": "p"},
             "spec": {"members": [{"name": "b", "weight": 2}]}}  # fmt: skip
    merged = api.patch(f"{base}/p", params={"fieldManager": "second"}, content=json.dumps(other), headers=APPLY).json()
    assert [m["name"] for m in merged["spec"]["members"]] == ["a", "b"]
    scale = api.get(f"{base}/p/scale").json()
    assert scale["kind"] == "Scale" and scale["spec"]["replicas"] == 1
    api.patch(f"{base}/p/scale", json={"spec": {"replicas": 4}}, headers=MERGE)
    assert api.get(f"{base}/p").json()["spec"]["size"] == 4
    # deleting the CRD removes its objects and its API
    assert api.delete("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/pools.scale.example.com").status_code == 200
    assert api.get("/apis/scale.example.com/v1").status_code == 404
