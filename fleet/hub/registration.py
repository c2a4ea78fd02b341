"""Cluster registration: record what Git declares, learn each cluster's identity through its provider.

A cluster that fails to register keeps its record (state "error") and its last
desired state; nothing is ever deleted from a cluster by registration.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

from fleet.inventory.loader import Inventory
from fleet.inventory.models import ClusterSpec
from fleet.providers import ClusterIdentity, ProviderError, ProviderRegistry, identity_changes
from fleet.store.models import ClusterRecord
from fleet.store.store import Store

log = logging.getLogger("fleet.hub.registration")

MAX_PARALLEL_REGISTRATIONS = 8


def stored_identity(record: ClusterRecord | None) -> ClusterIdentity | None:
    if record is None or record.state != "registered" or record.endpoint is None:
        return None
    return ClusterIdentity(
        provider_id=record.provider_id or "",
        endpoint=record.endpoint,
        ca_fingerprint=record.ca_fingerprint,
        kubernetes_version=record.kubernetes_version,
    )


class Registrar:
    def __init__(self, store: Store, providers: ProviderRegistry) -> None:
        self.store = store
        self.providers = providers

    def sync(self, inventory: Inventory, *, commit: str | None = None, author: str | None = None) -> None:
        """Make the store's cluster list match the revision, registering new and changed clusters."""
        settings = inventory.settings.kubeconfig
        self.providers.config.allow_exec = settings.allowExec
        self.providers.config.allow_auth_provider = settings.allowAuthProvider
        existing = {record.name: record for record in self.store.clusters()}
        to_register: list[ClusterSpec] = []
        for spec in inventory.clusters.values():
            spec_doc = spec.model_dump(mode="json")
            previous = existing.get(spec.name)
            _, created = self.store.upsert_cluster_spec(
                spec.name, spec.provider.type, spec.region, dict(spec.labels), spec_doc
            )
            if created or (previous is not None and previous.state == "removed"):
                self.store.add_event(
                    "cluster.added", f"cluster {spec.name} ({spec.provider.type}) added", cluster=spec.name,
                    commit=commit, author=author,
                )
            if created or previous is None or previous.spec != spec_doc or previous.state != "registered":
                to_register.append(spec)
        for name, record in existing.items():
            if name not in inventory.clusters and record.state != "removed":
                self.store.mark_removed(name)
                self.store.add_event(
                    "cluster.removed",
                    f"cluster {name} removed from Git; its agent keeps its last state and nothing is deleted from it",
                    severity="warning",
                    cluster=name,
                    commit=commit,
                    author=author,
                )
        self.register_many(to_register)

    def register_many(self, specs: Iterable[ClusterSpec]) -> None:
        specs = list(specs)
        if not specs:
            return
        with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL_REGISTRATIONS, len(specs))) as pool:
            list(pool.map(self.register, specs))

    def register(self, spec: ClusterSpec) -> None:
        record = self.store.cluster(spec.name)
        try:
            identity = self.providers.identity(spec)
        except ProviderError as exc:
            message = str(exc)
            if record is None or record.state_message != message:
                self.store.add_event(
                    "cluster.registration-failed", message, severity="error", cluster=spec.name
                )
            self.store.set_registration(spec.name, state="error", message=message)
            return
        except Exception as exc:  # a provider SDK failing in an unexpected way must not stop the others
            log.exception("registering %s failed", spec.name)
            self.store.set_registration(spec.name, state="error", message=f"unexpected error: {type(exc).__name__}")
            return
        old = stored_identity(record)
        changes = identity_changes(old, identity)
        if old is None:
            self.store.add_event(
                "cluster.registered",
                f"cluster {spec.name} registered: {identity.endpoint} (Kubernetes {identity.kubernetes_version or '?'})",
                cluster=spec.name,
            )
        elif changes:
            self.store.add_event(
                "cluster.identity-changed",
                f"cluster {spec.name}: " + "; ".join(changes),
                severity="warning",
                cluster=spec.name,
            )
        self.store.set_registration(
            spec.name,
            state="registered",
            provider_id=identity.provider_id,
            endpoint=identity.endpoint,
            ca_fingerprint=identity.ca_fingerprint,
            kubernetes_version=identity.kubernetes_version,
        )

    def refresh(self, inventory: Inventory) -> None:
        """Scheduled: re-describe every cluster so endpoint, CA or version changes are noticed."""
        self.register_many(inventory.clusters.values())
