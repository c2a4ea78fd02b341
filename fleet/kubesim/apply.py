"""Server-side apply and field ownership (managedFields with fieldsV1), as pure functions.

A field set is a set of paths; a path is a tuple of fieldsV1 keys such as
("f:spec", "f:template", "f:spec", "f:containers", 'k:{"name":"web"}', "f:image").
A path ending in a `k:`/`v:` element stands for the list element itself (`.` in fieldsV1).
"""

from __future__ import annotations

import copy
import json
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from fleet.kubesim import schema
from fleet.kubesim.schema import Node

Path = tuple[str, ...]
FieldSet = set[Path]

# metadata fields the server owns; never part of anyone's field set
IGNORED_METADATA = frozenset({
    "name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp", "deletionTimestamp",
    "deletionGracePeriodSeconds", "managedFields", "selfLink", "generateName",
})  # fmt: skip


@dataclass(frozen=True)
class Scope:
    """Which part of the object a request may change: the main resource or a subresource."""

    root: Node = None  # schema of the whole object
    has_status: bool = False  # the type has a status subresource
    subresource: str = ""  # "" | "status" | "scale"

    def node(self, top_level_field: str) -> Node:
        if top_level_field == "metadata":
            return schema.object_meta()
        return schema.child(self.root, top_level_field)

    def includes(self, top_level_field: str) -> bool:
        if self.subresource == "status":
            return top_level_field == "status"
        if self.subresource == "scale":
            return top_level_field == "spec"
        return not (self.has_status and top_level_field == "status")


# fieldsV1 encoding ---------------------------------------------------------

def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def key_element(keys: tuple[str, ...], item: Mapping[str, Any]) -> str:
    return "k:" + _dumps(dict(schema.item_key(keys, item)))


# One shared, never-mutated empty dict for every fieldsV1 leaf (there are many).
_LEAF: dict[str, Any] = {}


def to_fields_v1(paths: Iterable[Path]) -> dict[str, Any]:
    root: dict[str, Any] = {}
    owned: set[int] = set()
    for path in paths:
        node = root
        for element in path:
            node = node.setdefault(element, {})
        owned.add(id(node))

    def render(node: dict[str, Any]) -> dict[str, Any]:
        if not node:
            return _LEAF
        children = {sys.intern(key): render(child) for key, child in sorted(node.items())}
        if id(node) in owned:
            return {".": _LEAF, **children}
        return children

    return render(root)


def from_fields_v1(fields: Mapping[str, Any] | None, prefix: Path = ()) -> FieldSet:
    result: FieldSet = set()
    for key, child in (fields or {}).items():
        if key == ".":
            if prefix:
                result.add(prefix)
            continue
        path = (*prefix, key)
        if not child:
            result.add(path)
        else:
            result |= from_fields_v1(child, path)
    return result


def format_path(path: Path) -> str:
    """`.spec.template.spec.containers[name="web"].image`, as the real conflict messages show it."""
    parts = []
    for element in path:
        kind, _, rest = element.partition(":")
        if kind == "f":
            parts.append("." + rest)
        elif kind == "k":
            pairs = json.loads(rest)
            parts.append("[" + ",".join(f"{k}={_dumps(v)}" for k, v in pairs.items()) + "]")
        elif kind == "v":
            parts.append(f"[={rest}]")
        else:
            parts.append(f"[{rest}]")
    return "".join(parts)


# walking objects -----------------------------------------------------------

def _walk(value: Any, path: Path, node: Node, out: FieldSet) -> None:
    if isinstance(value, dict):
        if value and not schema.is_atomic_map(node):
            for key, child in value.items():
                _walk(child, (*path, "f:" + key), schema.child(node, key), out)
        else:
            out.add(path)
        return
    if isinstance(value, list) and value:
        keys = schema.list_keys(node)
        if keys and all(isinstance(item, dict) for item in value):
            item_node = schema.items(node)
            for item in value:
                item_path = (*path, key_element(keys, item))
                out.add(item_path)
                for key, child in item.items():
                    _walk(child, (*item_path, "f:" + key), schema.child(item_node, key), out)
            return
        if schema.is_set_list(node):
            for item in value:
                out.add((*path, "v:" + _dumps(item)))
            return
    out.add(path)


def field_set(obj: Mapping[str, Any], scope: Scope) -> FieldSet:
    """Every field an object sets, excluding server-owned ones and fields outside the scope."""
    out: FieldSet = set()
    for key, value in obj.items():
        if key in ("apiVersion", "kind"):
            continue
        if key == "metadata":
            if scope.subresource:
                continue
            meta_node = schema.object_meta()
            for meta_key, meta_value in (value or {}).items():
                if meta_key not in IGNORED_METADATA:
                    _walk(meta_value, ("f:metadata", "f:" + meta_key), schema.child(meta_node, meta_key), out)
            continue
        if scope.includes(key):
            _walk(value, ("f:" + key,), scope.node(key), out)
    return out


