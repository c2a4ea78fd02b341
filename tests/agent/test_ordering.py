from __future__ import annotations

from fleet.agent.ordering import apply_waves, delete_order, wave_of
from fleet.protocol import object_key


def _obj(kind: str, name: str, api_version: str = "v1", namespace: str | None = None) -> dict:
    meta: dict = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    return {"apiVersion": api_version, "kind": kind, "metadata": meta}


def test_waves_put_crds_then_namespaces_then_rbac_config_workloads_rest() -> None:
    objects = [
        _obj("Widget", "w", "example.com/v1", "app"),
        _obj("Deployment", "web", "apps/v1", "app"),
        _obj("ConfigMap", "cfg", namespace="app"),
        _obj("Namespace", "app"),
        _obj("RoleBinding", "rb", "rbac.authorization.k8s.io/v1", "app"),
        _obj("CustomResourceDefinition", "widgets.example.com", "apiextensions.k8s.io/v1"),
        _obj("Service", "web", namespace="app"),
    ]
    waves = apply_waves(objects)
    kinds = [[o["kind"] for o in wave] for wave in waves]
    assert kinds == [
        ["CustomResourceDefinition"],
        ["Namespace"],
        ["RoleBinding"],
        ["ConfigMap", "Service"],
        ["Deployment"],
        ["Widget"],
    ]


def test_waves_keep_given_order_inside_a_wave_and_skip_empty_waves() -> None:
    objects = [_obj("ConfigMap", "b", namespace="x"), _obj("ConfigMap", "a", namespace="x")]
    assert [[o["metadata"]["name"] for o in w] for w in apply_waves(objects)] == [["b", "a"]]


def test_delete_order_is_reverse_apply_order() -> None:
    keys = [
        object_key(_obj("Namespace", "app")),
        object_key(_obj("CustomResourceDefinition", "widgets.example.com", "apiextensions.k8s.io/v1")),
        object_key(_obj("Deployment", "web", "apps/v1", "app")),
        object_key(_obj("Widget", "w", "example.com/v1", "app")),
        object_key(_obj("ConfigMap", "cfg", namespace="app")),
    ]
    kinds = [key.split("/")[1] for key in delete_order(keys)]
    assert kinds == ["Widget", "Deployment", "ConfigMap", "Namespace", "CustomResourceDefinition"]


def test_unknown_kinds_go_last() -> None:
    assert wave_of("Anything") > wave_of("Deployment") > wave_of("ConfigMap") > wave_of("Namespace")
