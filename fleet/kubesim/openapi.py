"""Minimal OpenAPI v3 documents: enough for kubectl to know every kind accepts `fieldValidation`.

kubectl 1.32 checks /openapi/v3 before sending `fieldValidation=Strict`; each group-version
document lists a PATCH operation per kind with its `x-kubernetes-group-version-kind`.
Strategic-merge request bodies are deliberately not declared, so client-side apply falls
back to kubectl's compiled-in types.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from fleet.kubesim.resources import Registry

_QUERY_PARAMETERS = ["dryRun", "fieldManager", "fieldValidation", "force"]


def _gv_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def group_version_document(registry: Registry, group: str, version: str) -> dict[str, Any] | None:
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
        "components": {"schemas": {}},
    }


def index(registry: Registry) -> dict[str, Any]:
    entries = {}
    for group, version in registry.group_versions():
        document = group_version_document(registry, group, version)
        digest = hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()[:32].upper()
        entries[_gv_path(group, version)] = {"serverRelativeURL": f"/openapi/v3/{_gv_path(group, version)}?hash={digest}"}
    return {"paths": entries}