def _find_item(items: list[Any], element: str) -> int | None:
    kind, _, rest = element.partition(":")
    if kind == "v":
        wanted = json.loads(rest)
        return next((i for i, v in enumerate(items) if v == wanted), None)
    if kind == "k":
        wanted_key = json.loads(rest)
        keys = tuple(wanted_key)
        for index, item in enumerate(items):
            if isinstance(item, Mapping) and dict(schema.item_key(keys, item)) == wanted_key:
                return index
        return None
    if kind == "i":
        position = int(rest)
        return position if position < len(items) else None
    return None


def value_at(obj: Any, path: Path) -> tuple[bool, Any]:
    current = obj
    for element in path:
        if element.startswith("f:"):
            field = element[2:]
            if not isinstance(current, Mapping) or field not in current:
                return False, None
            current = current[field]
        else:
            if not isinstance(current, list):
                return False, None
            index = _find_item(current, element)
            if index is None:
                return False, None
            current = current[index]
    return True, current


def remove_path(obj: dict[str, Any], path: Path) -> None:
    """Delete the field or list element at `path` (in place; callers work on copies)."""
    found, parent = value_at(obj, path[:-1])
    if not found:
        return
    last = path[-1]
    if last.startswith("f:"):
        if isinstance(parent, dict):
            parent.pop(last[2:], None)
    elif isinstance(parent, list):
        index = _find_item(parent, last)
        if index is not None:
            parent.pop(index)


def diff_fields(old: Mapping[str, Any], new: Mapping[str, Any], scope: Scope) -> tuple[FieldSet, FieldSet]:
    """(added or changed paths, removed paths) between two versions of an object."""
    changed: FieldSet = set()
    removed: FieldSet = set()
    if not scope.subresource:
        old_meta = {k: v for k, v in (old.get("metadata") or {}).items() if k not in IGNORED_METADATA}
        new_meta = {k: v for k, v in (new.get("metadata") or {}).items() if k not in IGNORED_METADATA}
        _diff(old_meta, new_meta, ("f:metadata",), schema.object_meta(), changed, removed)
    keys = [k for k in {**old, **new} if k not in ("apiVersion", "kind", "metadata") and scope.includes(k)]
    for key in keys:
        path = ("f:" + key,)
        if key not in new:
            removed.add(path)
        elif key not in old:
            _walk(new[key], path, scope.node(key), changed)
        else:
            _diff(old[key], new[key], path, scope.node(key), changed, removed)
    return changed, removed


def _diff(old: Any, new: Any, path: Path, node: Node, changed: FieldSet, removed: FieldSet) -> None:
    if old == new:
        return
    if isinstance(old, dict) and isinstance(new, dict) and new and old and not schema.is_atomic_map(node):
        for key, value in new.items():
            child = (*path, "f:" + key)
            if key not in old:
                _walk(value, child, schema.child(node, key), changed)
            else:
                _diff(old[key], value, child, schema.child(node, key), changed, removed)
        for key in old:
            if key not in new:
                removed.add((*path, "f:" + key))
        return
    if isinstance(old, list) and isinstance(new, list) and old and new:
        keys = schema.list_keys(node)
        if keys and all(isinstance(i, dict) for i in old + new):
            item_node = schema.items(node)
            old_items = {key_element(keys, i): i for i in old}
            new_items = {key_element(keys, i): i for i in new}
            for element, item in new_items.items():
                item_path = (*path, element)
                if element not in old_items:
                    changed.add(item_path)
                    for key, value in item.items():
                        _walk(value, (*item_path, "f:" + key), schema.child(item_node, key), changed)
                else:
                    _diff(old_items[element], item, item_path, item_node, changed, removed)
            removed.update((*path, element) for element in old_items if element not in new_items)
            return
        if schema.is_set_list(node):
            old_values = {_dumps(v) for v in old}
            new_values = {_dumps(v) for v in new}
            changed.update((*path, "v:" + v) for v in new_values - old_values)
            removed.update((*path, "v:" + v) for v in old_values - new_values)
            return
    _walk(new, path, node, changed)


def _under(path: Path, prefixes: Iterable[Path]) -> bool:
    return any(path[: len(prefix)] == prefix for prefix in prefixes)


def _strip(field_set_: FieldSet, removed: FieldSet) -> FieldSet:
    return {path for path in field_set_ if not _under(path, removed)}


