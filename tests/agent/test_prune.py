from __future__ import annotations

from typing import Any

from fleet.agent.prune import plan_prune
from fleet.protocol import LABEL_APP, LABEL_CLUSTER, LABEL_MANAGED_BY, object_key


def _owned(kind: str, name: str, *, app: str = "web", cluster: str = "c1", api_version: str = "v1",
           namespace: str | None = "app", managed: bool = True) -> dict[str, Any]:
    labels = {LABEL_APP: app, LABEL_CLUSTER: cluster}
    if managed:
        labels[LABEL_MANAGED_BY] = "fleet"
    meta: dict[str, Any] = {"name": name, "labels": labels}
    if namespace:
        meta["namespace"] = namespace
    return {"apiVersion": api_version, "kind": kind, "metadata": meta}


def _live(*objs: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {object_key(o): o for o in objs}


NS = _owned("Namespace", "app", namespace=None)
CM = _owned("ConfigMap", "cfg")
DEP = _owned("Deployment", "web", api_version="apps/v1")
SVC = _owned("Service", "web")
CR = _owned("Widget", "w", api_version="example.com/v1")
K = {name: object_key(o) for name, o in {"ns": NS, "cm": CM, "dep": DEP, "svc": SVC, "cr": CR}.items()}


def test_removed_object_is_pruned() -> None:
    live = _live(NS, CM, DEP, SVC)
    plan = plan_prune(set(live), {K["ns"], K["dep"], K["svc"]}, live, cluster="c1", max_delete_share=0.5, force=False)
    assert plan.delete == [K["cm"]] and plan.refused is None


def test_nothing_pruned_after_failed_apply_or_error() -> None:
    live = _live(NS, CM, DEP, SVC)
    failed = plan_prune(set(live), {K["ns"]}, live, cluster="c1", max_delete_share=1, force=True, apply_succeeded=False)
    assert failed.delete == [] and failed.refused and "failed" in failed.refused
    errored = plan_prune(set(live), set(), live, cluster="c1", max_delete_share=1, force=True, desired_from_error=True)
    assert errored.delete == [] and errored.refused


def test_objects_without_ownership_labels_or_for_another_cluster_are_kept() -> None:
    foreign = _owned("ConfigMap", "foreign", managed=False)
    other = _owned("ConfigMap", "other", cluster="c2")
    live = _live(NS, DEP, SVC, CM, foreign, other)
    plan = plan_prune(set(live), {K["ns"], K["dep"], K["svc"]}, live, cluster="c1", max_delete_share=1, force=False)
    assert plan.delete == [K["cm"]]
    assert sorted(plan.kept) == sorted([object_key(foreign), object_key(other)])


def test_only_inventory_objects_are_candidates() -> None:
    live = _live(NS, CM, DEP, SVC)
    plan = plan_prune({K["ns"], K["dep"]}, {K["ns"], K["dep"]}, live, cluster="c1", max_delete_share=1, force=False)
    assert plan.delete == []


def test_mass_prune_refused_unless_forced() -> None:
    live = _live(NS, CM, DEP, SVC)
    plan = plan_prune(set(live), {K["ns"]}, live, cluster="c1", max_delete_share=0.5, force=False)
    assert plan.delete == [] and plan.refused and "--allow-mass-prune" in plan.refused
    forced = plan_prune(set(live), {K["ns"]}, live, cluster="c1", max_delete_share=0.5, force=True)
    assert forced.refused is None
    assert [k.split("/")[1] for k in forced.delete] == ["Deployment", "ConfigMap", "Service"]


def test_delete_order_is_reverse_of_apply() -> None:
    live = _live(NS, CM, DEP, SVC, CR)
    plan = plan_prune(set(live), set(), live, cluster="c1", max_delete_share=1, force=False)
    assert [k.split("/")[1] for k in plan.delete] == ["Widget", "Deployment", "ConfigMap", "Service", "Namespace"]


def test_apps_with_prune_false_and_protected_keys_are_kept() -> None:
    keep = _owned("ConfigMap", "keep", app="db")
    live = _live(NS, CM, DEP, SVC, keep)
    plan = plan_prune(set(live), {K["dep"], K["svc"]}, live, cluster="c1", max_delete_share=1, force=False,
                      no_prune_apps={"db"}, protected={K["ns"]})
    assert plan.delete == [K["cm"]]
    assert sorted(plan.kept) == sorted([object_key(keep), K["ns"]])


def test_already_gone_objects_are_not_deleted() -> None:
    live = _live(NS, DEP)
    plan = plan_prune({K["ns"], K["dep"], K["cm"]}, {K["ns"], K["dep"]}, live, cluster="c1", max_delete_share=0.5,
                      force=False)
    assert plan.delete == [] and plan.refused is None
