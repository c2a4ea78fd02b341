"""A per-cluster access cache that refreshes before credentials expire.

The hub asks from several scheduler threads at once; one lock per cluster
makes concurrent callers share a single refresh instead of stampeding the
provider API, while different clusters refresh in parallel.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import datetime

from fleet.providers.base import Clock, ClusterAccess


@dataclass(frozen=True)
class _Entry:
    version: Hashable
    access: ClusterAccess
    refresh_at: datetime


class AccessCache:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def get(
        self,
        cluster: str,
        version: Hashable,
        fetch: Callable[[], tuple[ClusterAccess, datetime]],
    ) -> ClusterAccess:
        """The cached access for `cluster`, fetched anew when due or when `version` changed.

        `version` identifies the spec the access was made for: a cluster whose
        provider coordinates changed in Git must not keep the old credential.
        `fetch` returns the access and the moment it should be refreshed.
        """
        entry = self._fresh(cluster, version)
        if entry is not None:
            return entry.access
        with self._lock_for(cluster):
            entry = self._fresh(cluster, version)
            if entry is not None:
                return entry.access
            access, refresh_at = fetch()
            with self._guard:
                self._entries[cluster] = _Entry(version, access, refresh_at)
            return access

    def invalidate(self, cluster: str) -> None:
        """Forget a cluster's access, e.g. after the API answered 401."""
        with self._guard:
            self._entries.pop(cluster, None)

    def _fresh(self, cluster: str, version: Hashable) -> _Entry | None:
        with self._guard:
            entry = self._entries.get(cluster)
        if entry is None or entry.version != version or self._clock() >= entry.refresh_at:
            return None
        return entry

    def _lock_for(self, cluster: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(cluster, threading.Lock())
