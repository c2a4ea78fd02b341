"""The hub: wires source, reconciler, store, secrets and providers, and answers the API.

The API modules stay thin; every decision the hub makes lives here or in the
pure modules it calls.
"""

from __future__ import annotations

import logging
import secrets as token_generator
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from fleet.hub import datadir
from fleet.hub.reconciler import Reconciler, SigningOverride
from fleet.hub.registration import Registrar
from fleet.hub.secrets import HubSecrets, needs_vault
from fleet.hub.views import (
    ClusterDetail,
    ClusterRow,
    EventRow,
    FailoverGroupRow,
    FleetStatus,
    SourceRow,
    cluster_row,
    event_row,
    object_rows,
    sort_rows,
    summarize,
)
from fleet.protocol import (
    AppPolicy,
    BootstrapRequest,
    BootstrapResponse,
    DesiredState,
    PrunePolicy,
    SealedSecrets,
    StatusReport,
)
from fleet.providers import ProviderConfig, ProviderRegistry
from fleet.secrets.digest import load_or_create_hub_key
from fleet.secrets.errors import SecretError
from fleet.secrets.resolver import SecretSource, secret_sources
from fleet.secrets.sops import SopsKeys
from fleet.source.git import GitSource
from fleet.store.db import sqlite_url
from fleet.store.models import ObjectStatusRecord, utcnow
from fleet.store.store import Store

log = logging.getLogger("fleet.hub")

DEFAULT_TOKEN_TTL = timedelta(hours=1)


@dataclass
class HubConfig:
    repo: str
    data_dir: Path
    branch: str = "main"
    database_url: str | None = None
    listen: str = "127.0.0.1:8700"
    kubeconfig: Path | None = None
    dispatch: Literal["none", "local"] = "none"
    signing_mode: str | None = None
    trusted_keys: tuple[str, ...] = ()
    gnupghome: Path | None = None
    fetch_timeout: float = 60.0
    max_fetch_bytes: int = 512 * 1024 * 1024
    https_token: str | None = field(default=None, repr=False)
    ssh_key_file: Path | None = None
    max_body_bytes: int = 8 * 1024 * 1024
    public_url: str | None = None  # how agents reach the hub; default http(s)://<listen>
    tls_cert: Path | None = None
    tls_key: Path | None = None

    @property
    def url(self) -> str:
        scheme = "https" if self.tls_cert else "http"
        return self.public_url or f"{scheme}://{self.listen}"


