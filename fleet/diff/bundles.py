"""What a change to the fleet repo does to each cluster: objects created, changed (field by field)
or deleted, clusters added or removed, apps moving. Pure: bundles in, a PlanDiff out.

Secret values never enter a PlanDiff: every value is passed through `redact_at`
as it is recorded, so formatting code cannot leak what it never receives.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from fleet.diff.redact import redact_at
from fleet.protocol import LABEL_APP, object_key
from fleet.render.bundle import Bundle

SECRETS_APP = "fleet.secrets"  # the app label of objects rendered from secrets/ (see fleet.render.bundle)

BundleLike = Bundle | Sequence[Mapping[str, Any]]
FieldPath = tuple[str | int, ...]


class _Absent:
    """A field that does not exist on one side of a change."""

    _instance: _Absent | None = None

    def __new__(cls) -> _Absent:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT: Any = _Absent()


def pointer(path: FieldPath) -> str:
    """A JSON pointer (RFC 6901): ("metadata", "labels", "a/b") -> "/metadata/labels/a~1b"."""
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in path)


@dataclass(frozen=True)
class FieldChange:
    path: str
    old: Any = ABSENT
    new: Any = ABSENT

    @property
    def op(self) -> Literal["add", "remove", "replace"]:
        if self.old is ABSENT:
            return "add"
        if self.new is ABSENT:
            return "remove"
        return "replace"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path, "op": self.op}
        if self.old is not ABSENT:
            out["old"] = self.old
        if self.new is not ABSENT:
            out["new"] = self.new
        return out


ObjectAction = Literal["create", "update", "delete"]


@dataclass(frozen=True)
class ObjectChange:
    action: ObjectAction
    key: str
    api_version: str
    kind: str
    namespace: str
    name: str
    app: str
    fields: tuple[FieldChange, ...] = ()

    @property
    def title(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}" if self.namespace else f"{self.kind} {self.name}"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "action": self.action,
            "key": self.key,
            "apiVersion": self.api_version,
            "kind": self.kind,
            "namespace": self.namespace,
            "name": self.name,
            "app": self.app,
        }
        if self.action == "update":
            out["fields"] = [change.to_dict() for change in self.fields]
        return out


ClusterStatus = Literal["added", "removed", "changed", "unchanged"]


@dataclass(frozen=True)
class ClusterDiff:
    cluster: str
    status: ClusterStatus
    objects: tuple[ObjectChange, ...] = ()
    apps_added: tuple[str, ...] = ()
    apps_removed: tuple[str, ...] = ()

    def count(self, action: ObjectAction) -> int:
        return sum(1 for change in self.objects if change.action == action)

    def to_dict(self) -> dict[str, Any]:
        return {
            "cluster": self.cluster,
            "status": self.status,
            "create": self.count("create"),
            "update": self.count("update"),
            "delete": self.count("delete"),
            "appsAdded": list(self.apps_added),
            "appsRemoved": list(self.apps_removed),
            "objects": [change.to_dict() for change in self.objects],
        }


@dataclass(frozen=True)
class AppMove:
    """An app that starts or stops running on clusters present in both revisions."""

    app: str
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"app": self.app, "added": list(self.added), "removed": list(self.removed)}


@dataclass(frozen=True)
class PlanDiff:
    clusters: tuple[ClusterDiff, ...]
    moves: tuple[AppMove, ...] = field(default_factory=tuple)

    @property
    def changed(self) -> list[ClusterDiff]:
        return [c for c in self.clusters if c.status != "unchanged"]

    @property
    def has_changes(self) -> bool:
        return bool(self.changed or self.moves)

    def cluster(self, name: str) -> ClusterDiff | None:
        return next((c for c in self.clusters if c.cluster == name), None)

    def totals(self) -> dict[str, int]:
        return {
            "create": sum(c.count("create") for c in self.clusters),
            "update": sum(c.count("update") for c in self.clusters),
            "delete": sum(c.count("delete") for c in self.clusters),
            "clustersAdded": sum(1 for c in self.clusters if c.status == "added"),
            "clustersRemoved": sum(1 for c in self.clusters if c.status == "removed"),
            "clustersChanged": sum(1 for c in self.clusters if c.status == "changed"),
            "clustersUnchanged": sum(1 for c in self.clusters if c.status == "unchanged"),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "summary": self.totals(),
            "clusters": [c.to_dict() for c in self.clusters],
            "appMoves": [m.to_dict() for m in self.moves],
        }


# ------------------------------------------------------------------ values


def _same(a: Any, b: Any) -> bool:
    # 1 == True and 1 == 1.0 in Python, not in a manifest
    return type(a) is type(b) and a == b


def _names(items: Sequence[Any]) -> list[str] | None:
    """The `name` of every item, if every item is a mapping with a distinct string name."""
    names = [item.get("name") if isinstance(item, dict) else None for item in items]
    if not all(isinstance(name, str) for name in names) or len(set(names)) != len(names):
        return None
    return names  # type: ignore[return-value]


def diff_values(old: Any, new: Any, path: FieldPath = ()) -> Iterator[tuple[FieldPath, Any, Any]]:
    """(path, old, new) for every leaf-most difference; ABSENT marks a side without the field."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in [*old, *(k for k in new if k not in old)]:
            yield from diff_values(old.get(key, ABSENT), new.get(key, ABSENT), (*path, key))
        return
    if isinstance(old, list) and isinstance(new, list):
        yield from _diff_lists(old, new, path)
        return
    if old is ABSENT and new is ABSENT:
        return
    if not _same(old, new):
        yield path, old, new