# managedFields entries ------------------------------------------------------

@dataclass
class ManagerEntry:
    manager: str
    operation: str  # "Apply" | "Update"
    api_version: str
    time: str
    fields: FieldSet
    subresource: str = ""

    @property
    def identity(self) -> tuple[str, str, str]:
        return (self.manager, self.operation, self.subresource)

    def to_dict(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "manager": self.manager,
            "operation": self.operation,
            "apiVersion": self.api_version,
            "time": self.time,
            "fieldsType": "FieldsV1",
            "fieldsV1": to_fields_v1(self.fields),
        }
        if self.subresource:
            entry["subresource"] = self.subresource
        return entry


def parse_managed_fields(entries: Iterable[Mapping[str, Any]] | None) -> list[ManagerEntry]:
    return [
        ManagerEntry(
            manager=str(entry.get("manager", "")),
            operation=str(entry.get("operation", "Update")),
            api_version=str(entry.get("apiVersion", "")),
            time=str(entry.get("time", "")),
            fields=from_fields_v1(entry.get("fieldsV1")),
            subresource=str(entry.get("subresource", "")),
        )
        for entry in entries or []
    ]


def render_managed_fields(entries: list[ManagerEntry]) -> list[dict[str, Any]]:
    """Encoded entries in the real server's order: Apply before Update, then oldest first."""
    kept = sorted(
        (entry for entry in entries if entry.fields),
        key=lambda e: (e.operation, e.time, e.manager, e.api_version, e.subresource),
    )
    return [entry.to_dict() for entry in kept]


def same_ownership(a: list[ManagerEntry], b: list[ManagerEntry]) -> bool:
    def key(entries: list[ManagerEntry]) -> dict[tuple[str, str, str], tuple[str, frozenset[Path]]]:
        return {e.identity: (e.api_version, frozenset(e.fields)) for e in entries if e.fields}

    return key(a) == key(b)


def record_update(
    entries: list[ManagerEntry],
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    manager: str,
    api_version: str,
    scope: Scope,
    now: str,
) -> list[ManagerEntry]:
    """Ownership after a non-apply write: the writer takes the fields it changed."""
    changed, removed = diff_fields(old, new, scope)
    if not changed and not removed:
        return entries
    result: list[ManagerEntry] = []
    mine: ManagerEntry | None = None
    for entry in entries:
        fields = _strip(entry.fields, removed) - changed
        updated = ManagerEntry(entry.manager, entry.operation, entry.api_version, entry.time, fields, entry.subresource)
        if entry.identity == (manager, "Update", scope.subresource):
            mine = updated
        result.append(updated)
    if changed:
        if mine is None:
            mine = ManagerEntry(manager, "Update", api_version, now, set(), scope.subresource)
            result.append(mine)
        mine.fields |= changed
        mine.time = now
        mine.api_version = api_version
    return [entry for entry in result if entry.fields]


# server-side apply ----------------------------------------------------------

@dataclass(frozen=True)
class Conflict:
    manager: str
    api_version: str
    path: Path


class ApplyConflictError(Exception):
    def __init__(self, conflicts: list[Conflict]) -> None:
        super().__init__(conflict_message(conflicts))
        self.conflicts = conflicts


def conflict_message(conflicts: list[Conflict]) -> str:
    """The real server's wording, e.g. `Apply failed with 1 conflict: conflict with "x" using apps/v1: .spec.replicas`."""
    if len(conflicts) == 1:
        c = conflicts[0]
        return f'Apply failed with 1 conflict: conflict with "{c.manager}" using {c.api_version}: {format_path(c.path)}'
    by_manager: dict[tuple[str, str], list[Path]] = {}
    for c in conflicts:
        by_manager.setdefault((c.manager, c.api_version), []).append(c.path)
    lines = []
    for (manager, api_version), paths in sorted(by_manager.items()):
        lines.append(f'conflicts with "{manager}" using {api_version}:')
        lines += [f"- {format_path(p)}" for p in sorted(paths)]
    return f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)


def merge_applied(live: Any, applied: Any, node: Node) -> Any:
    """Structured merge of an applied configuration into the live object."""
    if isinstance(applied, dict) and isinstance(live, dict) and not schema.is_atomic_map(node):
        result = dict(live)
        for key, value in applied.items():
            if key in live:
                result[key] = merge_applied(live[key], value, schema.child(node, key))
            else:
                result[key] = copy.deepcopy(value)
        return result
    if isinstance(applied, list) and isinstance(live, list):
        keys = schema.list_keys(node)
        if keys and all(isinstance(i, dict) for i in applied + live):
            item_node = schema.items(node)
            merged = list(live)
            positions = {key_element(keys, item): i for i, item in enumerate(live)}
            for item in applied:
                element = key_element(keys, item)
                if element in positions:
                    merged[positions[element]] = merge_applied(live[positions[element]], item, item_node)
                else:
                    merged.append(copy.deepcopy(item))
            return merged
        if schema.is_set_list(node):
            return list(live) + [v for v in applied if v not in live]
    return copy.deepcopy(applied)


