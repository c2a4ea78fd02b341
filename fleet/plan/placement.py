"""The fleet plan: which cluster runs which app, with which customisations.

Pure: the same inventory and failover state always give the same plan. The
hub renders bundles from it; `fleet plan` diffs two of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fleet.errors import SpecProblem
from fleet.inventory.loader import Inventory
from fleet.inventory.models import AppSpec, AppTarget, ClusterSpec
from fleet.plan.failover import GroupState, initial_group_states
from fleet.plan.targeting import clusters_for_target, first_matching_target


@dataclass(frozen=True)
class Placement:
    """One app on one cluster."""

    app: str
    cluster: str
    target: AppTarget
    values: Mapping[str, Any]
    scale_to_zero: bool = False  # warm standby, or an old primary told to stand down


@dataclass(frozen=True)
class FleetPlan:
    placements: Mapping[str, tuple[Placement, ...]]  # cluster -> placements in dependency order
    epochs: Mapping[str, int]  # cluster -> fencing epoch of its failover group (0 if none)
    warnings: tuple[SpecProblem, ...] = ()
    problems: tuple[SpecProblem, ...] = field(default_factory=tuple)

    def apps_on(self, cluster: str) -> list[str]:
        return [p.app for p in self.placements.get(cluster, ())]


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged: dict[str, Any] = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def placement_values(app: AppSpec, cluster: ClusterSpec, target: AppTarget) -> dict[str, Any]:
    """Values for substitution: app defaults < cluster values < target values, plus `cluster.*`."""
    values = deep_merge(deep_merge(app.values, cluster.values), target.values)
    values["cluster"] = {
        "name": cluster.name,
        "labels": dict(cluster.labels),
        "region": cluster.region or "",
        "provider": cluster.provider.type,
    }
    return values


def dependency_order(apps: Mapping[str, AppSpec]) -> list[str]:
    """Apps sorted so every app comes after what it depends on (ties by name)."""
    ordered: list[str] = []
    done: set[str] = set()

    def visit(name: str, trail: frozenset[str]) -> None:
        if name in done or name in trail or name not in apps:
            return  # cycles are rejected by the inventory loader
        for dep in sorted(apps[name].dependsOn):
            visit(dep, trail | {name})
        done.add(name)
        ordered.append(name)

    for name in sorted(apps):
        visit(name, frozenset())
    return ordered


def _failover_role(
    app: AppSpec, cluster: ClusterSpec, groups: Mapping[str, GroupState], inventory: Inventory
) -> tuple[bool, bool]:
    """(runs here, scaled to zero) for a failover app on one cluster."""
    group = app.failoverGroup
    membership = cluster.failover
    if group is None or membership is None or membership.group != group:
        return False, False
    state = groups[group]
    if cluster.name == state.active:
        return True, False
    settings = inventory.settings.failover.groups.get(group)
    mode = settings.mode if settings else "cold"
    old_primary = settings.oldPrimary if settings else "scale-down"
    if mode == "warm":
        return True, True
    # cold standby: nothing here, except a former primary told to stand down in place
    if membership.role == "primary" and old_primary == "scale-down":
        return True, True
    return False, False


def plan_fleet(inventory: Inventory, groups: Mapping[str, GroupState] | None = None) -> FleetPlan:
    """Place every app on the clusters its targets select (failover apps on their group's active cluster)."""
    states = dict(initial_group_states(inventory))
    if groups:
        states.update({name: state for name, state in groups.items() if name in states})
    order = dependency_order(inventory.apps)
    placements: dict[str, list[Placement]] = {name: [] for name in sorted(inventory.clusters)}
    problems: list[SpecProblem] = []
    warnings: list[SpecProblem] = []

    for app_name in order:
        app = inventory.apps[app_name]
        file = inventory.files.get(f"apps/{app_name}", f"apps/{app_name}/fleet.yaml")
        for index, target in enumerate(app.targets):
            if not clusters_for_target(target, inventory.clusters.values()):
                warnings.append(
                    SpecProblem(
                        file=file,
                        field=f"targets[{index}]",
                        message="selects no cluster",
                        severity="warning",
                    )
                )
        for cluster in inventory.clusters.values():
            matched = first_matching_target(app, cluster)
            if matched is None:
                continue
            scale_to_zero = False
            if app.failover:
                runs, scale_to_zero = _failover_role(app, cluster, states, inventory)
                if not runs:
                    continue
            placements[cluster.name].append(
                Placement(
                    app=app.name,
                    cluster=cluster.name,
                    target=matched,
                    values=placement_values(app, cluster, matched),
                    scale_to_zero=scale_to_zero,
                )
            )

    for cluster_name, cluster_placements in placements.items():
        present = {p.app for p in cluster_placements}
        for placement in cluster_placements:
            for dep in inventory.apps[placement.app].dependsOn:
                if dep not in present:
                    problems.append(
                        SpecProblem(
                            file=inventory.files.get(f"apps/{placement.app}", ""),
                            field="dependsOn",
                            message=f"depends on {dep!r}, which does not target cluster {cluster_name!r}",
                        )
                    )

    epochs = {name: 0 for name in inventory.clusters}
    for state in states.values():
        for member in inventory.failover_groups().get(state.group, []):
            epochs[member.name] = state.epoch
    return FleetPlan(
        placements={k: tuple(v) for k, v in placements.items()},
        epochs=epochs,
        warnings=tuple(warnings),
        problems=tuple(problems),
    )