def _diff_lists(old: list[Any], new: list[Any], path: FieldPath) -> Iterator[tuple[FieldPath, Any, Any]]:
    old_names, new_names = _names(old), _names(new)
    if old_names is not None and new_names is not None:
        common_old = [n for n in old_names if n in new_names]
        common_new = [n for n in new_names if n in old_names]
        if common_old == common_new:
            # containers, env, ports, volumes: matched by name, so an insertion is one change, not many
            for index, name in enumerate(old_names):
                if name not in new_names:
                    yield (*path, index), old[index], ABSENT
            for index, name in enumerate(new_names):
                if name in old_names:
                    yield from diff_values(old[old_names.index(name)], new[index], (*path, index))
                else:
                    yield (*path, index), ABSENT, new[index]
            return
    for index in range(max(len(old), len(new))):
        yield from diff_values(
            old[index] if index < len(old) else ABSENT, new[index] if index < len(new) else ABSENT, (*path, index)
        )


def diff_object(old: Mapping[str, Any], new: Mapping[str, Any]) -> tuple[FieldChange, ...]:
    """Field changes from `old` to `new`, with any Secret value redacted."""
    changes = []
    for path, before, after in diff_values(dict(old), dict(new)):
        changes.append(
            FieldChange(
                path=pointer(path),
                old=before if before is ABSENT else redact_at(old, path, before),
                new=after if after is ABSENT else redact_at(new, path, after),
            )
        )
    return tuple(changes)


# ------------------------------------------------------------------ bundles


def _objects(bundle: BundleLike | None) -> list[Mapping[str, Any]]:
    if bundle is None:
        return []
    return list(bundle.objects) if isinstance(bundle, Bundle) else list(bundle)


def _apps(bundle: BundleLike | None) -> list[str]:
    if bundle is None:
        return []
    if isinstance(bundle, Bundle):
        return [app.name for app in bundle.apps]
    found: list[str] = []
    for obj in bundle:
        app = ((obj.get("metadata") or {}).get("labels") or {}).get(LABEL_APP)
        if isinstance(app, str) and app != SECRETS_APP and app not in found:
            found.append(app)
    return found


def _change(action: ObjectAction, key: str, obj: Mapping[str, Any], fields: tuple[FieldChange, ...] = ()) -> ObjectChange:
    meta = obj.get("metadata") or {}
    labels = meta.get("labels") or {}
    return ObjectChange(
        action=action,
        key=key,
        api_version=str(obj.get("apiVersion", "")),
        kind=str(obj.get("kind", "")),
        namespace=str(meta.get("namespace") or ""),
        name=str(meta.get("name") or ""),
        app=str(labels.get(LABEL_APP, "")),
        fields=fields,
    )


def diff_cluster(cluster: str, base: BundleLike | None, head: BundleLike | None) -> ClusterDiff:
    """One cluster's changes; `None` on a side means the cluster does not exist in that revision."""
    old = {object_key(dict(o)): o for o in _objects(base)}
    new = {object_key(dict(o)): o for o in _objects(head)}
    changes: list[ObjectChange] = []
    for key, obj in new.items():
        if key not in old:
            changes.append(_change("create", key, obj))
        else:
            fields = diff_object(old[key], obj)
            if fields:
                changes.append(_change("update", key, obj, fields))
    changes.extend(_change("delete", key, obj) for key, obj in old.items() if key not in new)
    old_apps, new_apps = _apps(base), _apps(head)
    status: ClusterStatus
    if base is None:
        status = "added"
    elif head is None:
        status = "removed"
    else:
        status = "changed" if changes or old_apps != new_apps else "unchanged"
    return ClusterDiff(
        cluster=cluster,
        status=status,
        objects=tuple(changes),
        apps_added=tuple(a for a in new_apps if a not in old_apps),
        apps_removed=tuple(a for a in old_apps if a not in new_apps),
    )


def diff_bundles(base: Mapping[str, BundleLike], head: Mapping[str, BundleLike]) -> PlanDiff:
    """Every cluster of either revision, sorted by name, and the apps that move between clusters."""
    clusters = tuple(diff_cluster(name, base.get(name), head.get(name)) for name in sorted({*base, *head}))
    moved: dict[str, tuple[list[str], list[str]]] = {}
    for diff in clusters:
        if diff.status in ("added", "removed"):
            continue  # its apps come and go with the cluster
        for app in diff.apps_added:
            moved.setdefault(app, ([], []))[0].append(diff.cluster)
        for app in diff.apps_removed:
            moved.setdefault(app, ([], []))[1].append(diff.cluster)
    moves = tuple(AppMove(app, tuple(added), tuple(removed)) for app, (added, removed) in sorted(moved.items()))
    return PlanDiff(clusters=clusters, moves=moves)
