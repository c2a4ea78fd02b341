"""Scenarios driven through the real kubectl binary (against kubesim, or a real cluster; see conftest)."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from tests.kubesim.conftest import FidelityTarget, widget_crd, yaml_docs


def _deployment(namespace: str, name: str = "web", replicas: int = 1, image: str = "nginx:1.27") -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{
                    "name": name, "image": image, "ports": [{"containerPort": 8080}],
                    "env": [{"name": "MODE", "value": "demo"}],
                }]},
            },
        },
    }  # fmt: skip


def _app_documents(namespace: str, group: str) -> list[dict[str, Any]]:
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web-config", "namespace": namespace},
         "data": {"greeting": "hello"}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "web-secret", "namespace": namespace},
         "type": "Opaque", "data": {"password": "czNjcjN0"}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": namespace},
         "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}},
        _deployment(namespace),
        {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "web", "namespace": namespace},
         "spec": {"rules": [{"host": "web.example.com", "http": {"paths": [{
             "path": "/", "pathType": "Prefix",
             "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}},
        widget_crd(group),
    ]  # fmt: skip


def _widget(namespace: str, group: str, name: str = "w1", size: int = 3) -> dict[str, Any]:
    return {"apiVersion": f"{group}/v1", "kind": "Widget", "metadata": {"name": name, "namespace": namespace},
            "spec": {"size": size, "color": "blue"}}  # fmt: skip


def _resource_versions(fidelity: FidelityTarget, namespace: str, group: str) -> dict[str, str]:
    result = {}
    for kind in ("configmap/web-config", "secret/web-secret", "service/web", "deployment/web", "ingress/web",
                 f"widgets.{group}/w1"):  # fmt: skip
        obj = fidelity.kubectl_json("get", "-n", namespace, kind)
        result[kind] = obj["metadata"]["resourceVersion"]
    result["namespace"] = fidelity.kubectl_json("get", "namespace", namespace)["metadata"]["resourceVersion"]
    result["crd"] = fidelity.kubectl_json("get", "crd", f"widgets.{group}")["metadata"]["resourceVersion"]
    return result


@pytest.fixture
def applied_app(
    fidelity: FidelityTarget, crd_group: str, cleanup_crds: Callable[[str], None], tmp_path: Any
) -> tuple[str, str, Any]:
    """A namespace with the demo app and one Widget applied server-side; returns (namespace, group, app file)."""
    namespace = f"fid-{uuid.uuid4().hex[:8]}"
    cleanup_crds(f"widgets.{crd_group}")
    app_file = tmp_path / "app.yaml"
    app_file.write_text(yaml_docs(*_app_documents(namespace, crd_group)))
    out = fidelity.kubectl("apply", "--server-side", "-f", str(app_file)).stdout
    assert f"namespace/{namespace} serverside-applied" in out
    assert "deployment.apps/web serverside-applied" in out
    assert f"customresourcedefinition.apiextensions.k8s.io/widgets.{crd_group} serverside-applied" in out
    fidelity.kubectl("wait", "--for", "condition=established", f"crd/widgets.{crd_group}", "--timeout=30s")
    cr_file = tmp_path / "widget.yaml"
    cr_file.write_text(yaml_docs(_widget(namespace, crd_group)))
    assert f"widget.{crd_group}/w1 serverside-applied" in fidelity.kubectl("apply", "--server-side", "-f", str(cr_file)).stdout
    yield namespace, crd_group, app_file
    fidelity.kubectl("delete", "namespace", namespace, "--wait=false", "--ignore-not-found", check=False)


def test_apply_server_side_multi_document_then_reapply_changes_nothing(
    fidelity: FidelityTarget, applied_app: tuple[str, str, Any], tmp_path: Any
) -> None:
    namespace, group, app_file = applied_app
    before = _resource_versions(fidelity, namespace, group)
    out = fidelity.kubectl("apply", "--server-side", "-f", str(app_file)).stdout
    assert out.count("serverside-applied") == 7
    after = _resource_versions(fidelity, namespace, group)
    assert after == before

    deployment = fidelity.kubectl_json("get", "deployment", "web", "-n", namespace)
    assert deployment["kind"] == "Deployment"
    assert deployment["metadata"]["generation"] == 1
    managers = {(m["manager"], m["operation"]) for m in deployment["metadata"]["managedFields"]}
    assert ("kubectl", "Apply") in managers
    apply_entry = next(m for m in deployment["metadata"]["managedFields"] if m["operation"] == "Apply")
    containers = apply_entry["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]
    assert containers['k:{"name":"web"}']["f:image"] == {}
    assert '.' in containers['k:{"name":"web"}']
    ports = containers['k:{"name":"web"}']["f:ports"]
    assert 'k:{"containerPort":8080,"protocol":"TCP"}' in ports
    # defaults a real API server fills in
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["imagePullPolicy"] == "IfNotPresent"
    assert container["ports"][0]["protocol"] == "TCP"
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"

    secret = fidelity.kubectl_json("get", "secret", "web-secret", "-n", namespace)
    assert secret["data"] == {"password": "czNjcjN0"}
    service = fidelity.kubectl_json("get", "service", "web", "-n", namespace)
    assert service["spec"]["clusterIP"]
    assert service["spec"]["ports"][0]["targetPort"] == 8080
    widget = fidelity.kubectl_json("get", f"widgets.{group}", "w1", "-n", namespace)
    assert widget["spec"] == {"size": 3, "color": "blue"}


def test_kubectl_get_tables_and_wait_available(fidelity: FidelityTarget, applied_app: tuple[str, str, Any]) -> None:
    namespace, group, _ = applied_app
    fidelity.kubectl("wait", "--for=condition=Available", "deploy/web", "-n", namespace, "--timeout=60s")
    lines = fidelity.kubectl("get", "deploy", "-n", namespace).stdout.splitlines()
    assert lines[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert lines[1].split()[:4] == ["web", "1/1", "1", "1"]
    svc = fidelity.kubectl("get", "svc", "web", "-n", namespace).stdout.splitlines()
    assert svc[0].split()[:5] == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)"]
    assert "80/TCP" in svc[1]
    cm = fidelity.kubectl("get", "configmap", "web-config", "-n", namespace).stdout.splitlines()
    assert cm[0].split() == ["NAME", "DATA", "AGE"] and cm[1].split()[:2] == ["web-config", "1"]
    secret = fidelity.kubectl("get", "secret", "web-secret", "-n", namespace).stdout.splitlines()
    assert secret[0].split() == ["NAME", "TYPE", "DATA", "AGE"] and secret[1].split()[:3] == ["web-secret", "Opaque", "1"]
    ns = fidelity.kubectl("get", "namespace", namespace).stdout.splitlines()
    assert ns[1].split()[:2] == [namespace, "Active"]
    nodes = fidelity.kubectl("get", "nodes").stdout.splitlines()
    assert nodes[0].split()[:3] == ["NAME", "STATUS", "ROLES"]
    assert all(" Ready " in line for line in nodes[1:])
    widgets = fidelity.kubectl("get", f"widgets.{group}", "-n", namespace).stdout.splitlines()
    assert widgets[0].split() == ["NAME", "SIZE", "AGE"]
    assert widgets[1].split()[:2] == ["w1", "3"]
    wide = fidelity.kubectl("get", "deploy", "web", "-n", namespace, "-o", "wide").stdout.splitlines()
    assert wide[0].split()[5:] == ["CONTAINERS", "IMAGES", "SELECTOR"]
    assert "nginx:1.27" in wide[1] and "app=web" in wide[1]


def test_label_annotate_scale_and_patch(fidelity: FidelityTarget, applied_app: tuple[str, str, Any]) -> None:
    namespace, group, _ = applied_app
    fidelity.kubectl("label", "deploy/web", "-n", namespace, "tier=frontend")
    fidelity.kubectl("annotate", "deploy/web", "-n", namespace, "owner=team-a")
    deployment = fidelity.kubectl_json("get", "deploy", "web", "-n", namespace)
    assert deployment["metadata"]["labels"]["tier"] == "frontend"
    assert deployment["metadata"]["annotations"]["owner"] == "team-a"
    assert deployment["metadata"]["generation"] == 1  # metadata changes do not bump generation

    fidelity.kubectl("scale", "deploy/web", "-n", namespace, "--replicas=3")
    fidelity.kubectl("wait", "--for=jsonpath={.status.readyReplicas}=3", "deploy/web", "-n", namespace, "--timeout=60s")
    deployment = fidelity.kubectl_json("get", "deploy", "web", "-n", namespace)
    assert deployment["spec"]["replicas"] == 3
    assert deployment["metadata"]["generation"] == 2
    scale_entry = [m for m in deployment["metadata"]["managedFields"] if m.get("subresource") == "scale"]
    assert scale_entry and scale_entry[0]["fieldsV1"] == {"f:spec": {"f:replicas": {}}}

    fidelity.kubectl("patch", "deploy/web", "-n", namespace, "--type=strategic", "-p",
                     json.dumps({"spec": {"template": {"spec": {"containers": [
                         {"name": "web", "env": [{"name": "EXTRA", "value": "1"}]}]}}}}))  # fmt: skip
    env = fidelity.kubectl_json("get", "deploy", "web", "-n", namespace)["spec"]["template"]["spec"]["containers"][0]["env"]
    assert env == [{"name": "MODE", "value": "demo"}, {"name": "EXTRA", "value": "1"}]

    fidelity.kubectl("patch", "configmap/web-config", "-n", namespace, "--type=merge", "-p",
                     json.dumps({"data": {"greeting": None, "farewell": "bye"}}))  # fmt: skip
    assert fidelity.kubectl_json("get", "configmap", "web-config", "-n", namespace)["data"] == {"farewell": "bye"}

    fidelity.kubectl("patch", "deploy/web", "-n", namespace, "--type=json", "-p",
                     json.dumps([{"op": "replace", "path": "/spec/replicas", "value": 2}]))  # fmt: skip
    assert fidelity.kubectl_json("get", "deploy", "web", "-n", namespace)["spec"]["replicas"] == 2

    # custom resources take merge and JSON patches, not strategic ones
    result = fidelity.kubectl("patch", f"widgets.{group}/w1", "-n", namespace, "-p", '{"spec":{"size":5}}', check=False)
    assert result.returncode != 0 and "unknown format" in result.stderr
    fidelity.kubectl("patch", f"widgets.{group}/w1", "-n", namespace, "--type=merge", "-p", '{"spec":{"size":5}}')
    fidelity.kubectl("patch", f"widgets.{group}/w1", "-n", namespace, "--subresource=status", "--type=merge",
                     "-p", '{"status":{"phase":"Ready"}}')  # fmt: skip
    widget = fidelity.kubectl_json("get", f"widgets.{group}", "w1", "-n", namespace)
    assert widget["spec"]["size"] == 5 and widget["status"] == {"phase": "Ready"}
    assert widget["metadata"]["generation"] == 2  # the status change did not bump it


def test_diff_server_side(fidelity: FidelityTarget, applied_app: tuple[str, str, Any], tmp_path: Any) -> None:
    namespace, _, app_file = applied_app
    clean = fidelity.kubectl("diff", "--server-side", "-f", str(app_file), check=False)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    changed = tmp_path / "changed.yaml"
    changed.write_text(app_file.read_text().replace("greeting: hello", "greeting: goodbye"))
    diff = fidelity.kubectl("diff", "--server-side", "-f", str(changed), check=False)
    assert diff.returncode == 1, diff.stderr
    assert "-  greeting: hello" in diff.stdout and "+  greeting: goodbye" in diff.stdout
    # the dry run persisted nothing
    assert fidelity.kubectl_json("get", "configmap", "web-config", "-n", namespace)["data"]["greeting"] == "hello"


def test_server_side_apply_conflict_and_force(fidelity: FidelityTarget, namespace: str, tmp_path: Any) -> None:
    manifest = tmp_path / "deploy.yaml"
    manifest.write_text(yaml_docs(_deployment(namespace, replicas=1)))
    fidelity.kubectl("apply", "--server-side", "--field-manager=team-a", "-f", str(manifest))
    other = tmp_path / "other.yaml"
    other.write_text(yaml_docs(_deployment(namespace, replicas=4)))
    conflict = fidelity.kubectl("apply", "--server-side", "--field-manager=team-b", "-f", str(other), check=False)
    assert conflict.returncode != 0
    assert 'conflict with "team-a"' in conflict.stderr and ".spec.replicas" in conflict.stderr
    fidelity.kubectl("apply", "--server-side", "--field-manager=team-b", "--force-conflicts", "-f", str(other))
    deployment = fidelity.kubectl_json("get", "deploy", "web", "-n", namespace)
    assert deployment["spec"]["replicas"] == 4
    owners = {m["manager"]: m["fieldsV1"] for m in deployment["metadata"]["managedFields"]}
    assert "f:replicas" in owners["team-b"]["f:spec"]
    assert "f:replicas" not in owners["team-a"]["f:spec"]
    # both still co-own the image, which they set to the same value
    for manager in ("team-a", "team-b"):
        assert "f:image" in owners[manager]["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"web"}']


def test_drift_from_kubectl_edit_style_update_takes_ownership(
    fidelity: FidelityTarget, namespace: str, tmp_path: Any
) -> None:
    manifest = tmp_path / "deploy.yaml"
    manifest.write_text(yaml_docs(_deployment(namespace)))
    fidelity.kubectl("apply", "--server-side", "--field-manager=fleet-agent", "-f", str(manifest))
    fidelity.kubectl("set", "image", "deploy/web", "-n", namespace, "web=nginx:drifted")
    deployment = fidelity.kubectl_json("get", "deploy", "web", "-n", namespace)
    image_owners = [
        m["manager"] for m in deployment["metadata"]["managedFields"]
        if "f:image" in json.dumps(m["fieldsV1"])
    ]  # fmt: skip
    assert image_owners and "fleet-agent" not in image_owners
    conflict = fidelity.kubectl("apply", "--server-side", "--field-manager=fleet-agent", "-f", str(manifest), check=False)
    assert conflict.returncode != 0 and ".image" in conflict.stderr
    fidelity.kubectl("apply", "--server-side", "--field-manager=fleet-agent", "--force-conflicts", "-f", str(manifest))
    image = fidelity.kubectl_json("get", "deploy", "web", "-n", namespace)["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == "nginx:1.27"


def test_delete_waits_until_gone(fidelity: FidelityTarget, namespace: str, tmp_path: Any) -> None:
    manifest = tmp_path / "deploy.yaml"
    manifest.write_text(yaml_docs(_deployment(namespace)))
    fidelity.kubectl("apply", "--server-side", "-f", str(manifest))
    fidelity.kubectl("wait", "--for=condition=Available", "deploy/web", "-n", namespace, "--timeout=60s")
    out = fidelity.kubectl("delete", "-f", str(manifest), "--timeout=30s").stdout
    assert 'deployment.apps "web" deleted' in out
    missing = fidelity.kubectl("get", "deploy", "web", "-n", namespace, check=False)
    assert missing.returncode != 0 and "NotFound" in missing.stderr
    # the ReplicaSet it owned is garbage-collected
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if not fidelity.kubectl("get", "rs", "-n", namespace, "-o", "name").stdout.strip():
            break
        time.sleep(0.2)
    assert not fidelity.kubectl("get", "rs", "-n", namespace, "-o", "name").stdout.strip()


def test_get_watch_streams_changes(fidelity: FidelityTarget, namespace: str) -> None:
    fidelity.kubectl("create", "-f", "-", input=yaml_docs(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "watched", "namespace": namespace}, "data": {"a": "1"}}
    ))  # fmt: skip
    command = ["/usr/bin/kubectl", "--kubeconfig", str(fidelity.kubeconfig), "--context", fidelity.context,
               "get", "configmap", "watched", "-n", namespace, "-w", "-o", "jsonpath={.data.a}{\"\\n\"}"]  # fmt: skip
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as watcher:
        try:
            assert watcher.stdout is not None
            assert watcher.stdout.readline().strip() == "1"
            fidelity.kubectl("patch", "configmap", "watched", "-n", namespace, "--type=merge", "-p", '{"data":{"a":"2"}}')
            assert watcher.stdout.readline().strip() == "2"
        finally:
            watcher.kill()


def test_invalid_objects_are_rejected(fidelity: FidelityTarget, namespace: str) -> None:
    bad_name = fidelity.kubectl("create", "-f", "-", check=False, input=yaml_docs(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "Bad_Name", "namespace": namespace}}
    ))  # fmt: skip
    assert bad_name.returncode != 0 and "is invalid" in bad_name.stderr and "RFC 1123" in bad_name.stderr
    mismatched = _deployment(namespace)
    mismatched["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
    result = fidelity.kubectl("create", "-f", "-", check=False, input=yaml_docs(mismatched))
    assert result.returncode != 0 and "`selector` does not match template `labels`" in result.stderr
    unknown = _deployment(namespace, name="strict")
    unknown["spec"]["bogus"] = True
    strict = fidelity.kubectl("apply", "--server-side", "-f", "-", check=False, input=yaml_docs(unknown))
    assert strict.returncode != 0 and "bogus" in strict.stderr
    exists = fidelity.kubectl("create", "-f", "-", check=False, input=yaml_docs(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
    ))  # fmt: skip
    assert exists.returncode != 0 and "AlreadyExists" in exists.stderr


def test_kubectl_create_generators_send_protobuf(fidelity: FidelityTarget, namespace: str) -> None:
    """`kubectl create <kind>` posts protobuf bodies; they must land as the same objects JSON would give."""
    ns = ("-n", namespace)
    fidelity.kubectl("create", "configmap", "gen-cm", "--from-literal=key=value", *ns)
    fidelity.kubectl("create", "secret", "generic", "gen-secret", "--from-literal=password=s3cr3t", *ns)
    fidelity.kubectl("create", "deployment", "gen-deploy", "--image=nginx:1.27", "--replicas=2", "--port=80", *ns)
    fidelity.kubectl("create", "service", "clusterip", "gen-svc", "--tcp=80:8080", *ns)
    fidelity.kubectl("create", "serviceaccount", "gen-sa", *ns)
    fidelity.kubectl("create", "job", "gen-job", "--image=busybox:1.36", *ns, "--", "echo", "hi")
    fidelity.kubectl("create", "role", "gen-role", "--verb=get,list", "--resource=pods", *ns)
    fidelity.kubectl("create", "rolebinding", "gen-rb", "--role=gen-role", "--user=bob", *ns)
    assert fidelity.kubectl_json("get", "configmap", "gen-cm", *ns)["data"] == {"key": "value"}
    assert fidelity.kubectl_json("get", "secret", "gen-secret", *ns)["data"] == {"password": "czNjcjN0"}
    deployment = fidelity.kubectl_json("get", "deployment", "gen-deploy", *ns)
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["selector"] == {"matchLabels": {"app": "gen-deploy"}}
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert (container["name"], container["image"], container["ports"]) == (
        "nginx", "nginx:1.27", [{"containerPort": 80, "protocol": "TCP"}])
    service = fidelity.kubectl_json("get", "service", "gen-svc", *ns)
    assert service["spec"]["ports"][0]["port"] == 80 and service["spec"]["ports"][0]["targetPort"] == 8080
    job = fidelity.kubectl_json("get", "job", "gen-job", *ns)
    assert job["spec"]["template"]["spec"]["containers"][0]["command"] == ["echo", "hi"]
    assert fidelity.kubectl_json("get", "role", "gen-role", *ns)["rules"] == [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]
    binding = fidelity.kubectl_json("get", "rolebinding", "gen-rb", *ns)
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "gen-role"}
    assert binding["subjects"] == [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "bob"}]
    fidelity.kubectl("wait", "--for=condition=Available", "deploy/gen-deploy", *ns, "--timeout=60s")


def test_client_side_apply_and_explain(fidelity: FidelityTarget, namespace: str, tmp_path: Any) -> None:
    manifest = tmp_path / "deploy.yaml"
    manifest.write_text(yaml_docs(_deployment(namespace, name="csa")))
    assert "deployment.apps/csa created" in fidelity.kubectl("apply", "-f", str(manifest)).stdout
    assert "deployment.apps/csa unchanged" in fidelity.kubectl("apply", "-f", str(manifest)).stdout
    manifest.write_text(yaml_docs(_deployment(namespace, name="csa", image="nginx:1.28")))
    assert "deployment.apps/csa configured" in fidelity.kubectl("apply", "-f", str(manifest)).stdout
    deployment = fidelity.kubectl_json("get", "deploy", "csa", "-n", namespace)
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.28"
    assert "kubectl.kubernetes.io/last-applied-configuration" in deployment["metadata"]["annotations"]
    fidelity.kubectl("rollout", "status", "deploy/csa", "-n", namespace, "--timeout=60s")
    explained = fidelity.kubectl("explain", "deployment.spec.replicas").stdout
    assert "FIELD: replicas <integer>" in explained
