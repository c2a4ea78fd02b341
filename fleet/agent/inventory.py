"""What the agent has applied, persisted in-cluster so a restarted agent knows what it owns.

ConfigMap `fleet-system/fleet-inventory-<cluster>`, data `inventory.json`:
{objectKey: apiVersion}. The apiVersion is kept so a removed object can be
found and deleted without the desired state that created it. Written only
when it changes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from fleet.agent.identity import STATE_NAMESPACE, ensure_namespace
from fleet.agent.kube import Kube

_FIELD_MANAGER = "fleet-agent-state"
_DATA_KEY = "inventory.json"


def inventory_configmap_name(cluster: str) -> str:
    return f"fleet-inventory-{cluster}"


class InventoryStore:
    def __init__(self, kube: Kube, cluster: str, namespace: str = STATE_NAMESPACE) -> None:
        self.kube = kube
        self.cluster = cluster
        self.namespace = namespace
        self.name = inventory_configmap_name(cluster)
        self._last_written: dict[str, str] | None = None

    def load(self) -> dict[str, str]:
        configmap = self.kube.get("v1", "ConfigMap", self.namespace, self.name)
        raw = ((configmap or {}).get("data") or {}).get(_DATA_KEY)
        entries = {str(k): str(v) for k, v in json.loads(raw).items()} if raw else {}
        self._last_written = dict(entries) if configmap is not None else None
        return entries

    def save(self, entries: Mapping[str, str]) -> bool:
        """Persist; returns False (and writes nothing) when nothing changed."""
        wanted = dict(sorted(entries.items()))
        if self._last_written == wanted:
            return False
        ensure_namespace(self.kube, self.namespace)
        body: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "labels": {"app.kubernetes.io/name": "fleet-agent", "app.kubernetes.io/component": "inventory"},
            },
            "data": {_DATA_KEY: json.dumps(wanted, indent=0, sort_keys=True)},
        }
        self.kube.apply(body, field_manager=_FIELD_MANAGER)
        self._last_written = wanted
        return True
