"""JSON patch, merge patch and strategic merge patch."""

from __future__ import annotations

from typing import Any

import pytest

from fleet.kubesim import schema
from fleet.kubesim.patches import PatchError, json_patch, merge_patch, strategic_merge_patch

DEPLOYMENT = schema.builtin_root("apps", "v1", "Deployment")
SERVICE = schema.builtin_root("", "v1", "Service")


def _deployment(containers: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "finalizers": ["a"]},
            "spec": {"template": {"spec": {"containers": containers, **spec}}}}  # fmt: skip


def _containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return obj["spec"]["template"]["spec"]["containers"]  # type: ignore[no-any-return]


def test_json_patch_operations_and_errors() -> None:
    target = {"a": {"b": 1}, "list": [1, 2]}
    result = json_patch(target, [{"op": "replace", "path": "/a/b", "value": 2}, {"op": "add", "path": "/list/-", "value": 3},
                                 {"op": "remove", "path": "/list/0"}, {"op": "test", "path": "/a/b", "value": 2}])  # fmt: skip
    assert result == {"a": {"b": 2}, "list": [2, 3]}
    assert target == {"a": {"b": 1}, "list": [1, 2]}  # not modified in place
    with pytest.raises(PatchError):
        json_patch(target, [{"op": "remove", "path": "/nope"}])
    with pytest.raises(PatchError):
        json_patch(target, [{"op": "test", "path": "/a/b", "value": 9}])
    with pytest.raises(PatchError):
        json_patch(target, {"op": "add"})


def test_merge_patch_rfc7386() -> None:
    target = {"a": "b", "c": {"d": "e", "f": "g"}, "list": [1, 2]}
    patch = {"a": "z", "c": {"f": None}, "list": [3], "new": {"x": 1}}
    assert merge_patch(target, patch) == {"a": "z", "c": {"d": "e"}, "list": [3], "new": {"x": 1}}
    assert merge_patch({"a": 1}, {"a": {"b": None}}) == {"a": {}}


def test_strategic_merge_containers_env_ports_by_key() -> None:
    live = _deployment([{"name": "web", "image": "a", "env": [{"name": "A", "value": "1"}], "ports": [{"containerPort": 80}]},
                        {"name": "side", "image": "s"}])  # fmt: skip
    patch = {"spec": {"template": {"spec": {"containers": [
        {"name": "web", "image": "b", "env": [{"name": "B", "value": "2"}, {"name": "A", "value": "9"}],
         "ports": [{"containerPort": 443}]},
        {"name": "new", "image": "n"},
    ]}}}}  # fmt: skip
    result = strategic_merge_patch(live, patch, DEPLOYMENT)
    containers = _containers(result)
    assert [c["name"] for c in containers] == ["web", "side", "new"]
    assert containers[0]["image"] == "b"
    assert containers[0]["env"] == [{"name": "A", "value": "9"}, {"name": "B", "value": "2"}]
    assert containers[0]["ports"] == [{"containerPort": 80}, {"containerPort": 443}]


def test_strategic_merge_directives() -> None:
    live = _deployment([{"name": "web", "image": "a"}, {"name": "side", "image": "s"}],
                       volumes=[{"name": "v1"}], tolerations=[{"key": "a"}])  # fmt: skip
    delete = {"spec": {"template": {"spec": {"containers": [{"name": "side", "$patch": "delete"}]}}}}
    assert [c["name"] for c in _containers(strategic_merge_patch(live, delete, DEPLOYMENT))] == ["web"]
    replace = {"spec": {"template": {"spec": {"containers": [{"name": "only", "image": "o"}, {"$patch": "replace"}]}}}}
    assert _containers(strategic_merge_patch(live, replace, DEPLOYMENT)) == [{"name": "only", "image": "o"}]
    # tolerations have no merge key: the list is replaced
    tolerations = {"spec": {"template": {"spec": {"tolerations": [{"key": "b"}]}}}}
    assert strategic_merge_patch(live, tolerations, DEPLOYMENT)["spec"]["template"]["spec"]["tolerations"] == [{"key": "b"}]
    # finalizers are a merged primitive list; $deleteFromPrimitiveList removes entries
    merged = strategic_merge_patch(live, {"metadata": {"finalizers": ["b"]}}, DEPLOYMENT)
    assert merged["metadata"]["finalizers"] == ["a", "b"]
    removed = strategic_merge_patch(merged, {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}, DEPLOYMENT)
    assert removed["metadata"]["finalizers"] == ["b"]
    ordered = strategic_merge_patch(live, {"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "side"}, {"name": "web"}]}}}}, DEPLOYMENT)  # fmt: skip
    assert [c["name"] for c in _containers(ordered)] == ["side", "web"]
    map_replace = strategic_merge_patch({"metadata": {"labels": {"a": "1", "b": "2"}}},
                                        {"metadata": {"labels": {"c": "3", "$patch": "replace"}}}, DEPLOYMENT)  # fmt: skip
    assert map_replace["metadata"]["labels"] == {"c": "3"}
    assert strategic_merge_patch({"metadata": {"labels": {"a": "1"}}}, {"metadata": {"labels": {"a": None}}},
                                 DEPLOYMENT)["metadata"]["labels"] == {}  # fmt: skip
    with pytest.raises(PatchError):
        strategic_merge_patch(live, {"spec": {"template": {"spec": {"containers": [{"image": "no-name"}]}}}}, DEPLOYMENT)


def test_strategic_merge_service_ports_keyed_by_port() -> None:
    live = {"spec": {"ports": [{"port": 80, "name": "http"}, {"port": 443, "name": "https"}]}}
    result = strategic_merge_patch(live, {"spec": {"ports": [{"port": 443, "targetPort": 8443}]}}, SERVICE)
    assert result["spec"]["ports"] == [{"port": 80, "name": "http"}, {"port": 443, "name": "https", "targetPort": 8443}]
