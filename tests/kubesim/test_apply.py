"""Server-side apply field sets, fieldsV1 encoding, ownership and conflicts (pure functions)."""

from __future__ import annotations

from typing import Any

import pytest

from fleet.kubesim import apply as ssa
from fleet.kubesim import schema

SCOPE = ssa.Scope(root=schema.builtin_root("apps", "v1", "Deployment"), has_status=True)
NOW = "2026-01-01T00:00:00Z"
LATER = "2026-01-01T00:01:00Z"


def _deployment(replicas: int = 1, image: str = "nginx:1", labels: dict[str, str] | None = None,
                env: list[dict[str, str]] | None = None) -> dict[str, Any]:  # fmt: skip
    container: dict[str, Any] = {"name": "web", "image": image, "ports": [{"containerPort": 80}]}
    if env is not None:
        container["env"] = env
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": labels or {"app": "web"}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [container]}}},
    }  # fmt: skip


def test_field_set_uses_real_fieldsv1_keys() -> None:
    fields = ssa.to_fields_v1(ssa.field_set(_deployment(env=[{"name": "A", "value": "1"}]), SCOPE))
    assert fields["f:metadata"] == {"f:labels": {"f:app": {}}}
    assert fields["f:spec"]["f:selector"] == {}  # LabelSelector is an atomic struct
    container = fields["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"web"}']
    assert container["."] == {} and container["f:name"] == {} and container["f:image"] == {}
    assert container["f:ports"] == {'k:{"containerPort":80,"protocol":"TCP"}': {".": {}, "f:containerPort": {}}}
    assert container["f:env"]['k:{"name":"A"}'] == {".": {}, "f:name": {}, "f:value": {}}
    assert "f:apiVersion" not in fields and "f:name" not in fields["f:metadata"]


def test_fieldsv1_round_trip_and_set_lists() -> None:
    obj = {"metadata": {"finalizers": ["a", "b"]}}
    fields = ssa.field_set(obj, SCOPE)
    assert fields == {("f:metadata", "f:finalizers", 'v:"a"'), ("f:metadata", "f:finalizers", 'v:"b"')}
    encoded = ssa.to_fields_v1(fields)
    assert encoded == {"f:metadata": {"f:finalizers": {'v:"a"': {}, 'v:"b"': {}}}}
    assert ssa.from_fields_v1(encoded) == fields


def test_format_path() -> None:
    path = ("f:spec", "f:template", "f:spec", "f:containers", 'k:{"name":"web"}', "f:image")
    assert ssa.format_path(path) == '.spec.template.spec.containers[name="web"].image'


def _apply(live: dict[str, Any], applied: dict[str, Any], entries: list[ssa.ManagerEntry], manager: str,
           force: bool = False, now: str = NOW) -> tuple[dict[str, Any], list[ssa.ManagerEntry]]:  # fmt: skip
    return ssa.server_side_apply(live, applied, entries, manager, "apps/v1", force, SCOPE, now)


def test_apply_create_then_noop_keeps_timestamps() -> None:
    merged, entries = _apply({"metadata": {"name": "web"}}, _deployment(), [], "agent")
    assert merged["spec"]["replicas"] == 1
    assert [(e.manager, e.operation, e.time) for e in entries] == [("agent", "Apply", NOW)]
    again, entries_again = _apply(merged, _deployment(), entries, "agent", now=LATER)
    assert again == merged
    assert entries_again[0].time == NOW
    assert ssa.same_ownership(entries, entries_again)


def test_conflict_with_other_manager_unless_forced() -> None:
    merged, entries = _apply({"metadata": {"name": "web"}}, _deployment(replicas=1), [], "team-a")
    with pytest.raises(ssa.ApplyConflictError) as error:
        _apply(merged, _deployment(replicas=3), entries, "team-b")
    assert [ssa.format_path(c.path) for c in error.value.conflicts] == [".spec.replicas"]
    assert str(error.value) == 'Apply failed with 1 conflict: conflict with "team-a" using apps/v1: .spec.replicas'
    forced, forced_entries = _apply(merged, _deployment(replicas=3), entries, "team-b", force=True)
    assert forced["spec"]["replicas"] == 3
    owners = {e.manager: e.fields for e in forced_entries}
    assert ("f:spec", "f:replicas") in owners["team-b"]
    assert ("f:spec", "f:replicas") not in owners["team-a"]
    # same value: shared ownership, no conflict
    _, shared = _apply(merged, _deployment(replicas=1), entries, "team-c")
    assert all(("f:spec", "f:replicas") in e.fields for e in shared)


def test_fields_dropped_from_apply_are_removed_unless_owned_elsewhere() -> None:
    first, entries = _apply({"metadata": {"name": "web"}}, _deployment(labels={"app": "web", "extra": "1"},
                                                                      env=[{"name": "A", "value": "1"}]), [], "agent")  # fmt: skip
    second, entries = _apply(first, _deployment(labels={"app": "web"}), entries, "agent")
    assert second["metadata"]["labels"] == {"app": "web"}
    assert "env" not in second["spec"]["template"]["spec"]["containers"][0]
    # another manager co-owns a label: it survives when the agent stops applying it
    third, entries = _apply(second, {"apiVersion": "apps/v1", "kind": "Deployment",
                                     "metadata": {"name": "web", "labels": {"shared": "x"}}}, entries, "other")  # fmt: skip
    fourth, entries = _apply(third, _deployment(labels={"app": "web", "shared": "x"}), entries, "agent")
    fifth, _ = _apply(fourth, _deployment(labels={"app": "web"}), entries, "agent")
    assert fifth["metadata"]["labels"] == {"app": "web", "shared": "x"}


def test_update_takes_ownership_of_changed_fields() -> None:
    merged, entries = _apply({"metadata": {"name": "web"}}, _deployment(), [], "agent")
    scaled = {**merged, "spec": {**merged["spec"], "replicas": 5}}
    after = ssa.record_update(entries, merged, scaled, "kubectl", "apps/v1",
                              ssa.Scope(root=SCOPE.root, has_status=True, subresource="scale"), LATER)  # fmt: skip
    owners = {(e.manager, e.operation, e.subresource): e.fields for e in after}
    assert owners[("kubectl", "Update", "scale")] == {("f:spec", "f:replicas")}
    assert ("f:spec", "f:replicas") not in owners[("agent", "Apply", "")]
    with pytest.raises(ssa.ApplyConflictError) as error:
        _apply(scaled, _deployment(), after, "agent")
    assert error.value.conflicts[0].manager == "kubectl"


def test_diff_fields_for_lists_and_maps() -> None:
    old = _deployment(env=[{"name": "A", "value": "1"}, {"name": "B", "value": "2"}])
    new = _deployment(image="nginx:2", env=[{"name": "A", "value": "1"}, {"name": "C", "value": "3"}])
    changed, removed = ssa.diff_fields(old, new, SCOPE)
    base = ("f:spec", "f:template", "f:spec", "f:containers", 'k:{"name":"web"}')
    assert (*base, "f:image") in changed
    assert (*base, "f:env", 'k:{"name":"C"}') in changed
    assert (*base, "f:env", 'k:{"name":"B"}') in removed
    assert not any(p[: len(base) + 2] == (*base, "f:env", 'k:{"name":"A"}') for p in changed)
