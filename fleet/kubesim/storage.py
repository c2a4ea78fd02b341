"""Per-cluster object store: objects, the resourceVersion counter and watch fan-out.

Everything runs on the simulator's event loop thread, so no locks: each request's
read-modify-write happens without awaiting. Stored objects are never mutated in place;
a write stores a new dict, so readers and watch history can share them safely.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

ObjectKey = tuple[str, str]  # (namespace, name); namespace "" for cluster-scoped objects


@dataclass(frozen=True)
class WatchEvent:
    type: str  # ADDED | MODIFIED | DELETED
    storage_key: str
    obj: dict[str, Any]
    old: dict[str, Any] | None
    rv: int


@dataclass(eq=False)
class Watcher:
    storage_key: str
    namespace: str | None
    queue: asyncio.Queue[WatchEvent | None] = field(default_factory=asyncio.Queue)

    def wants(self, event: WatchEvent) -> bool:
        if event.storage_key != self.storage_key:
            return False
        if self.namespace is None:
            return True
        return (event.obj.get("metadata") or {}).get("namespace", "") == self.namespace


class ExpiredError(Exception):
    """The requested resourceVersion is older than the kept watch history."""

    def __init__(self, requested: int, oldest: int) -> None:
        super().__init__(f"too old resource version: {requested} ({oldest})")


class Store:
    def __init__(self, history: int = 1000, first_rv: int = 1) -> None:
        self.rv = first_rv
        self._objects: dict[str, dict[ObjectKey, dict[str, Any]]] = {}
        self._history: deque[WatchEvent] = deque()
        self._history_limit = history
        self._compacted_rv = first_rv  # watches from before this rv get 410 Gone
        self._watchers: set[Watcher] = set()

    # reads ----------------------------------------------------------------
    def get(self, storage_key: str, namespace: str, name: str) -> dict[str, Any] | None:
        bucket = self._objects.get(storage_key)
        return bucket.get((namespace, name)) if bucket else None

    def list_objects(self, storage_key: str, namespace: str | None = None) -> list[dict[str, Any]]:
        """Objects in key order (namespace, then name), like etcd returns them."""
        bucket = self._objects.get(storage_key)
        if not bucket:
            return []
        keys = sorted(bucket) if namespace is None else sorted(k for k in bucket if k[0] == namespace)
        return [bucket[k] for k in keys]

    def items(self, storage_key: str) -> Iterator[tuple[ObjectKey, dict[str, Any]]]:
        return iter(list((self._objects.get(storage_key) or {}).items()))

    def storage_keys(self) -> list[str]:
        return [key for key, bucket in self._objects.items() if bucket]

    def count(self) -> int:
        return sum(len(bucket) for bucket in self._objects.values())

    # writes ---------------------------------------------------------------
    def next_rv(self) -> int:
        self.rv += 1
        return self.rv

    def put(self, storage_key: str, obj: dict[str, Any], old: dict[str, Any] | None) -> dict[str, Any]:
        """Store `obj` with a new resourceVersion and notify watchers."""
        metadata = obj["metadata"]
        rv = self.next_rv()
        metadata["resourceVersion"] = str(rv)
        key = (metadata.get("namespace", ""), metadata["name"])
        self._objects.setdefault(storage_key, {})[key] = obj
        self._emit(WatchEvent("ADDED" if old is None else "MODIFIED", storage_key, obj, old, rv))
        return obj

    def remove(self, storage_key: str, obj: dict[str, Any]) -> dict[str, Any]:
        """Delete `obj`; the DELETED event carries a fresh resourceVersion like a real server."""
        metadata = obj["metadata"]
        key = (metadata.get("namespace", ""), metadata["name"])
        bucket = self._objects.get(storage_key) or {}
        old = bucket.pop(key, None)
        rv = self.next_rv()
        final = {**obj, "metadata": {**metadata, "resourceVersion": str(rv)}}
        self._emit(WatchEvent("DELETED", storage_key, final, old, rv))
        return final

    def drop_storage(self, storage_key: str) -> list[dict[str, Any]]:
        """Remove every object of one type (a deleted CRD's resources), with DELETED events."""
        removed = [self.remove(storage_key, obj) for _, obj in self.items(storage_key)]
        self._objects.pop(storage_key, None)
        return removed

    def clear(self) -> None:
        """Forget everything (a rebuilt cluster). Watches end; resourceVersions keep counting up."""
        self._objects.clear()
        self._history.clear()
        self._compacted_rv = self.rv
        for watcher in list(self._watchers):
            watcher.queue.put_nowait(None)
        self._watchers.clear()

    # watch ----------------------------------------------------------------
    def _emit(self, event: WatchEvent) -> None:
        if self._history_limit:
            if len(self._history) >= self._history_limit:
                dropped = self._history.popleft()
                self._compacted_rv = dropped.rv
            self._history.append(event)
        else:
            self._compacted_rv = event.rv
        for watcher in self._watchers:
            if watcher.wants(event):
                watcher.queue.put_nowait(event)

    def subscribe(self, watcher: Watcher, since_rv: int | None) -> list[WatchEvent]:
        """Register `watcher`; returns the past events after `since_rv` it must see first."""
        backlog: list[WatchEvent] = []
        if since_rv is not None:
            if since_rv < self._compacted_rv:
                raise ExpiredError(since_rv, self._compacted_rv + 1)
            backlog = [e for e in self._history if e.rv > since_rv and watcher.wants(e)]
        self._watchers.add(watcher)
        return backlog

    def unsubscribe(self, watcher: Watcher) -> None:
        self._watchers.discard(watcher)

    def close_watchers(self) -> None:
        for watcher in list(self._watchers):
            watcher.queue.put_nowait(None)
        self._watchers.clear()
