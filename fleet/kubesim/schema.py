"""OpenAPI schemas of the built-in kinds (from the `kubernetes-validate` package) and of CRDs.

The schema decides how objects merge (list-map keys, sets, atomic lists and maps,
patch merge keys) and which fields exist, exactly as on a real API server.
A schema node is a plain dict; None means "unknown, anything goes".
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

Node = Mapping[str, Any] | None

_PREFERRED_SCHEMA_VERSION = "v1.32.0-local-strict"
_REF_PREFIX = "#/$defs/"


def _schema_dir() -> Path:
    import kubernetes_validate

    base = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
    preferred = base / _PREFERRED_SCHEMA_VERSION
    if preferred.is_dir():
        return preferred

    def version_key(path: Path) -> tuple[int, ...]:
        return tuple(int(x) for x in re.findall(r"\d+", path.name.split("-")[0]))

    candidates = sorted((p for p in base.glob("v*-local-strict") if p.is_dir()), key=version_key)
    if not candidates:
        raise RuntimeError(f"no Kubernetes JSON schemas found under {base}")
    return candidates[-1]


@functools.cache
def definitions() -> dict[str, Any]:
    with (_schema_dir() / "_definitions.json").open() as handle:
        return dict(json.load(handle)["$defs"])


@functools.cache
def _by_gvk() -> dict[tuple[str, str, str], str]:
    index: dict[tuple[str, str, str], str] = {}
    for name, definition in definitions().items():
        for gvk in definition.get("x-kubernetes-group-version-kind") or ():
            index.setdefault((gvk.get("group", ""), gvk.get("version", ""), gvk.get("kind", "")), name)
    return index


def builtin_root(group: str, version: str, kind: str) -> Node:
    name = _by_gvk().get((group, version, kind))
    return definitions()[name] if name else None


def object_meta() -> Node:
    return definitions().get("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta")


def resolve(node: Node) -> Node:
    """Follow `$ref` (and single-entry allOf wrappers) to the real definition."""
    seen = 0
    while node is not None and seen < 20:
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(_REF_PREFIX):
            node = definitions().get(ref[len(_REF_PREFIX):])
        elif isinstance(ref, str):
            node = definitions().get(ref.rsplit("/", 1)[-1])
        else:
            all_of = node.get("allOf")
            if isinstance(all_of, list) and len(all_of) == 1 and "properties" not in node:
                node = all_of[0]
            else:
                return node
        seen += 1
    return node


def preserves_unknown(node: Node) -> bool:
    return node is None or bool(node.get("x-kubernetes-preserve-unknown-fields"))


def child(node: Node, key: str) -> Node:
    """Schema of `key` inside an object node (None when unknown)."""
    node = resolve(node)
    if node is None:
        return None
    properties = node.get("properties")
    if isinstance(properties, Mapping) and key in properties:
        return resolve(properties[key])
    additional = node.get("additionalProperties")
    if isinstance(additional, Mapping):
        return resolve(additional)
    return None


def items(node: Node) -> Node:
    node = resolve(node)
    if node is None:
        return None
    item = node.get("items")
    return resolve(item) if isinstance(item, Mapping) else None


def knows_field(node: Node, key: str) -> bool:
    """False when `key` is not declared where the schema declares its fields."""
    node = resolve(node)
    if node is None or preserves_unknown(node) or "oneOf" in node or "anyOf" in node:
        return True
    properties = node.get("properties")
    additional = node.get("additionalProperties")
    if isinstance(properties, Mapping):
        if key in properties:
            return True
        return isinstance(additional, Mapping) or additional is True
    return True


def list_keys(node: Node) -> tuple[str, ...] | None:
    node = resolve(node)
    if node is None or node.get("x-kubernetes-list-type") != "map":
        return None
    keys = node.get("x-kubernetes-list-map-keys")
    return tuple(keys) if keys else None


def is_set_list(node: Node) -> bool:
    node = resolve(node)
    return node is not None and node.get("x-kubernetes-list-type") == "set"


def is_atomic_map(node: Node) -> bool:
    node = resolve(node)
    return node is not None and node.get("x-kubernetes-map-type") == "atomic"


def patch_merge_key(node: Node) -> str | None:
    node = resolve(node)
    if node is None:
        return None
    strategy = str(node.get("x-kubernetes-patch-strategy", ""))
    key = node.get("x-kubernetes-patch-merge-key")
    return str(key) if key and "merge" in strategy else None


def merges_primitives(node: Node) -> bool:
    """Primitive lists with patch strategy `merge` (finalizers) are unioned by strategic merge."""
    node = resolve(node)
    return node is not None and "merge" in str(node.get("x-kubernetes-patch-strategy", "")) and not node.get(
        "x-kubernetes-patch-merge-key"
    )


def types_of(node: Node) -> set[str]:
    node = resolve(node)
    if node is None:
        return set()
    declared = node.get("type")
    if isinstance(declared, str):
        return {declared}
    if isinstance(declared, list):
        return {str(t) for t in declared}
    if node.get("x-kubernetes-int-or-string"):
        return {"integer", "string"}
    return set()


def item_key(keys: tuple[str, ...], item: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    """A list-map element's key; a port's protocol counts as TCP when omitted, as the server defaults it."""
    result = []
    for key in keys:
        if key in item:
            result.append((key, item[key]))
        elif key == "protocol":
            result.append((key, "TCP"))
    return tuple(result)

