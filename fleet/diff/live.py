"""Head against what the hub holds: its stored desired bundle per cluster and whether the agent applied it.

Pure: the CLI fetches the hub's answers and hands them in.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fleet.diff.bundles import BundleLike, ClusterDiff, diff_cluster
from fleet.protocol import ANNOTATION_SECRET_DIGEST, ANNOTATION_SECRETS_CHECKSUM
from fleet.render.bundle import Bundle

# Stamped by the hub when it stores a bundle (keyed digests of secret values); a local render has none.
HUB_ANNOTATIONS = frozenset({ANNOTATION_SECRET_DIGEST, ANNOTATION_SECRETS_CHECKSUM})


@dataclass(frozen=True)
class HubState:
    """What the hub holds for one cluster."""

    cluster: str
    revision: str | None = None
    digest: str | None = None
    applied_digest: str | None = None
    objects: tuple[dict[str, Any], ...] | None = None  # None: no desired state stored yet


@dataclass(frozen=True)
class LiveCluster:
    cluster: str
    known: bool  # the hub has a desired state for it
    revision: str | None
    in_sync: bool  # its agent has applied the hub's desired digest
    diff: ClusterDiff  # from the hub's desired state to head

    @property
    def state(self) -> str:
        if not self.known:
            return "not on the hub yet"
        return "in sync" if self.in_sync else "out of sync"

    def to_dict(self) -> dict[str, Any]:
        return {
            "cluster": self.cluster,
            "known": self.known,
            "hubRevision": self.revision,
            "inSync": self.in_sync,
            "state": self.state,
            "diff": self.diff.to_dict(),
        }


def _strip(node: Any) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "annotations" and isinstance(value, dict):
                kept = {k: v for k, v in value.items() if k not in HUB_ANNOTATIONS}
                if kept or not value:
                    out[key] = kept
                continue  # emptied by stripping: as the renderer left it (no annotations)
            out[key] = _strip(value)
        return out
    if isinstance(node, list):
        return [_strip(item) for item in node]
    return node


def strip_hub_annotations(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The object without the annotations only the hub adds, for comparison with a local render."""
    stripped: dict[str, Any] = _strip(copy.deepcopy(dict(obj)))
    return stripped


def _objects(bundle: BundleLike) -> Sequence[Mapping[str, Any]]:
    return bundle.objects if isinstance(bundle, Bundle) else bundle


def compare_live(head: Mapping[str, BundleLike], hub: Mapping[str, HubState]) -> tuple[LiveCluster, ...]:
    """Per cluster of head or hub: what merging head would change relative to the hub's desired state."""
    result = []
    for name in sorted({*head, *hub}):
        state = hub.get(name)
        known = state is not None and state.objects is not None
        hub_objects = [strip_hub_annotations(o) for o in state.objects] if state and state.objects is not None else None
        head_objects = [strip_hub_annotations(o) for o in _objects(head[name])] if name in head else None
        result.append(
            LiveCluster(
                cluster=name,
                known=known,
                revision=state.revision if state else None,
                in_sync=bool(state and state.digest and state.applied_digest == state.digest),
                diff=diff_cluster(name, hub_objects, head_objects),
            )
        )
    return tuple(result)