class HubError(Exception):
    """An API-level failure with an HTTP status."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        self.status = status
        self.message = message
        self.headers = headers or {}
        super().__init__(message)


@dataclass(frozen=True)
class DesiredAnswer:
    not_modified: bool
    etag: str
    state: DesiredState | None = None


class Hub:
    def __init__(self, config: HubConfig) -> None:
        self.config = config
        self.data_dir = datadir.ensure_data_dir(config.data_dir)
        self.admin_token = datadir.admin_token(self.data_dir)
        self.webhook_secret = datadir.webhook_secret(self.data_dir)
        self.hub_key = load_or_create_hub_key(self.data_dir / datadir.HUB_KEY_FILE)
        self.store = Store.open(config.database_url or sqlite_url(self.data_dir))
        self.source = GitSource(
            config.repo,
            config.branch,
            self.data_dir / "cache",
            timeout=config.fetch_timeout,
            max_bytes=config.max_fetch_bytes,
            https_token=config.https_token,
            ssh_key_file=config.ssh_key_file,
        )
        self.providers = ProviderRegistry(ProviderConfig.from_env(default_kubeconfig=config.kubeconfig))
        self.registrar = Registrar(self.store, self.providers)
        self.secrets = HubSecrets(SopsKeys.from_env(), self.hub_key)
        override = (
            SigningOverride(config.signing_mode, tuple(config.trusted_keys)) if config.signing_mode is not None else None
        )
        self.reconciler = Reconciler(
            self.store,
            self.source,
            self.data_dir / "checkouts",
            self.registrar,
            self.secrets,
            gnupghome=config.gnupghome,
            signing_override=override,
        )
        self.store.update_source_state(url=self.source.url, branch=config.branch)
        self.failover: Any = None  # the FailoverController, attached by the daemon
        self.rotation: Any = None  # the SecretsController, attached by the daemon
        self.dispatcher: Any = None  # the local Dispatcher, when the hub runs agents itself
        self.is_leader: Callable[[], bool] = lambda: True  # replaced by the daemon's leadership
        self._seal_errors: dict[str, str] = {}  # last sealing error per cluster, to report each once
        self.started_at = utcnow()

    def require_leader(self) -> None:
        """Changes that run jobs (sync, failover, rotation, recovery) happen on the leading replica only."""
        if not self.is_leader():
            raise HubError(
                503, "this hub replica is not the leader; send the request to the leader", {"Retry-After": "2"}
            )

    def close(self) -> None:
        self.store.close()

    # ------------------------------------------------------------ settings in force

    @property
    def poll_interval(self) -> int:
        return self.reconciler.settings.pollInterval

    @property
    def agent_poll_interval(self) -> int:
        return self.reconciler.settings.agent.pollInterval

    @property
    def unreachable_after(self) -> float:
        agent = self.reconciler.settings.agent
        return float(agent.pollInterval * agent.heartbeatTimeoutIntervals)

    # ------------------------------------------------------------ agents

    def issue_bootstrap_token(self, cluster: str, ttl: timedelta = DEFAULT_TOKEN_TTL) -> tuple[str, datetime]:
        record = self.store.cluster(cluster)
        if record is None or record.state == "removed":
            raise HubError(404, f"cluster {cluster!r} is not in the inventory")
        token = "fbt-" + token_generator.token_urlsafe(32)
        expires = self.store.add_bootstrap_token(cluster, token, ttl)
        self.store.add_event(
            "agent.token-issued", f"bootstrap token for {cluster} issued (expires {expires:%Y-%m-%d %H:%M:%SZ})",
            cluster=cluster,
        )
        return token, expires

    def bootstrap(self, cluster: str, request: BootstrapRequest) -> BootstrapResponse:
        record = self.store.cluster(cluster)
        if record is None or record.state == "removed":
            raise HubError(404, f"cluster {cluster!r} is not in the inventory")
        if not self.store.consume_bootstrap_token(cluster, request.token):
            raise HubError(401, "bootstrap token is invalid, expired or already used")
        credential = f"fac-{cluster}-" + token_generator.token_urlsafe(32)
        self.store.set_agent_credential(cluster, credential, request.publicKey, request.agentVersion)
        self.store.add_event("agent.bootstrapped", f"agent for {cluster} bootstrapped", cluster=cluster)
        return BootstrapResponse(cluster=cluster, credential=credential)

    def install_agent(self, cluster: str, hub_url: str | None, image: str | None) -> list[str]:
        """Apply the in-cluster agent once, with the provider's credentials and a fresh bootstrap token."""
        from fleet.hub.install import DEFAULT_IMAGE, InstallError, apply_manifests, render_agent_manifests
        from fleet.providers import ProviderError

        current = self.reconciler.current
        spec = current.inventory.clusters.get(cluster) if current else None
        if spec is None:
            raise HubError(404, f"cluster {cluster!r} is not in the revision in force")
        token, _ = self.issue_bootstrap_token(cluster)
        objects = render_agent_manifests(cluster, hub_url or self.config.url, token, image or DEFAULT_IMAGE)
        try:
            applied = apply_manifests(self.providers.access(spec), objects)
        except (ProviderError, InstallError) as exc:
            self.store.add_event("agent.install-failed", str(exc), severity="error", cluster=cluster)
            raise HubError(502, str(exc)) from None
        self.store.add_event("agent.installed", f"agent installed in {cluster} ({len(applied)} objects)", cluster=cluster)
        return applied

    def recover(self, cluster: str, hub_url: str | None = None, image: str | None = None) -> tuple[str, list[str]]:
        """Rebuild a cluster that lost everything from Git: a fresh agent with a fresh credential
        receives the full desired state (secrets included) and applies it."""
        record = self.store.cluster(cluster)
        if record is None or record.state == "removed":
            raise HubError(404, f"cluster {cluster!r} is not in the inventory")
        self.store.revoke_agent_credential(cluster)
        self.store.add_event(
            "cluster.recover", f"recovering {cluster} from Git: agent credential revoked, agent re-bootstrapped",
            severity="warning", cluster=cluster,
        )
        if self.dispatcher is not None and self.dispatcher.manages(cluster):
            self.dispatcher.reset(cluster)
            return "local-dispatch", []
        return "install", self.install_agent(cluster, hub_url, image)

    def authenticate_agent(self, cluster: str, credential: str | None) -> None:
        if not credential:
            raise HubError(401, "missing agent credential", {"WWW-Authenticate": "Bearer"})
        owner = self.store.cluster_for_credential(credential)
        if owner is None:
            raise HubError(401, "unknown agent credential", {"WWW-Authenticate": "Bearer"})
        if owner != cluster:
            raise HubError(403, f"this credential belongs to another cluster, not {cluster!r}")

    def desired(self, cluster: str, if_none_match: str | None) -> DesiredAnswer:
        self.store.heartbeat(cluster)
        record = self.store.desired(cluster)
        if record is None:
            raise HubError(404, f"no desired state for {cluster!r} yet", {"Retry-After": "5"})
        etag = f'"{record.digest}"'
        if if_none_match is not None and etag in {tag.strip() for tag in if_none_match.split(",")}:
            return DesiredAnswer(not_modified=True, etag=etag)
        bundle = record.bundle
        objects = bundle.get("objects", [])
        sealed: SealedSecrets | None = None
        versions = dict(bundle.get("secretVersions", {}))
        sources = secret_sources(objects)
        if sources:
            sealed, used = self._seal(cluster, sources)
            versions.update(used)  # exactly the versions sealed, so rollout status is exact
        state = DesiredState(
            cluster=cluster,
            revision=record.revision,
            digest=record.digest,
            epoch=record.epoch,
            generatedAt=record.generated_at or utcnow(),
            objects=objects,
            apps=[AppPolicy.model_validate(a) for a in bundle.get("apps", [])],
            prune=PrunePolicy.model_validate(bundle.get("prune", {})),
            pollInterval=int(bundle.get("pollInterval", 15)),
            driftInterval=int(bundle.get("driftInterval", 30)),
            secrets=sealed,
            secretVersions=versions,
        )
        return DesiredAnswer(not_modified=False, etag=etag, state=state)

    def _seal(self, cluster: str, sources: list[SecretSource]) -> tuple[SealedSecrets, dict[str, str]]:
        record = self.store.cluster(cluster)
        if record is None or not record.agent_public_key:
            raise HubError(409, "the agent has no registered public key; bootstrap it again")
        current = self.reconciler.current
        if current is None:
            raise HubError(503, "the hub has not loaded a revision yet", {"Retry-After": "10"})
        resolver = self.secrets.resolver(current.inventory, needs_vault(sources))
        try:
            sealed = resolver.seal_with_versions(cluster, sources, record.agent_public_key)
        except SecretError as exc:
            # The agent keeps its last good state; the error names the source, never a value.
            message = f"secrets for {cluster} could not be resolved: {exc}"
            if self._seal_errors.get(cluster) != message:
                self._seal_errors[cluster] = message
                self.store.add_event("secrets.unavailable", message, severity="error", cluster=cluster)
            raise HubError(503, message, {"Retry-After": "15"}) from None
        if self._seal_errors.pop(cluster, None) is not None:
            self.store.add_event("secrets.available", f"secrets for {cluster} resolve again", cluster=cluster)
        return sealed

    def report_status(self, cluster: str, report: StatusReport) -> None:
        before = self.store.cluster(cluster)
        objects = [
            ObjectStatusRecord(
                cluster=cluster, key=o.key, app=o.app, health=o.health, message=o.message, drifted=o.drifted
            )
            for o in report.objects
        ]
        record = self.store.record_status(
            cluster,
            agent_version=report.agentVersion,
            applied_revision=report.appliedRevision,
            applied_digest=report.appliedDigest,
            phase=report.phase,
            cluster_health=report.clusterHealth.status,
            cluster_health_detail=report.clusterHealth.model_dump(mode="json"),
            objects=objects,
            errors=report.errors,
            secret_versions=report.secretVersions,
        )
        if record is None:
            raise HubError(404, f"cluster {cluster!r} is not in the inventory")
        for drift in report.drift:
            fields = ", ".join(drift.fields[:5]) + ("..." if len(drift.fields) > 5 else "")
            action = "reverted" if drift.reverted else "not reverted (self-heal off)"
            self.store.add_event(
                "drift", f"{drift.key} drifted from Git ({fields}); {action}", severity="warning", cluster=cluster
            )
        for key in report.pruned:
            self.store.add_event("pruned", f"{key} pruned: no longer in Git", cluster=cluster)
        if record.last_error and (before is None or before.last_error != record.last_error):
            self.store.add_event("agent.error", record.last_error, severity="error", cluster=cluster)
        if before is not None and before.cluster_health != record.cluster_health:
            severity = "info" if record.cluster_health == "Healthy" else "warning"
            self.store.add_event(
                "cluster.health",
                f"cluster health {before.cluster_health} -> {record.cluster_health}"
                + (f": {report.clusterHealth.message}" if report.clusterHealth.message else ""),
                severity=severity,
                cluster=cluster,
            )
        if self.failover is not None and report.epoch:
            self.failover.adopt_reported_epoch(cluster, report.epoch)
        if before is not None and report.phase == "Fenced" and before.phase != "Fenced":
            self.store.add_event(
                "agent.fenced", "agent ignored a desired state from a stale failover epoch", severity="warning",
                cluster=cluster,
            )

    # ------------------------------------------------------------ views

    def cluster_rows(self) -> list[ClusterRow]:
        now = utcnow()
        desired = self.store.desired_digests()
        groups = self.store.failover_groups()
        active = {name: g.active for name, g in groups.items()}
        epochs = {name: g.epoch for name, g in groups.items()}
        rows = []
        for record in self.store.clusters():
            group = ((record.spec or {}).get("failover") or {}).get("group")
            rows.append(
                cluster_row(
                    record,
                    desired.get(record.name),
                    now,
                    self.unreachable_after,
                    active,
                    epochs.get(group or "", 0),
                    watching_since=self.started_at,
                )
            )
        return sort_rows(rows)

    def fleet_status(self) -> FleetStatus:
        rows = self.cluster_rows()
        return FleetStatus(
            source=self.source_row(), clusters=rows, summary=summarize(rows), failover=self.failover_rows()
        )

    def cluster_detail(self, name: str, events: int = 20) -> ClusterDetail:
        rows = {r.name: r for r in self.cluster_rows()}
        if name not in rows:
            raise HubError(404, f"cluster {name!r} is not known")
        return ClusterDetail(
            cluster=rows[name],
            objects=object_rows(self.store.object_statuses(name)),
            events=[event_row(e) for e in self.store.events(limit=events, cluster=name)],
        )

    def source_row(self) -> SourceRow:
        state = self.store.source_state()
        return SourceRow(
            url=state.url,
            branch=state.branch,
            currentRevision=state.current_sha,
            remoteRevision=state.remote_sha,
            heldRevision=state.held_sha,
            heldReason=state.held_reason,
            lastFetchAt=state.last_fetch_at,
            lastError=state.last_error,
            pollInterval=self.poll_interval,
        )

    def failover_rows(self) -> list[FailoverGroupRow]:
        current = self.reconciler.current
        if current is None:
            return []
        stored = self.store.failover_groups()
        rows = []
        for group, members in sorted(current.inventory.failover_groups().items()):
            settings = current.inventory.settings.failover.groups.get(group)
            record = stored.get(group)
            primary = next((m.name for m in members if m.failover and m.failover.role == "primary"), members[0].name)
            rows.append(
                FailoverGroupRow(
                    name=group,
                    active=record.active if record else primary,
                    epoch=record.epoch if record else 0,
                    reason=record.reason if record else "initial",
                    movedAt=record.moved_at if record else None,
                    members=sorted(m.name for m in members),
                    policy=settings.policy if settings else "manual",
                    mode=settings.mode if settings else "cold",
                    dnsValue=record.dns_value if record else None,
                )
            )
        return rows

    def events(self, limit: int, cluster: str | None, after: int | None) -> list[EventRow]:
        return [event_row(e) for e in self.store.events(limit=limit, cluster=cluster, after_id=after)]
