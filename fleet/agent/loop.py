"""The agent's reconcile loop.

One cycle (`Agent.run_once`): look at the cluster (nodes), ask the hub for the
desired state (ETag; 304 when unchanged), and when it changed: check the
fencing epoch, open the sealed secrets in memory, apply in waves, prune only
after a fully successful apply, persist the inventory. On its own interval:
check drift and revert it where self-heal is on. Then refresh the health of
what is not yet healthy and report status when it changed (or as heartbeat).

Hub trouble never touches the cluster: the last good state stays and drift
revert keeps working from it. A no-op cycle is one hub request and zero
writes to the cluster.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from fleet.agent.apply import Applier, ApplyResult, with_ownership
from fleet.agent.drift import diff_fields
from fleet.agent.health import Health, cluster_health, object_health
from fleet.agent.hubclient import HubClient, HubError, HubForbidden, HubUnauthorized, HubUnavailable
from fleet.agent.identity import (
    STATE_NAMESPACE,
    AgentState,
    FileStateStore,
    SecretStateStore,
    StateStore,
    identity_secret_name,
    read_token_file,
    token_is_unused,
    write_private_file,
)
from fleet.agent.inventory import InventoryStore, inventory_configmap_name
from fleet.agent.kube import Kube, KubeError, UnknownKind
from fleet.agent.logs import fields
from fleet.agent.ordering import kind_of_key
from fleet.agent.prune import plan_prune
from fleet.protocol import (
    ANNOTATION_SELF_HEAL,
    LABEL_APP,
    ClusterHealth,
    DesiredState,
    DriftEvent,
    ObjectStatus,
    StatusReport,
    object_key,
)
from fleet.secrets.envelope import fill_secret_objects, open_sealed
from fleet.secrets.errors import SecretError
from fleet.secrets.redact import Redactor

log = logging.getLogger(__name__)

try:
    AGENT_VERSION = metadata.version("fleet")
except metadata.PackageNotFoundError:  # running from a source tree
    AGENT_VERSION = "dev"

Phase = Literal["Idle", "Applied", "Progressing", "Failed", "Fenced"]
_NOT_SETTLED = frozenset({"Progressing", "Missing", "Unknown", "Degraded"})
MAX_REPORTED_FIELDS = 100


@dataclass
class AgentConfig:
    cluster: str
    token_file: Path | None = None
    state_dir: Path = Path(".fleet-agent")
    key_store: Literal["file", "secret"] = "file"
    allow_mass_prune: bool = False
    concurrency: int = 8
    heartbeat_every: int = 4
    crd_timeout: float = 30.0
    default_poll_interval: int = 15
    backoff_base: float = 1.0
    max_backoff: float = 300.0


@dataclass
class CycleOutcome:
    """What one cycle did; for callers, tests and logs."""

    fetched: Literal["new", "unchanged", "error", "fenced", "refused", "none"] = "none"
    applied: bool = False
    apply_failed: bool = False
    pruned: list[str] = field(default_factory=list)
    drift: list[DriftEvent] = field(default_factory=list)
    drift_checked: bool = False
    errors: list[str] = field(default_factory=list)
    hub_error: str | None = None
    hub_answered: bool = True
    reported: bool = False
    report: StatusReport | None = None


def _split_key(key: str) -> tuple[str, str, str | None, str]:
    group, kind, namespace, name = key.split("/", 3)
    return group, kind, namespace or None, name


class _CachedDesired(BaseModel):
    """The last accepted desired state in its sealed form: no secret value is ever written."""

    desired: DesiredState
    appliedDigest: str | None = None
    appliedRevision: str | None = None
    prunePending: bool = False


class Agent:
    def __init__(
        self,
        config: AgentConfig,
        kube: Kube,
        hub: HubClient,
        *,
        store: StateStore | None = None,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        redactor: Redactor | None = None,
    ) -> None:
        self.config = config
        self.cluster = config.cluster
        self.kube = kube
        self.hub = hub
        self.clock = clock
        self.now = now
        self.redactor = redactor or Redactor()
        self.store: StateStore = store or (
            SecretStateStore(kube, config.cluster) if config.key_store == "secret" else FileStateStore(config.state_dir)
        )
        self.inventory_store = InventoryStore(kube, config.cluster)
        self.applier = Applier(kube, concurrency=config.concurrency, crd_timeout=config.crd_timeout)
        self.cache_path = config.state_dir / "desired.json"

        self.state: AgentState | None = None
        self.desired: DesiredState | None = None
        self.previous_desired: DesiredState | None = None
        self.applied_digest: str | None = None
        self.applied_revision: str | None = None
        self.needs_apply = False
        # after an apply with object errors, retry on the drift interval rather than every poll
        self.retry_apply_at: float | None = None
        self.prune_pending = False  # the last prune was refused or failed: retried on the drift interval
        self.apply_errors: list[str] = []
        self.inventory: dict[str, str] | None = None
        self.health: dict[str, Health] = {}
        # events go to the hub once: they wait here until a report carrying them is accepted
        self.pending_drift: list[DriftEvent] = []
        self.pending_pruned: list[str] = []
        self.drifted: set[str] = set()
        self.cluster_status = ClusterHealth()
        self.next_drift_at: float | None = None
        self.hub_failures = 0
        self.cycles = 0
        self._cache_loaded = False
        self._fenced = False
        self._last_report: dict[str, Any] | None = None
        self._cycles_since_report = 0

    def close(self) -> None:
        self.applier.close()

    # ------------------------------------------------------------ public

    def run_once(self, *, check_drift: bool | None = None) -> CycleOutcome:
        """One reconcile cycle. `check_drift` forces (True) or skips (False) the drift check."""
        self.cycles += 1
        outcome = CycleOutcome()
        self._load_cache()
        reachable = self._observe_cluster()
        try:
            objects = self._fetch(outcome)
        except (KubeError, OSError) as error:  # persisting the identity (file or Secret) failed
            outcome.errors.append(f"agent state not persisted: {self.redactor.redact(str(error))}")
            outcome.fetched, outcome.hub_answered, objects = "error", False, None
        just_applied = False
        retry_due = self.retry_apply_at is None or self.clock() >= self.retry_apply_at or bool(check_drift)
        if reachable and self.desired is not None and (objects is not None or (self.needs_apply and retry_due)):
            if objects is None:
                objects = self._materialize(self.desired, outcome)
            if objects is not None:
                self._reconcile(objects, outcome)
                just_applied = True
        drift_due = check_drift if check_drift is not None else self._drift_due()
        if reachable and self.desired is not None and not just_applied and drift_due and not self.needs_apply:
            self._check_drift(outcome)
            if self.prune_pending:
                self._prune({object_key(o): str(o.get("apiVersion")) for o in self.desired.objects}, outcome)
                self._save_cache()
        elif reachable and self.desired is not None and not just_applied:
            self._refresh_unsettled(outcome)
        self._report(outcome)
        log.info(
            "cycle",
            extra=fields(
                cycle=self.cycles,
                fetched=outcome.fetched,
                applied=outcome.applied,
                applyFailed=outcome.apply_failed,
                pruned=len(outcome.pruned),
                drift=len(outcome.drift),
                reported=outcome.reported,
                errors=len(outcome.errors),
                cluster=self.cluster_status.status,
            ),
        )
        return outcome

    def run_forever(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.run_once()
            except Exception as error:  # a bug in one cycle must not kill the agent; the next one retries
                log.error("cycle-crashed", extra=fields(error=self.redactor.redact(str(error))[:500]), exc_info=True)
                self.hub_failures += 1
            stop.wait(self.next_delay())

    def next_delay(self) -> float:
        """Seconds to the next cycle: the poll interval with ±10% jitter; after hub errors an
        exponential backoff from 1 s up to four poll intervals; never past the next drift check."""
        poll = float(self.desired.pollInterval if self.desired else self.config.default_poll_interval)
        delay = poll
        if self.hub_failures:
            backoff = self.config.backoff_base * 2 ** min(self.hub_failures - 1, 20)
            delay = min(backoff, poll * 4, self.config.max_backoff)
        delay *= random.uniform(0.9, 1.1)
        if self.desired is not None and self.next_drift_at is not None:
            delay = min(delay, max(self.next_drift_at - self.clock(), 0.5))
        return max(delay, 0.1)

    # ------------------------------------------------------------ local state

    def _load_cache(self) -> None:
        if self._cache_loaded:
            return
        self._cache_loaded = True
        if not self.cache_path.exists():
            return
        try:
            cached = _CachedDesired.model_validate_json(self.cache_path.read_bytes())
        except (OSError, ValidationError) as error:
            log.warning("desired-cache-unreadable", extra=fields(path=str(self.cache_path), error=type(error).__name__))
            return
        if cached.desired.cluster != self.cluster:
            return
        self.desired = cached.desired
        self.applied_digest = cached.appliedDigest
        self.applied_revision = cached.appliedRevision
        self.needs_apply = cached.appliedDigest != cached.desired.digest
        self.prune_pending = cached.prunePending

    def _save_cache(self) -> None:
        if self.desired is None:
            return
        cached = _CachedDesired(
            desired=self.desired,
            appliedDigest=self.applied_digest,
            appliedRevision=self.applied_revision,
            prunePending=self.prune_pending,
        )
        try:
            write_private_file(self.cache_path, cached.model_dump_json())
        except OSError as error:
            log.warning("desired-cache-not-written", extra=fields(path=str(self.cache_path), error=str(error)))

    def _ensure_state(self) -> AgentState:
        if self.state is None:
            state = self.store.load()
            if state is None:
                state = AgentState.new()
                self.store.save(state)
                log.info("identity-created", extra=fields(recipient=state.recipient, store=self.config.key_store))
            self.state = state
            self.hub.credential = state.credential
        return self.state

    def _protected_keys(self) -> set[str]:
        """The agent's own state: never pruned, whatever the desired state says."""
        return {
            f"/Namespace//{STATE_NAMESPACE}",
            f"/Secret/{STATE_NAMESPACE}/{identity_secret_name(self.cluster)}",
            f"/ConfigMap/{STATE_NAMESPACE}/{inventory_configmap_name(self.cluster)}",
        }

    # ------------------------------------------------------------ cluster

    def _observe_cluster(self) -> bool:
        try:
            nodes = self.kube.list_nodes()
        except KubeError as error:
            self.cluster_status = cluster_health(None, str(error))
            return False
        self.cluster_status = cluster_health(nodes)
        return True

    def _observe(self, keys: Mapping[str, str]) -> dict[str, dict[str, Any] | None]:
        """Live objects for {key: apiVersion}: one labelled LIST per kind, a GET for the rest
        (an object whose ownership labels were removed is still found)."""
        kinds = {(api_version, kind_of_key(key)) for key, api_version in keys.items()}
        listed = self.kube.list_owned(self.cluster, kinds)
        live: dict[str, dict[str, Any] | None] = {}
        for key, api_version in keys.items():
            if key in listed:
                live[key] = listed[key]
                continue
            _, kind, namespace, name = _split_key(key)
            try:
                live[key] = self.kube.get(api_version, kind, namespace, name)
            except UnknownKind:
                live[key] = None
        return live

    # ------------------------------------------------------------ hub

    def _hub_failed(self, outcome: CycleOutcome, error: HubError) -> None:
        self.hub_failures += 1
        outcome.fetched = "error"
        outcome.hub_error = str(error)
        # a transport failure means the hub did not answer: don't try to report either
        outcome.hub_answered = not (isinstance(error, HubUnavailable) and error.status is None) and not isinstance(
            error, HubUnauthorized | HubForbidden
        )
        outcome.errors.append(str(error))
        log.warning("hub-error", extra=fields(error=str(error), status=error.status, failures=self.hub_failures))

    def _bootstrap(self, state: AgentState, outcome: CycleOutcome, reason: str) -> bool:
        token = read_token_file(self.config.token_file)
        if token is None or not token_is_unused(state, token):
            message = f"{reason}; no unused bootstrap token at {self.config.token_file or '(no --token-file)'}"
            outcome.errors.append(message)
            outcome.fetched = "error"
            outcome.hub_answered = False
            log.error("bootstrap-needed", extra=fields(reason=reason))
            return False
        try:
            response = self.hub.bootstrap(token.value, state.recipient, AGENT_VERSION)
        except HubError as error:
            if isinstance(error, HubUnauthorized):
                # spent, expired or wrong: wait for a newer token file rather than retrying this one
                state.token_mtime_ns, state.token_sha256 = token.mtime_ns, token.sha256
                self.store.save(state)
            self._hub_failed(outcome, error)
            return False
        state.credential = response.credential
        state.token_mtime_ns, state.token_sha256 = token.mtime_ns, token.sha256
        self.store.save(state)
        self.hub.credential = response.credential
        log.info("bootstrapped", extra=fields(recipient=state.recipient, reason=reason))
        return True

    def _fetch(self, outcome: CycleOutcome) -> list[dict[str, Any]] | None:
        """Ask the hub; returns the materialized objects of a newly accepted desired state."""
        self._fenced = False
        try:
            state = self._ensure_state()
        except (KubeError, OSError, ValueError) as error:
            outcome.errors.append(f"cannot load the agent identity: {error}")
            outcome.fetched = "error"
            outcome.hub_answered = False
            return None
        if state.credential is None and not self._bootstrap(state, outcome, "not registered yet"):
            return None
        etag = self.desired.digest if self.desired else None
        try:
            try:
                desired = self.hub.fetch_desired(etag)
            except HubUnauthorized:
                if not self._bootstrap(state, outcome, "the hub rejected the credential"):
                    return None
                desired = self.hub.fetch_desired(etag)
        except HubError as error:
            self._hub_failed(outcome, error)
            return None
        self.hub_failures = 0
        if desired is None:
            outcome.fetched = "unchanged"
            return None
        return self._accept(desired, state, outcome)

    def _accept(self, desired: DesiredState, state: AgentState, outcome: CycleOutcome) -> list[dict[str, Any]] | None:
        if desired.cluster != self.cluster:
            outcome.fetched = "refused"
            outcome.errors.append(f"desired state is for cluster {desired.cluster!r}; refused")
            return None
        if desired.epoch < state.max_epoch:
            outcome.fetched = "fenced"
            self._fenced = True
            log.warning("fenced", extra=fields(epoch=desired.epoch, highest=state.max_epoch, digest=desired.digest))
            return None
        if self.desired is not None and desired.digest == self.desired.digest:
            # the hub ignored If-None-Match: same content, nothing to do
            outcome.fetched = "unchanged"
            self.desired = desired
            return None
        objects = self._materialize(desired, outcome)
        if objects is None:
            outcome.fetched = "refused"
            return None  # last good state wins: the new one is not applied at all
        if desired.epoch > state.max_epoch:
            state.max_epoch = desired.epoch
            try:
                self.store.save(state)
            except (KubeError, OSError) as error:
                outcome.errors.append(f"cannot persist the fencing epoch: {error}")
        outcome.fetched = "new"
        if self.desired is not None:
            self.previous_desired = self.desired
        self.desired = desired
        self.needs_apply = True
        self.retry_apply_at = None
        self._save_cache()
        log.info("desired", extra=fields(revision=desired.revision, digest=desired.digest, objects=len(desired.objects)))
        return objects

    def _materialize(self, desired: DesiredState, outcome: CycleOutcome) -> list[dict[str, Any]] | None:
        """The objects to apply: ownership labels set, placeholder Secrets filled from the sealed
        values. The values exist only in the returned list, which lives for one cycle."""
        objects = [with_ownership(obj, self.cluster) for obj in desired.objects]
        try:
            values: dict[str, dict[str, str]] = {}
            if desired.secrets is not None:
                assert self.state is not None
                values = open_sealed(desired.secrets, self.state.identity)
                for data in values.values():
                    for encoded in data.values():
                        with contextlib.suppress(ValueError):
                            self.redactor.register(base64.b64decode(encoded))
            return fill_secret_objects(objects, values)
        except SecretError as error:
            outcome.errors.append(f"secrets of revision {desired.revision} not usable: {error}")
            log.error("secrets-unusable", extra=fields(revision=desired.revision, error=str(error)))
            return None

    # ------------------------------------------------------------ apply and prune

    def _reconcile(self, objects: list[dict[str, Any]], outcome: CycleOutcome) -> None:
        assert self.desired is not None
        desired = self.desired
        result = self.applier.apply(objects, self.redactor.redact)
        for key, item in result.results.items():
            if item.live is not None:
                self.health[key] = object_health(item.live)
        outcome.applied = True
        self.drifted = set()
        if result.succeeded:
            self.needs_apply = False
            self.retry_apply_at = None
            self.apply_errors = []
            self.applied_digest, self.applied_revision = desired.digest, desired.revision
            self._prune(result.applied, outcome)
            self._save_cache()
        else:
            outcome.apply_failed = True
            self.retry_apply_at = None if result.unreachable else self.clock() + desired.driftInterval
            self.apply_errors = result.errors[:100]
            outcome.errors.extend(self.apply_errors)
            self._remember_applied(result)
        log.info(
            "applied",
            extra=fields(
                revision=desired.revision,
                digest=desired.digest,
                objects=len(result.results),
                failed=len(result.errors),
            ),
        )
        if self.desired is not None:
            self.next_drift_at = self.clock() + self.desired.driftInterval

    def _load_inventory(self) -> dict[str, str]:
        if self.inventory is None:
            self.inventory = self.inventory_store.load()
        return self.inventory

    def _save_inventory(self, entries: dict[str, str], outcome: CycleOutcome) -> None:
        try:
            self.inventory_store.save(entries)
            self.inventory = dict(entries)
        except KubeError as error:
            outcome.errors.append(f"inventory not saved: {error}")

    def _remember_applied(self, result: ApplyResult) -> None:
        """After a partial apply the inventory only grows: whatever was created is still ours."""
        try:
            inventory = self._load_inventory()
        except KubeError:
            return
        merged = {**inventory, **result.applied}
        if merged != inventory:
            self._save_inventory(merged, CycleOutcome())

    def _no_prune_apps(self) -> set[str]:
        apps: set[str] = set()
        for desired in (self.previous_desired, self.desired):
            if desired is not None:
                apps.update(app.name for app in desired.apps if not app.prune)
        return apps

    def _prune(self, applied: dict[str, str], outcome: CycleOutcome) -> None:
        """Prune after a fully successful apply of `applied` ({key: apiVersion})."""
        assert self.desired is not None
        self.prune_pending = True  # until this prune completes
        try:
            previous = self._load_inventory()
        except KubeError as error:
            outcome.errors.append(f"inventory not readable, nothing pruned: {error}")
            return
        new_inventory = dict(applied)
        candidates = set(previous) - set(applied)
        if candidates and not self.desired.prune.enabled:
            new_inventory.update({key: previous[key] for key in candidates})
            self.prune_pending = False
        elif candidates:
            try:
                kinds = [(api_version, kind_of_key(key)) for key, api_version in {**previous, **applied}.items()]
                live_owned = self.kube.list_owned(self.cluster, kinds)
            except KubeError as error:
                outcome.errors.append(f"cannot list owned objects, nothing pruned: {error}")
                return
            plan = plan_prune(
                set(previous),
                set(applied),
                live_owned,
                cluster=self.cluster,
                max_delete_share=self.desired.prune.maxDeleteShare,
                force=self.config.allow_mass_prune,
                no_prune_apps=self._no_prune_apps(),
                protected=self._protected_keys(),
            )
            if plan.refused:
                outcome.errors.append(plan.refused)
                new_inventory.update({key: previous[key] for key in candidates})
                log.warning("prune-refused", extra=fields(reason=plan.refused, candidates=len(candidates)))
            complete = plan.refused is None
            for key in plan.delete:
                _, kind, namespace, name = _split_key(key)
                try:
                    self.kube.delete(previous[key], kind, namespace, name)
                    outcome.pruned.append(key)
                    self.health.pop(key, None)
                    log.info("pruned", extra=fields(key=key))
                except KubeError as error:
                    outcome.errors.append(f"{key}: prune failed: {self.redactor.redact(str(error))}")
                    new_inventory[key] = previous[key]
                    complete = False
            self.prune_pending = not complete
        else:
            self.prune_pending = False
        self.pending_pruned.extend(outcome.pruned)
        self._save_inventory(new_inventory, outcome)

    # ------------------------------------------------------------ drift and health

    def _drift_due(self) -> bool:
        return self.next_drift_at is None or self.clock() >= self.next_drift_at

    def _self_heal(self, obj: Mapping[str, Any]) -> bool:
        assert self.desired is not None
        annotations = (obj.get("metadata") or {}).get("annotations") or {}
        if str(annotations.get(ANNOTATION_SELF_HEAL, "")).lower() == "false":
            return False
        app = ((obj.get("metadata") or {}).get("labels") or {}).get(LABEL_APP)
        policy = next((p for p in self.desired.apps if p.name == app), None)
        return policy.selfHeal if policy is not None else True

    def _check_drift(self, outcome: CycleOutcome) -> None:
        assert self.desired is not None
        self.next_drift_at = self.clock() + self.desired.driftInterval
        outcome.drift_checked = True
        objects = self._materialize(self.desired, outcome)
        if objects is None:
            return
        wanted = {object_key(obj): obj for obj in objects}
        try:
            live = self._observe({key: str(obj.get("apiVersion")) for key, obj in wanted.items()})
        except KubeError as error:
            outcome.errors.append(f"drift check failed: {error}")
            return
        found: list[tuple[str, list[str], bool]] = []
        heal: list[dict[str, Any]] = []
        for key, obj in wanted.items():
            current = live.get(key)
            self.health[key] = object_health(current)
            drifted = ["(object missing)"] if current is None else diff_fields(obj, current)
            if not drifted:
                continue
            revert = self._self_heal(obj)
            found.append((key, drifted, revert))
            if revert:
                heal.append(obj)
        reverted: set[str] = set()
        if heal:
            result = self.applier.apply(heal, self.redactor.redact)
            for key, item in result.results.items():
                if item.error is None:
                    reverted.add(key)
                    self.health[key] = object_health(item.live)
                else:
                    outcome.errors.append(f"{key}: drift revert failed: {item.error}")
        at = self.now()
        outcome.drift = [
            DriftEvent(key=key, fields=drifted[:MAX_REPORTED_FIELDS], reverted=key in reverted, at=at)
            for key, drifted, _ in found
        ]
        # unreverted drift is reported once per change, not at every check
        fresh = [e for e in outcome.drift if e.reverted or e.key not in self.drifted]
        self.pending_drift = [*self.pending_drift, *fresh][-1000:]
        self.drifted = {key for key, _, _ in found if key not in reverted}
        for event in outcome.drift:
            log.info("drift", extra=fields(key=event.key, fields=event.fields, reverted=event.reverted))

    def _refresh_unsettled(self, outcome: CycleOutcome) -> None:
        """Re-read objects whose health is not settled yet (reads only)."""
        assert self.desired is not None
        unsettled = {
            object_key(obj): str(obj.get("apiVersion"))
            for obj in self.desired.objects
            if self.health.get(object_key(obj), Health("Unknown")).status in _NOT_SETTLED
        }
        if not unsettled:
            return
        try:
            live = self._observe(unsettled)
        except KubeError as error:
            outcome.errors.append(f"health check failed: {error}")
            return
        for key, current in live.items():
            self.health[key] = object_health(current)

    # ------------------------------------------------------------ status

    def _phase(self, outcome: CycleOutcome) -> Phase:
        if self._fenced:
            return "Fenced"
        if self.desired is None:
            return "Failed" if outcome.errors and outcome.fetched != "error" else "Idle"
        if self.apply_errors or outcome.apply_failed or outcome.fetched == "refused":
            return "Failed"
        statuses = {self.health.get(object_key(o), Health("Unknown")).status for o in self.desired.objects}
        if statuses & {"Progressing", "Missing", "Unknown"}:
            return "Progressing"
        return "Applied"

    def build_report(self, outcome: CycleOutcome) -> StatusReport:
        objects: list[ObjectStatus] = []
        if self.desired is not None:
            for obj in self.desired.objects:
                key = object_key(obj)
                health = self.health.get(key, Health("Unknown"))
                app = ((obj.get("metadata") or {}).get("labels") or {}).get(LABEL_APP, "")
                objects.append(
                    ObjectStatus(
                        key=key, app=str(app), health=health.status, message=health.message[:1024],
                        drifted=key in self.drifted,
                    )
                )
        errors = _unique(self.redactor.redact(e)[:1000] for e in [*self.apply_errors, *outcome.errors])
        return StatusReport(
            agentVersion=AGENT_VERSION,
            epoch=self.state.max_epoch if self.state else 0,
            appliedRevision=self.applied_revision,
            appliedDigest=self.applied_digest,
            phase=self._phase(outcome),
            clusterHealth=self.cluster_status,
            objects=objects,
            drift=self.pending_drift,
            pruned=self.pending_pruned[-20000:],
            errors=errors[:100],
            secretVersions=dict(self.desired.secretVersions) if self.desired and self.applied_digest else {},
        )

    def _report(self, outcome: CycleOutcome) -> None:
        report = self.build_report(outcome)
        outcome.report = report
        content = report.model_dump(mode="json", exclude={"drift", "pruned"})
        changed = content != self._last_report or bool(report.drift or report.pruned)
        heartbeat_due = self._cycles_since_report + 1 >= self.config.heartbeat_every
        if not outcome.hub_answered or not (changed or heartbeat_due):
            self._cycles_since_report += 1
            return
        try:
            self.hub.post_status(report)
        except HubError as error:
            self._cycles_since_report += 1
            outcome.errors.append(f"status not reported: {error}")
            log.warning("status-not-reported", extra=fields(error=str(error)))
            return
        self._last_report = content
        self._cycles_since_report = 0
        self.pending_drift, self.pending_pruned = [], []
        outcome.reported = True


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))
