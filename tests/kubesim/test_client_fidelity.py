"""Scenarios through the official `kubernetes` Python client (against kubesim, or a real cluster)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client, config, dynamic, watch
from kubernetes.client.exceptions import ApiException

from tests.kubesim.conftest import FidelityTarget, widget_crd


@pytest.fixture
def api_client(fidelity: FidelityTarget) -> Iterator[client.ApiClient]:
    api = config.new_client_from_config(config_file=str(fidelity.kubeconfig), context=fidelity.context)
    try:
        yield api
    finally:
        api.close()


def _deployment_body(namespace: str, name: str = "api", replicas: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                         "spec": {"containers": [{"name": "main", "image": "busybox:1.36"}]}},
        },
    }  # fmt: skip


def test_typed_core_api_crud(api_client: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api_client)
    created = core.create_namespaced_config_map(
        namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="settings", labels={"tier": "web"}),
                                      data={"mode": "a"})
    )
    assert created.metadata.uid and created.metadata.resource_version and created.metadata.creation_timestamp
    read = core.read_namespaced_config_map("settings", namespace)
    assert read.data == {"mode": "a"}

    patched = core.patch_namespaced_config_map("settings", namespace, {"data": {"extra": "b"}})
    assert patched.data == {"mode": "a", "extra": "b"}
    assert int(patched.metadata.resource_version) > int(created.metadata.resource_version)

    stale = client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="settings", resource_version=created.metadata.resource_version),
        data={"mode": "stale"},
    )
    with pytest.raises(ApiException) as conflict:
        core.replace_namespaced_config_map("settings", namespace, stale)
    assert conflict.value.status == 409

    with pytest.raises(ApiException) as exists:
        core.create_namespaced_config_map(namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="settings")))
    assert exists.value.status == 409 and "AlreadyExists" in str(exists.value.body)

    with pytest.raises(ApiException) as missing:
        core.read_namespaced_config_map("nope", namespace)
    assert missing.value.status == 404

    core.create_namespaced_config_map(namespace, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="other", labels={"tier": "db"})))  # fmt: skip
    web = core.list_namespaced_config_map(namespace, label_selector="tier=web")
    assert [c.metadata.name for c in web.items] == ["settings"]
    not_web = core.list_namespaced_config_map(namespace, label_selector="tier,tier!=web")
    assert [c.metadata.name for c in not_web.items] == ["other"]
    in_set = core.list_namespaced_config_map(namespace, label_selector="tier in (db,web)")
    assert [c.metadata.name for c in in_set.items] == ["other", "settings"]
    by_name = core.list_namespaced_config_map(namespace, field_selector="metadata.name=other")
    assert [c.metadata.name for c in by_name.items] == ["other"]

    core.delete_namespaced_config_map("settings", namespace)
    with pytest.raises(ApiException) as gone:
        core.read_namespaced_config_map("settings", namespace)
    assert gone.value.status == 404


def test_list_pagination(api_client: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api_client)
    for index in range(5):
        core.create_namespaced_config_map(namespace, client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name=f"page-{index}", labels={"paged": "yes"})))  # fmt: skip
    names: list[str] = []
    token = None
    pages = 0
    while True:
        page = core.list_namespaced_config_map(namespace, label_selector="paged=yes", limit=2, _continue=token)
        names += [c.metadata.name for c in page.items]
        pages += 1
        token = page.metadata._continue
        if not token:
            break
    assert names == [f"page-{i}" for i in range(5)]
    assert pages == 3


def test_typed_apps_api_deployment_becomes_available(api_client: client.ApiClient, namespace: str) -> None:
    apps = client.AppsV1Api(api_client)
    created = apps.create_namespaced_deployment(namespace, _deployment_body(namespace))
    assert created.metadata.generation == 1
    stream = watch.Watch()
    available = False
    for event in stream.stream(apps.list_namespaced_deployment, namespace, field_selector="metadata.name=api",
                               timeout_seconds=60):  # fmt: skip
        deployment = event["object"]
        conditions = {c.type: c for c in (deployment.status.conditions or [])}
        if "Available" in conditions and conditions["Available"].status == "True":
            available = True
            stream.stop()
    assert available
    deployment = apps.read_namespaced_deployment("api", namespace)
    assert deployment.status.ready_replicas == 1 and deployment.status.observed_generation == 1
    assert {c.type: c.reason for c in deployment.status.conditions}["Progressing"] == "NewReplicaSetAvailable"

    scale = apps.read_namespaced_deployment_scale("api", namespace)
    assert scale.spec.replicas == 1
    apps.patch_namespaced_deployment_scale("api", namespace, {"spec": {"replicas": 2}})
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        deployment = apps.read_namespaced_deployment("api", namespace)
        if deployment.status.ready_replicas == 2 and deployment.status.observed_generation == 2:
            break
        time.sleep(0.05)
    assert deployment.spec.replicas == 2 and deployment.status.ready_replicas == 2


def test_watch_stream_sees_added_modified_deleted(api_client: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api_client)
    start = core.list_namespaced_config_map(namespace).metadata.resource_version
    core.create_namespaced_config_map(namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="w"), data={"v": "1"}))
    core.patch_namespaced_config_map("w", namespace, {"data": {"v": "2"}})
    core.delete_namespaced_config_map("w", namespace)
    seen: list[tuple[str, str | None]] = []
    stream = watch.Watch()
    for event in stream.stream(core.list_namespaced_config_map, namespace, resource_version=start,
                               field_selector="metadata.name=w", timeout_seconds=10):  # fmt: skip
        seen.append((event["type"], (event["object"].data or {}).get("v")))
        if event["type"] == "DELETED":
            stream.stop()
    assert [t for t, _ in seen] == ["ADDED", "MODIFIED", "DELETED"]
    assert seen[1][1] == "2"


def test_dry_run_and_finalizers(api_client: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api_client)
    body = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="dry"), data={"a": "b"})
    result = core.create_namespaced_config_map(namespace, body, dry_run="All")
    assert result.metadata.name == "dry"
    with pytest.raises(ApiException) as missing:
        core.read_namespaced_config_map("dry", namespace)
    assert missing.value.status == 404

    held = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="held", finalizers=["example.com/hold"]))
    core.create_namespaced_config_map(namespace, held)
    core.delete_namespaced_config_map("held", namespace, dry_run="All")
    assert core.read_namespaced_config_map("held", namespace).metadata.deletion_timestamp is None
    core.delete_namespaced_config_map("held", namespace)
    pending = core.read_namespaced_config_map("held", namespace)
    assert pending.metadata.deletion_timestamp is not None
    core.patch_namespaced_config_map("held", namespace, {"metadata": {"finalizers": None}})
    with pytest.raises(ApiException) as gone:
        core.read_namespaced_config_map("held", namespace)
    assert gone.value.status == 404


def test_dynamic_client_server_side_apply_and_custom_resources(
    api_client: client.ApiClient, namespace: str, crd_group: str, cleanup_crds: Callable[[str], None]
) -> None:
    dyn = dynamic.DynamicClient(api_client)
    deployments = dyn.resources.get(api_version="apps/v1", kind="Deployment")
    body = _deployment_body(namespace, "dyn")
    applied = deployments.server_side_apply(body=body, namespace=namespace, field_manager="fleet-agent")
    assert applied.metadata.name == "dyn"
    again = deployments.server_side_apply(body=body, namespace=namespace, field_manager="fleet-agent")
    assert again.metadata.resourceVersion == applied.metadata.resourceVersion

    competing = _deployment_body(namespace, "dyn", replicas=3)
    with pytest.raises(ApiException) as conflict:
        deployments.server_side_apply(body=competing, namespace=namespace, field_manager="someone-else")
    assert conflict.value.status == 409 and "conflict" in str(conflict.value.body).lower()
    forced = deployments.server_side_apply(body=competing, namespace=namespace, field_manager="someone-else",
                                           force_conflicts=True)  # fmt: skip
    assert forced.spec.replicas == 3

    crds = dyn.resources.get(api_version="apiextensions.k8s.io/v1", kind="CustomResourceDefinition")
    cleanup_crds(f"widgets.{crd_group}")
    crds.server_side_apply(body=widget_crd(crd_group), field_manager="fleet-agent")
    cleanup_crds(f"gadgets.{crd_group}")
    crds.server_side_apply(body=widget_crd(crd_group, scope="Cluster", plural="gadgets", kind="Gadget"),
                           field_manager="fleet-agent")  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        crd = crds.get(name=f"widgets.{crd_group}")
        if any(c.type == "Established" and c.status == "True" for c in (crd.status.conditions or [])):
            break
        time.sleep(0.05)
    dyn.resources.invalidate_cache()
    widgets = dyn.resources.get(api_version=f"{crd_group}/v1", kind="Widget")
    widget = {"apiVersion": f"{crd_group}/v1", "kind": "Widget",
              "metadata": {"name": "w", "namespace": namespace}, "spec": {"size": 2}}  # fmt: skip
    created = widgets.server_side_apply(body=widget, namespace=namespace, field_manager="fleet-agent")
    assert created.spec.size == 2 and created.metadata.generation == 1
    status = widgets.status.patch(
        body={"status": {"phase": "Ready"}}, name="w", namespace=namespace, content_type="application/merge-patch+json"
    )
    assert status.status.phase == "Ready" and status.metadata.generation == 1
    listed = widgets.get(namespace=namespace)
    assert [item.metadata.name for item in listed.items] == ["w"]

    gadgets = dyn.resources.get(api_version=f"{crd_group}/v1", kind="Gadget")
    gadget = {"apiVersion": f"{crd_group}/v1", "kind": "Gadget", "metadata": {"name": "g"}, "spec": {"color": "red"}}
    assert gadgets.server_side_apply(body=gadget, field_manager="fleet-agent").metadata.name == "g"
    assert gadgets.get(name="g").spec.color == "red"
    gadgets.delete(name="g")


def test_namespace_deletion_removes_contents(api_client: client.ApiClient, fidelity: FidelityTarget) -> None:
    core = client.CoreV1Api(api_client)
    name = f"gone-{int(time.time() * 1000) % 100000}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    assert core.read_namespace(name).status.phase == "Active"
    core.create_namespaced_config_map(name, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="inside")))
    core.delete_namespace(name)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            core.read_namespace(name)
        except ApiException as error:
            assert error.status == 404
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"namespace {name} was not removed")
    with pytest.raises(ApiException) as missing:
        core.create_namespaced_config_map(name, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="late")))
    assert missing.value.status == 404
