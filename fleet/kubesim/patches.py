"""JSON patch, JSON merge patch (RFC 7386) and strategic merge patch (pure functions)."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import jsonpatch

from fleet.kubesim import schema
from fleet.kubesim.schema import Node


class PatchError(ValueError):
    """The patch does not apply (bad document, bad path, bad directive)."""


def json_patch(target: dict[str, Any], operations: Any) -> dict[str, Any]:
    if not isinstance(operations, list):
        raise PatchError("json patch must be a list of operations")
    try:
        result = jsonpatch.JsonPatch(operations).apply(target, in_place=False)
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, KeyError, IndexError, TypeError) as error:
        raise PatchError(str(error)) from None
    if not isinstance(result, dict):
        raise PatchError("json patch result is not an object")
    return result


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, null deletes, everything else replaces."""
    if not isinstance(patch, Mapping):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# Strategic merge patch ------------------------------------------------------

_DIRECTIVE = "$patch"
_SET_ORDER = "$setElementOrder/"
_DELETE_PRIMITIVE = "$deleteFromPrimitiveList/"
_RETAIN_KEYS = "$retainKeys"


def strategic_merge_patch(target: Any, patch: Any, root: Node) -> Any:
    """Strategic merge patch guided by the type's schema (patch merge keys and strategies)."""
    if not isinstance(patch, Mapping):
        raise PatchError("strategic merge patch must be an object")
    return _smp_map(target if isinstance(target, Mapping) else {}, patch, root)


def _smp_map(target: Mapping[str, Any], patch: Mapping[str, Any], node: Node) -> Any:
    directive = patch.get(_DIRECTIVE)
    if directive == "delete":
        return None
    if directive == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != _DIRECTIVE}
    if directive not in (None, "merge"):
        raise PatchError(f"unknown patch directive {directive!r}")
    result = dict(target)
    retain = patch.get(_RETAIN_KEYS)
    orders: dict[str, list[Any]] = {}
    for key, value in patch.items():
        if key in (_DIRECTIVE, _RETAIN_KEYS):
            continue
        if key.startswith(_SET_ORDER):
            orders[key[len(_SET_ORDER):]] = list(value or [])
            continue
        if key.startswith(_DELETE_PRIMITIVE):
            field = key[len(_DELETE_PRIMITIVE):]
            remove = set(map(_hashable, value or []))
            result[field] = [v for v in result.get(field) or [] if _hashable(v) not in remove]
            continue
        if value is None:
            result.pop(key, None)
            continue
        current = result.get(key)
        child = schema.child(node, key)
        if isinstance(value, Mapping):
            merged = _smp_map(current if isinstance(current, Mapping) else {}, value, child)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        elif isinstance(value, list):
            result[key] = _smp_list(child, current if isinstance(current, list) else [], value)
        else:
            result[key] = value
    for field, order in orders.items():
        if isinstance(result.get(field), list):
            result[field] = _apply_order(schema.child(node, field), result[field], order)
    if isinstance(retain, list):
        keep = set(retain)
        result = {k: v for k, v in result.items() if k in keep}
    return result


def _hashable(value: Any) -> Any:
    return repr(value) if isinstance(value, (dict, list)) else value


def _smp_list(node: Node, current: list[Any], patch: list[Any]) -> list[Any]:
    if any(isinstance(item, Mapping) and item.get(_DIRECTIVE) == "replace" for item in patch):
        return [copy.deepcopy(i) for i in patch if not (isinstance(i, Mapping) and _DIRECTIVE in i)]
    merge_key = schema.patch_merge_key(node)
    item_node = schema.items(node)
    if merge_key is None:
        if schema.merges_primitives(node):
            merged = list(current)
            for value in patch:
                if value not in merged:
                    merged.append(value)
            return merged
        return copy.deepcopy(patch)
    result = [dict(item) if isinstance(item, Mapping) else item for item in current]
    for item in patch:
        if not isinstance(item, Mapping) or merge_key not in item:
            raise PatchError(f"map in list does not contain the merge key {merge_key!r}")
        index = next(
            (i for i, existing in enumerate(result) if isinstance(existing, Mapping)
             and existing.get(merge_key) == item[merge_key]),
            None,
        )  # fmt: skip
        if item.get(_DIRECTIVE) == "delete":
            if index is not None:
                result.pop(index)
            continue
        if index is None:
            result.append({k: copy.deepcopy(v) for k, v in item.items() if k != _DIRECTIVE})
        else:
            result[index] = _smp_map(result[index], item, item_node)
    return result


def _apply_order(node: Node, items: list[Any], order: list[Any]) -> list[Any]:
    """`$setElementOrder`: listed elements first in the given order, the rest after."""
    merge_key = schema.patch_merge_key(node)

    def identity(value: Any) -> Any:
        if merge_key is not None and isinstance(value, Mapping):
            return _hashable(value.get(merge_key))
        return _hashable(value)

    position = {identity(v): i for i, v in enumerate(order)}
    return sorted(items, key=lambda v: position.get(identity(v), len(position)))
