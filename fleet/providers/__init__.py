"""Reaching clusters: EKS (boto3), GKE (google-auth + GKE REST) and plain kubeconfig.

Credentials live in memory only (`ClusterAccess`); what may be stored is the
cluster's `ClusterIdentity`.
"""

from fleet.providers.base import (
    ClusterAccess,
    ClusterIdentity,
    Provider,
    ProviderConfig,
    ProviderError,
    ca_fingerprint,
    identity_changes,
)
from fleet.providers.registry import ProviderRegistry

__all__ = [
    "ClusterAccess",
    "ClusterIdentity",
    "Provider",
    "ProviderConfig",
    "ProviderError",
    "ProviderRegistry",
    "ca_fingerprint",
    "identity_changes",
]
