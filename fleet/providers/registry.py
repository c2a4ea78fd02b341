"""One entry point for the hub: dispatch a cluster spec to its provider.

The registry owns one provider per kind, and through them the per-cluster
access caches. Safe to call from several scheduler threads.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

from fleet.inventory.models import AwsProvider, ClusterSpec, GcpProvider, KubeconfigProvider
from fleet.providers.aws import EksProvider
from fleet.providers.base import Clock, ClusterAccess, ClusterIdentity, ProviderConfig, utc_now
from fleet.providers.gcp import GkeProvider
from fleet.providers.kubeconfig import KubeconfigFileProvider


class ProviderRegistry:
    def __init__(
        self,
        config: ProviderConfig,
        *,
        clock: Clock = utc_now,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.config = config
        self._clock = clock
        self._environ = environ
        self._lock = threading.Lock()
        self._eks: EksProvider | None = None
        self._gke: GkeProvider | None = None
        self._kubeconfig: KubeconfigFileProvider | None = None

    def access(self, spec: ClusterSpec) -> ClusterAccess:
        """Endpoint, CA and a short-lived credential, cached and refreshed before expiry."""
        return self.provider_for(spec).access(spec)

    def identity(self, spec: ClusterSpec) -> ClusterIdentity:
        """Describe the cluster through its provider (never cached: registration wants the truth)."""
        return self.provider_for(spec).identity(spec)

    def invalidate(self, spec: ClusterSpec) -> None:
        """Drop a cluster's cached access, e.g. after its API answered 401."""
        self.provider_for(spec).invalidate(spec.name)

    def provider_for(self, spec: ClusterSpec) -> EksProvider | GkeProvider | KubeconfigFileProvider:
        # Providers are built on first use so a hub without AWS or Google clusters never loads their SDKs' state.
        with self._lock:
            if isinstance(spec.provider, AwsProvider):
                if self._eks is None:
                    self._eks = EksProvider(self.config, self._clock)
                return self._eks
            if isinstance(spec.provider, GcpProvider):
                if self._gke is None:
                    self._gke = GkeProvider(self.config, self._clock)
                return self._gke
            if isinstance(spec.provider, KubeconfigProvider):
                if self._kubeconfig is None:
                    self._kubeconfig = KubeconfigFileProvider(self.config, self._clock, self._environ)
                return self._kubeconfig
        raise TypeError(f"cluster {spec.name!r} has an unknown provider type {type(spec.provider).__name__}")
