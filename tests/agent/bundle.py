"""Desired objects for agent scenarios, labelled the way the hub's renderer labels them."""

from __future__ import annotations

import copy
from typing import Any

from fleet.protocol import LABEL_APP, LABEL_CLUSTER, LABEL_MANAGED_BY, object_key

NAMESPACE = "shop"


def owned(obj: dict[str, Any], cluster: str, app: str = "web") -> dict[str, Any]:
    result = copy.deepcopy(obj)
    labels = result.setdefault("metadata", {}).setdefault("labels", {})
    labels.update({LABEL_MANAGED_BY: "fleet", LABEL_CLUSTER: cluster, LABEL_APP: app})
    return result


def namespace() -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}


def configmap(name: str = "web-config", data: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "data": data or {"greeting": "hello"},
    }


def deployment(replicas: int = 2) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": NAMESPACE},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {"name": "web", "image": "nginx:1.27", "ports": [{"containerPort": 80}]}
                    ]
                },
            },
        },
    }


def service() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": NAMESPACE},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 80}]},
    }


def crd() -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
                            },
                        }
                    },
                }
            ],
        },
    }


def widget() -> dict[str, Any]:
    return {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w1", "namespace": NAMESPACE},
        "spec": {"size": 3},
    }


def full_bundle(cluster: str) -> list[dict[str, Any]]:
    """Deliberately not in apply order: the agent orders it."""
    return [
        owned(o, cluster)
        for o in (widget(), deployment(), service(), configmap(), crd(), namespace())
    ]


def key(obj: dict[str, Any]) -> str:
    return object_key(obj)
