"""Prune planning: which previously applied objects to delete. Pure.

An object is pruned only when every one of these holds: the agent applied it
before (it is in the persisted inventory), it is no longer desired, it still
carries fleet's ownership labels for this cluster, its app allows pruning, and
it is not part of the agent's own state. The whole prune is refused when the
cycle's apply failed, when the desired state came from an error, or when it
would delete more than the allowed share of the cluster's owned objects
(unless forced). Deletion order is the apply order reversed.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from fleet.agent.ordering import delete_order
from fleet.protocol import LABEL_APP, LABEL_CLUSTER, LABEL_MANAGED_BY, MANAGED_BY_VALUE


@dataclass(frozen=True)
class PrunePlan:
    delete: list[str] = field(default_factory=list)
    refused: str | None = None
    # keys fleet no longer desires but keeps on purpose (prune: false, not owned, protected)
    kept: list[str] = field(default_factory=list)


def is_owned(obj: Mapping[str, Any], cluster: str) -> bool:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return labels.get(LABEL_MANAGED_BY) == MANAGED_BY_VALUE and labels.get(LABEL_CLUSTER) == cluster


def plan_prune(
    previous_inventory: Collection[str],
    desired: Collection[str],
    live_owned: Mapping[str, Mapping[str, Any]],
    *,
    cluster: str,
    max_delete_share: float,
    force: bool,
    apply_succeeded: bool = True,
    desired_from_error: bool = False,
    no_prune_apps: Collection[str] = (),
    protected: Collection[str] = (),
) -> PrunePlan:
    """Plan a prune.

    `previous_inventory` is what the agent applied before, `desired` the keys
    of the state just applied, `live_owned` the cluster's objects carrying
    fleet's labels for this cluster, keyed by `object_key`.
    """
    if not apply_succeeded:
        return PrunePlan(refused="the apply failed; nothing is pruned after a failed apply")
    if desired_from_error:
        return PrunePlan(refused="the desired state is not trustworthy (hub error); nothing is pruned")
    candidates: list[str] = []
    kept: list[str] = []
    desired_set = set(desired)
    for key in previous_inventory:
        if key in desired_set:
            continue
        live = live_owned.get(key)
        if live is None:
            continue  # already gone
        labels = (live.get("metadata") or {}).get("labels") or {}
        if key in protected or not is_owned(live, cluster) or labels.get(LABEL_APP) in no_prune_apps:
            kept.append(key)
            continue
        candidates.append(key)
    if not candidates:
        return PrunePlan(kept=sorted(kept))
    owned_total = max(len(live_owned), 1)
    share = len(candidates) / owned_total
    if share > max_delete_share and not force:
        return PrunePlan(
            refused=(
                f"prune would delete {len(candidates)} of {len(live_owned)} owned objects "
                f"({share:.0%} > {max_delete_share:.0%}); rerun with --allow-mass-prune to allow it"
            ),
            kept=sorted(kept),
        )
    return PrunePlan(delete=delete_order(candidates), kept=sorted(kept))