def server_side_apply(
    live: dict[str, Any],
    applied: Mapping[str, Any],
    entries: list[ManagerEntry],
    manager: str,
    api_version: str,
    force: bool,
    scope: Scope,
    now: str,
) -> tuple[dict[str, Any], list[ManagerEntry]]:
    """Merge `applied` into `live` on behalf of `manager`; returns (new object, new ownership).

    Raises ApplyConflictError when a field whose value would change is owned by another
    manager and `force` is false. `live` may be modified; pass a copy.
    """
    applied_fields = field_set(applied, scope)
    merged: dict[str, Any] = dict(live)
    for key, value in applied.items():
        if key in ("apiVersion", "kind"):
            continue
        if key == "metadata":
            meta = dict(merged.get("metadata") or {})
            meta_node = schema.object_meta()
            for meta_key, meta_value in (value or {}).items():
                if meta_key in IGNORED_METADATA:
                    continue
                meta[meta_key] = merge_applied(meta.get(meta_key), meta_value, schema.child(meta_node, meta_key))
            merged["metadata"] = meta
        elif scope.includes(key):
            merged[key] = merge_applied(merged.get(key), value, scope.node(key))

    identity = (manager, "Apply", scope.subresource)
    conflicts: list[Conflict] = []
    conflicting_per_entry: dict[int, FieldSet] = {}
    for index, entry in enumerate(entries):
        if entry.identity == identity:
            continue
        for path in applied_fields & entry.fields:
            if not path[-1].startswith("f:"):
                continue
            found_live, live_value = value_at(live, path)
            _, new_value = value_at(merged, path)
            if found_live and live_value != new_value:
                conflicts.append(Conflict(entry.manager, entry.api_version, path))
                conflicting_per_entry.setdefault(index, set()).add(path)
    if conflicts and not force:
        conflicts.sort(key=lambda c: (c.manager, c.path))
        raise ApplyConflictError(conflicts)

    result_entries: list[ManagerEntry] = []
    previous: FieldSet = set()
    for index, entry in enumerate(entries):
        if entry.identity == identity:
            previous = entry.fields
            continue
        fields = entry.fields - conflicting_per_entry.get(index, set())
        result_entries.append(
            ManagerEntry(entry.manager, entry.operation, entry.api_version, entry.time, fields, entry.subresource)
        )

    # Fields this manager applied before and omits now go away, unless someone else still owns them.
    others: FieldSet = set().union(*(e.fields for e in result_entries)) if result_entries else set()
    still_owned = applied_fields | others
    removed: list[Path] = []
    for path in sorted(previous - applied_fields, key=len):
        if any(path[: len(done)] == done for done in removed) or _owned_at_or_below(path, still_owned):
            continue
        remove_path(merged, path)
        removed.append(path)
        _drop_empty_parents(merged, path, still_owned)

    old_entry = next((e for e in entries if e.identity == identity), None)
    unchanged = old_entry is not None and old_entry.fields == applied_fields and old_entry.api_version == api_version
    mine = ManagerEntry(
        manager, "Apply", api_version, old_entry.time if unchanged and old_entry else now, applied_fields,
        scope.subresource,
    )
    # Keep the entry where it was, so a no-op apply leaves managedFields byte-identical.
    final: list[ManagerEntry] = []
    placed = False
    for entry in entries:
        if entry.identity == identity:
            final.append(mine)
            placed = True
        else:
            final.append(next(e for e in result_entries if e.identity == entry.identity))
    if not placed:
        final.append(mine)
    return merged, [entry for entry in final if entry.fields]


def _drop_empty_parents(obj: dict[str, Any], path: Path, owned: FieldSet) -> None:
    """A list or map emptied by removals goes too, unless someone owns it as a whole."""
    parent = path[:-1]
    while len(parent) > 1:
        found, value = value_at(obj, parent)
        if not found or value not in ({}, []) or _owned_at_or_below(parent, owned):
            return
        remove_path(obj, parent)
        parent = parent[:-1]


def _owned_at_or_below(path: Path, owned: FieldSet) -> bool:
    size = len(path)
    return any(other[:size] == path for other in owned)
