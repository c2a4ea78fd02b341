"""Which clusters an app's targets select. Pure functions over specs."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from fleet.inventory.models import AppSpec, AppTarget, ClusterSpec, LabelSelector


def selector_matches(selector: LabelSelector, labels: Mapping[str, str]) -> bool:
    """Kubernetes label-selector semantics; the empty selector matches everything."""
    for key, value in selector.matchLabels.items():
        if labels.get(key) != value:
            return False
    for req in selector.matchExpressions:
        present = req.key in labels
        if req.operator == "In" and (not present or labels[req.key] not in req.values):
            return False
        if req.operator == "NotIn" and present and labels[req.key] in req.values:
            return False
        if req.operator == "Exists" and not present:
            return False
        if req.operator == "DoesNotExist" and present:
            return False
    return True


def target_matches(target: AppTarget, cluster: ClusterSpec) -> bool:
    if target.clusterName is not None and target.clusterName != cluster.name:
        return False
    return target.clusterSelector is None or selector_matches(target.clusterSelector, cluster.labels)


def first_matching_target(app: AppSpec, cluster: ClusterSpec) -> AppTarget | None:
    """A cluster gets the app when any target matches; the first match's customisations apply."""
    for target in app.targets:
        if target_matches(target, cluster):
            return target
    return None


def clusters_for_target(target: AppTarget, clusters: Iterable[ClusterSpec]) -> list[str]:
    return sorted(c.name for c in clusters if target_matches(target, c))
