"""`fleet plan`'s diff: per-cluster object changes between two renders of the fleet repo.

`diff_bundles` is pure and redacts Secret values as it records them.
"""

from fleet.diff.bundles import (
    ABSENT,
    AppMove,
    ClusterDiff,
    FieldChange,
    ObjectChange,
    PlanDiff,
    diff_bundles,
    diff_cluster,
)
from fleet.diff.live import HubState, LiveCluster, compare_live
from fleet.diff.redact import REDACTED

__all__ = [
    "ABSENT",
    "REDACTED",
    "AppMove",
    "ClusterDiff",
    "FieldChange",
    "HubState",
    "LiveCluster",
    "ObjectChange",
    "PlanDiff",
    "compare_live",
    "diff_bundles",
    "diff_cluster",
]
