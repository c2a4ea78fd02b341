from __future__ import annotations

import base64
import copy
from typing import Any

from fleet.agent.drift import diff_fields

DESIRED: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "app", "labels": {"app.kubernetes.io/managed-by": "fleet"}},
    "spec": {
        "replicas": 2,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {
                "containers": [
                    {
                        "name": "web",
                        "image": "nginx:1.27",
                        "args": ["--a", "--b"],
                        "ports": [{"containerPort": 80}],
                        "resources": {"limits": {"cpu": "500m", "memory": "1Gi"}},
                        "env": [{"name": "A", "value": "1"}],
                    },
                    {"name": "sidecar", "image": "busybox"},
                ]
            },
        },
    },
}


def _live() -> dict[str, Any]:
    live = copy.deepcopy(DESIRED)
    live["metadata"].update(
        resourceVersion="42", uid="u-1", generation=3, creationTimestamp="2024-01-01T00:00:00Z",
        managedFields=[{"manager": "fleet-agent"}], annotations={"deployment.kubernetes.io/revision": "1"},
    )
    live["metadata"]["labels"]["extra"] = "added-by-someone"
    live["spec"]["strategy"] = {"type": "RollingUpdate"}  # defaulted by the server
    live["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = "IfNotPresent"
    live["spec"]["template"]["spec"]["containers"][0]["ports"][0]["protocol"] = "TCP"
    live["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"] = {"cpu": "0.5", "memory": "1073741824"}
    live["status"] = {"replicas": 2, "readyReplicas": 2}
    return live


def test_server_populated_and_defaulted_fields_are_not_drift() -> None:
    assert diff_fields(DESIRED, _live()) == []


def test_changed_replicas_is_drift() -> None:
    live = _live()
    live["spec"]["replicas"] = 7
    assert diff_fields(DESIRED, live) == ["spec.replicas"]


def test_containers_are_matched_by_name_not_position() -> None:
    live = _live()
    containers = live["spec"]["template"]["spec"]["containers"]
    containers.reverse()
    assert diff_fields(DESIRED, live) == []
    containers[1]["image"] = "nginx:latest"
    assert diff_fields(DESIRED, live) == ["spec.template.spec.containers[name=web].image"]


def test_missing_list_item_label_and_scalar_list_change_are_drift() -> None:
    live = _live()
    live["spec"]["template"]["spec"]["containers"].pop()
    live["metadata"]["labels"].pop("app.kubernetes.io/managed-by")
    live["spec"]["template"]["spec"]["containers"][0]["args"] = ["--b", "--a"]
    live["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"] = "2"
    assert sorted(diff_fields(DESIRED, live)) == sorted(
        [
            'metadata.labels["app.kubernetes.io/managed-by"]',
            "spec.template.spec.containers[name=sidecar]",
            "spec.template.spec.containers[name=web].args",
            "spec.template.spec.containers[name=web].env[name=A].value",
        ]
    )


def test_quantity_change_is_drift() -> None:
    live = _live()
    live["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"] = "1"
    assert diff_fields(DESIRED, live) == ["spec.template.spec.containers[name=web].resources.limits.cpu"]


def test_secret_string_data_matches_stored_data_and_paths_hide_values() -> None:
    desired = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"}, "stringData": {"password": "s3cr3t"}}
    live = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "uid": "x"},
            "data": {"password": base64.b64encode(b"s3cr3t").decode()}, "type": "Opaque"}
    assert diff_fields(desired, live) == []
    live["data"]["password"] = base64.b64encode(b"changed").decode()
    fields = diff_fields(desired, live)
    assert fields == ["data.password"]
    assert "s3cr3t" not in repr(fields) and "changed" not in repr(fields)


def test_empty_desired_containers_match_absent_live() -> None:
    desired = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "annotations": {}}, "data": {}}
    live = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}
    assert diff_fields(desired, live) == []
