"""OpenAPI v3 documents per group-version, built from the same schemas the server validates with.

kubectl 1.32 checks /openapi/v3 before sending `fieldValidation=Strict` (each document lists a
PATCH operation per kind with its `x-kubernetes-group-version-kind`), and `kubectl explain`
reads the component schemas. Strategic-merge request bodies are deliberately not declared,
so client-side apply falls back to kubectl's compiled-in types.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from fleet.kubesim import schema
from fleet.kubesim.resources import Registry, ResourceType

_QUERY_PARAMETERS = ["dryRun", "fieldManager", "fieldValidation", "force"]


def _gv_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def _rewrite_refs(node: Any, found: set[str]) -> Any:
    if isinstance(node, dict):
        result = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                name = value.rsplit("/", 1)[-1]
                found.add(name)
                result[key] = f"#/components/schemas/{name}"
            elif key == "type" and isinstance(value, list):
                # JSON-schema style ["object", "null"]; OpenAPI 3.0 wants one type
                result[key] = next((t for t in value if t != "null"), "string")
            else:
                result[key] = _rewrite_refs(value, found)
        return result
    if isinstance(node, list):
        return [_rewrite_refs(item, found) for item in node]
    return node


def _component_schemas(types: list[ResourceType]) -> dict[str, Any]:
    """The kinds' schemas and everything they reference, with refs pointing into components."""
    definitions = schema.definitions()
    components: dict[str, Any] = {}
    pending: set[str] = set()
    for resource_type in types:
        if resource_type.custom:
            root = dict(resource_type.schema or {"type": "object"})
            root["x-kubernetes-group-version-kind"] = [
                {"group": resource_type.group, "version": resource_type.version, "kind": resource_type.kind}
            ]
            name = f"{resource_type.group}.{resource_type.version}.{resource_type.kind}"
            components[name] = _rewrite_refs(root, pending)
            continue
        for name, definition in definitions.items():
            for gvk in definition.get("x-kubernetes-group-version-kind") or ():
                if (gvk.get("group", ""), gvk.get("version"), gvk.get("kind")) == (
                    resource_type.group, resource_type.version, resource_type.kind,
                ):  # fmt: skip
                    pending.add(name)
    while pending:
        name = pending.pop()
        if name in components or name not in definitions:
            continue
        components[name] = _rewrite_refs(definitions[name], pending)
    return components


def group_version_document(registry: Registry, group: str, version: str) -> dict[str, Any] | None:
    return registry.cached(
        f"openapi:{group}/{version}", lambda: _build_document(registry, group, version)
    )


def _build_document(registry: Registry, group: str, version: str) -> dict[str, Any] | None:
    types = [t for t in registry.types() if t.group == group and t.version == version]
    if not types:
        return None
    paths: dict[str, Any] = {}
    for resource_type in types:
        base = f"/{_gv_path(group, version)}"
        if resource_type.namespaced:
            base += "/namespaces/{namespace}"
        path = f"{base}/{resource_type.plural}/{{name}}"
        operation = {
            "operationId": f"patch{resource_type.kind}",
            "parameters": [{"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": True}}
                           for name in _QUERY_PARAMETERS],
            "responses": {"200": {"description": "OK"}},
            "x-kubernetes-action": "patch",
            "x-kubernetes-group-version-kind": {"group": group, "version": version, "kind": resource_type.kind},
        }  # fmt: skip
        paths[path] = {"patch": operation}
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.32.4"},
        "paths": paths,
        "components": {"schemas": _component_schemas(types)},
    }


def index(registry: Registry) -> dict[str, Any]:
    return registry.cached("openapi:index", lambda: _build_index(registry))


def _build_index(registry: Registry) -> dict[str, Any]:
    entries = {}
    for group, version in registry.group_versions():
        document = group_version_document(registry, group, version)
        digest = hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()[:32].upper()
        entries[_gv_path(group, version)] = {"serverRelativeURL": f"/openapi/v3/{_gv_path(group, version)}?hash={digest}"}
    return {"paths": entries}
