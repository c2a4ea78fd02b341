"""Secret rotation and rollout: new Vault versions, who runs them, and when the old one may go.

The `SecretsController` (one per hub, attached by the daemon as `hub.rotation`):
- polls Vault for new versions of the unpinned references the bundles in force
  use, and re-renders when one moved (only bundles using it change digest);
- rotates a reference on request or on a `secrets.rotation` cron policy: a new
  KV v2 version, then an immediate re-render;
- tracks each source's rollout: the clusters whose bundles use it, which of
  them report running the current version with the Secret and the workloads
  reading it Healthy, and which are behind;
- destroys a replaced Vault version only once every target confirms; a
  rollout that does not complete keeps the old version and says so.

Values pass through `rotate` on their way to Vault and nowhere else: no value
is logged, stored, returned or put in an event.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from apscheduler.triggers.cron import CronTrigger

from fleet.hub.core import Hub, HubError
from fleet.inventory.models import RotationPolicy
from fleet.protocol import object_key
from fleet.render.secretrefs import consumed_secret_names
from fleet.secrets.errors import SecretError, VaultRefError, VaultUnavailable
from fleet.secrets.refs import VAULT_PREFIX, VaultRef, parse_vault_ref
from fleet.secrets.resolver import secret_sources
from fleet.secrets.rotation import RolloutState, destroy_old, generate_value, rollout_state
from fleet.secrets.rotation import rotate as write_new_version
from fleet.store.models import SecretVersionRecord, utcnow

log = logging.getLogger("fleet.hub.rotation")

TICK_SECONDS = 5.0
DEFAULT_STALL_AFTER = timedelta(minutes=10)
MAX_RENDER_BACKOFF = timedelta(minutes=10)
POLICY_JOB_PREFIX = "secret-rotation:"
MAX_VALUE_CHARS = 64 * 1024

RolloutPhase = Literal["rolling", "complete", "stalled"]


# ------------------------------------------------------------------ pure decisions


@dataclass(frozen=True)
class BundleUse:
    """What one cluster's bundle in force says about its secret sources."""

    versions: Mapping[str, str]  # source (vault ref or SOPS file) -> fingerprint
    objects: Mapping[str, tuple[str, ...]]  # source -> keys of its Secret(s) and the workloads reading them


def bundle_use(bundle: Mapping[str, Any]) -> BundleUse:
    objects: list[dict[str, Any]] = list(bundle.get("objects") or [])
    versions = {str(k): str(v) for k, v in (bundle.get("secretVersions") or {}).items()}
    try:
        sources = secret_sources(objects)
    except SecretError:  # a stored bundle passed the same check when it was built; be lenient reading it
        sources = []
    keys: dict[str, list[str]] = {}
    for source in sources:
        namespace, name = source.object_key.split("/", 3)[2:4]  # "/Secret/<namespace>/<name>"
        readers = [
            object_key(obj)
            for obj in objects
            if (obj.get("metadata") or {}).get("namespace", "") == namespace and name in consumed_secret_names(obj)
        ]
        names = list(source.refs.values()) if source.kind == "vault" else [source.file or ""]
        for origin in names:
            keys.setdefault(origin, []).extend([source.object_key, *readers])
    return BundleUse(versions=versions, objects={k: tuple(dict.fromkeys(v)) for k, v in keys.items()})


@dataclass(frozen=True)
class ObjectHealth:
    key: str
    health: str


@dataclass(frozen=True)
class ClusterRollout:
    cluster: str
    expected: str  # the fingerprint the cluster's bundle in force carries
    applied: str | None  # the fingerprint its agent reports running
    objects: tuple[ObjectHealth, ...]  # the Secret carrying the source and the workloads reading it
    reported_at: datetime | None

    @property
    def healthy(self) -> bool:
        return all(o.health == "Healthy" for o in self.objects)


@dataclass(frozen=True)
class SourceRollout:
    source: str
    current: str
    clusters: tuple[ClusterRollout, ...]
    state: RolloutState

    def cluster(self, name: str) -> ClusterRollout | None:
        return next((c for c in self.clusters if c.cluster == name), None)


def assess_rollout(source: str, clusters: Sequence[ClusterRollout], recorded: str | None = None) -> SourceRollout:
    """Which targets run the current version with healthy consumers. The current version is the
    one the store recorded last when bundles carry it, else the one most bundles carry."""
    expected = [c.expected for c in clusters]
    current = recorded if recorded in expected else Counter(expected).most_common(1)[0][0]
    applied = {c.cluster: c.applied if c.expected == current else None for c in clusters}
    healthy = {c.cluster: c.healthy for c in clusters}
    return SourceRollout(source, current, tuple(clusters), rollout_state(current, applied, healthy))


def version_label(fingerprint: str | None) -> str | None:
    """"3" for `vault:kv/x@3`, "sha256:<12 hex>" for a SOPS file's fingerprint."""
    if fingerprint is None:
        return None
    if fingerprint.startswith(VAULT_PREFIX):
        return fingerprint.rpartition("@")[2]
    return fingerprint.removeprefix("sops:")[: len("sha256:") + 12]


def vault_version(fingerprint: str) -> int | None:
    number = fingerprint.rpartition("@")[2] if fingerprint.startswith(VAULT_PREFIX) else ""
    return int(number) if number.isdigit() else None


_CRON_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def _day_number(token: str) -> int:
    lowered = token.lower()
    if lowered in _CRON_DAYS:
        return _CRON_DAYS.index(lowered)
    if lowered.isdigit() and int(lowered) <= 7:
        return int(lowered)
    raise ValueError(f"{token!r} is not a day of the week (0-7 or sun-sat)")


def cron_day_of_week(field: str) -> str:
    """A crontab day-of-week field in APScheduler's terms. Cron counts from Sunday (0 or 7),
    APScheduler from Monday, so the days are spelled out by name: `0` stays Sunday."""
    if field == "*":
        return field
    days: set[int] = set()
    for part in field.split(","):
        base, slash, step_text = part.partition("/")
        if slash and not (step_text.isdigit() and int(step_text) > 0):
            raise ValueError(f"{part!r}: the step must be a positive number")
        step = int(step_text) if slash else 1
        if base == "*":
            first, last = 0, 6
        elif "-" in base:
            start, _, end = base.partition("-")
            first, last = _day_number(start), _day_number(end)
            if last < first:
                raise ValueError(f"{part!r}: a range must go forwards")
        else:
            first = _day_number(base)
            last = 6 if slash else first
        days.update(day % 7 for day in range(first, last + 1, step))
    return ",".join(_CRON_DAYS[day] for day in sorted(days))


def cron_trigger(schedule: str) -> CronTrigger:
    """A UTC CronTrigger for a standard 5-field crontab expression."""
    fields = schedule.split()
    if len(fields) != 5:
        raise ValueError(f"{schedule!r}: expected 5 fields (minute hour day month day-of-week)")
    fields[4] = cron_day_of_week(fields[4])
    return CronTrigger.from_crontab(" ".join(fields), timezone=UTC)


# ------------------------------------------------------------------ results and views


@dataclass(frozen=True)
class RotationOutcome:
    ref: str
    old_version: int | None
    new_version: int
    destroy_old: bool
    rendered: bool  # False: written to Vault, but the re-render failed; clusters keep their last good state
    message: str
    targets: tuple[str, ...]


@dataclass(frozen=True)
class SourceStatus:
    source: str
    kind: Literal["vault", "sops"]
    rollout: SourceRollout
    phase: RolloutPhase
    record: SecretVersionRecord | None
    policy: RotationPolicy | None
    next_rotation: datetime | None


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; the store writes UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"


# ------------------------------------------------------------------ the controller


class SecretsController:
    def __init__(
        self,
        hub: Hub,
        *,
        scheduler: Any = None,
        now: Callable[[], datetime] = utcnow,
        stall_after: timedelta = DEFAULT_STALL_AFTER,
    ) -> None:
        self.hub = hub
        self.scheduler = scheduler  # an apscheduler scheduler for rotation policies (None: no policies run)
        self.now = now
        self.stall_after = stall_after
        self._lock = threading.RLock()
        self._bundles: dict[str, tuple[str, BundleUse]] = {}  # cluster -> (digest, use): bundles rarely change
        self._next_poll: datetime | None = None
        self._poll_error: str | None = None
        self._announced: dict[str, str] = {}  # source -> fingerprint already reported as new
        self._render_failures = 0
        self._render_retry_at: datetime | None = None
        self._policy_revision: str | None = "<never synced>"
        self._policy_jobs: dict[str, str] = {}  # job id -> policy it runs (JSON), to re-add only on change
        self._policy_problems: set[tuple[str, str]] = set()
        self._destroy_problems: set[str] = set()

    # ------------------------------------------------------------ what is in force

    def in_force(self) -> dict[str, BundleUse]:
        """cluster -> its bundle's secret sources, for the clusters of the revision in force."""
        current = self.hub.reconciler.current
        if current is None:
            return {}
        result: dict[str, BundleUse] = {}
        for cluster, (_, digest) in self.hub.store.desired_digests().items():
            if cluster not in current.inventory.clusters:
                continue
            cached = self._bundles.get(cluster)
            if cached is None or cached[0] != digest:
                record = self.hub.store.desired(cluster)
                if record is None:
                    continue
                cached = (record.digest, bundle_use(record.bundle))
                self._bundles[cluster] = cached
            result[cluster] = cached[1]
        return result

    def rollouts(self, sources: Iterable[str] | None = None) -> dict[str, SourceRollout]:
        """Rollout of each source in force (or of `sources` only)."""
        wanted = set(sources) if sources is not None else None
        users: dict[str, dict[str, BundleUse]] = {}
        for cluster, use in self.in_force().items():
            for source in use.versions:
                if wanted is None or source in wanted:
                    users.setdefault(source, {})[cluster] = use
        if not users:
            return {}
        records = {r.name: r for r in self.hub.store.clusters()}
        recorded = self.hub.store.secret_versions()
        health: dict[str, dict[str, str]] = {}
        result: dict[str, SourceRollout] = {}
        for source, by_cluster in sorted(users.items()):
            views = []
            for cluster, use in sorted(by_cluster.items()):
                if cluster not in health:
                    health[cluster] = {o.key: o.health for o in self.hub.store.object_statuses(cluster)}
                record = records.get(cluster)
                views.append(
                    ClusterRollout(
                        cluster=cluster,
                        expected=use.versions[source],
                        applied=(record.secret_versions or {}).get(source) if record else None,
                        objects=tuple(ObjectHealth(k, health[cluster].get(k, "Unknown")) for k in use.objects.get(source, ())),
                        reported_at=as_utc(record.status_updated_at) if record else None,
                    )
                )
            stored = recorded.get(source)
            result[source] = assess_rollout(source, views, stored.version if stored else None)
        return result

    def _phase(self, rollout: SourceRollout, record: SecretVersionRecord | None) -> RolloutPhase:
        if rollout.state.complete:
            return "complete"
        if record is not None and record.rollout_version == rollout.current:
            started = as_utc(record.rollout_started_at)
            if record.rollout_state == "stalled" or (started and self.now() - started >= self.stall_after):
                return "stalled"
        return "rolling"

    def _policies(self) -> dict[str, RotationPolicy]:
        current = self.hub.reconciler.current
        policies: dict[str, RotationPolicy] = {}
        for policy in current.inventory.settings.secrets.rotation if current else []:
            try:
                policies[str(parse_vault_ref(policy.ref))] = policy
            except VaultRefError:
                continue
        return policies

    def status(self, source: str | None = None) -> list[SourceStatus]:
        """Every source in force (or one), with its rollout."""
        rollouts = self.rollouts([source] if source is not None else None)
        records = self.hub.store.secret_versions()
        policies = self._policies()
        now = self.now()
        result = []
        for name, rollout in rollouts.items():
            policy = policies.get(name)
            next_rotation = None
            if policy is not None:
                try:
                    next_rotation = cron_trigger(policy.schedule).get_next_fire_time(None, now)
                except ValueError:
                    next_rotation = None
            record = records.get(name)
            result.append(
                SourceStatus(
                    source=name,
                    kind="vault" if name.startswith(VAULT_PREFIX) else "sops",
                    rollout=rollout,
                    phase=self._phase(rollout, record),
                    record=record,
                    policy=policy,
                    next_rotation=next_rotation,
                )
            )
        return result

    def detail(self, source: str) -> SourceStatus:
        canonical = source
        if source.startswith(VAULT_PREFIX):
            try:
                canonical = str(parse_vault_ref(source))
            except VaultRefError as exc:
                raise HubError(400, str(exc)) from None
        found = self.status(canonical)
        if not found:
            raise HubError(404, f"{canonical} is not used by any cluster in the revision in force")
        return found[0]

    # ------------------------------------------------------------ rotation

    def rotate(
        self,
        ref_text: str,
        *,
        generate: int | None = None,
        value: str | None = None,
        destroy_old_version: bool = False,
        actor: str = "operator",
    ) -> RotationOutcome:
        """Write a new Vault version (generated, or `value`) and re-render at once."""
        if (generate is None) == (value is None):
            raise HubError(400, "give exactly one of generate (a length) or value")
        if value is not None and not 0 < len(value) <= MAX_VALUE_CHARS:
            raise HubError(400, f"the value must have 1 to {MAX_VALUE_CHARS} characters")
        try:
            ref = parse_vault_ref(ref_text)
        except VaultRefError as exc:
            raise HubError(400, str(exc)) from None
        if ref.version is not None:
            raise HubError(400, f"{ref} is pinned to version {ref.version}; unpin it in Git to rotate it")
        source = str(ref)
        current = self.hub.reconciler.current
        if current is None:
            raise HubError(503, "the hub has not loaded a revision yet", {"Retry-After": "10"})
        targets = tuple(sorted(c for c, use in self.in_force().items() if source in use.versions))
        if not targets:
            raise HubError(404, f"{source} is not used by any cluster in the revision in force; nothing to rotate")
        vault = self.hub.secrets.vault(current.inventory.settings.secrets.vault)
        if vault is None:
            raise HubError(503, "no Vault is configured (secrets.vault.address in fleet.yaml, or VAULT_ADDR)")
        try:
            new_value = value if value is not None else generate_value(int(generate or 0))
        except SecretError as exc:
            raise HubError(400, str(exc)) from None
        # The hub's log filter scrubs it should it ever reach a message (it is never put in one).
        self.hub.secrets.redactor.register(new_value)
        with self._lock:
            try:
                result = write_new_version(vault, ref, new_value)
            except VaultUnavailable as exc:
                self._rotation_failed(source, actor, str(exc))
                raise HubError(503, f"{source} was not rotated; nothing changed: {exc}", {"Retry-After": "15"}) from None
            except SecretError as exc:
                self._rotation_failed(source, actor, str(exc))
                raise HubError(409, f"{source} was not rotated; nothing changed: {exc}") from None
            return self._after_write(source, ref, result.old_version, result.new_version, destroy_old_version, actor, targets)

    def _rotation_failed(self, source: str, actor: str, reason: str) -> None:
        self.hub.store.add_event(
            "secret.rotation-failed", f"rotation of {source} by {actor} failed; nothing changed: {reason}",
            severity="error",
        )

    def _after_write(
        self,
        source: str,
        ref: VaultRef,
        old: int | None,
        new: int,
        destroy_old_version: bool,
        actor: str,
        targets: tuple[str, ...],
    ) -> RotationOutcome:
        fingerprint = f"vault:{ref.location}@{new}"
        keep = old is None or not destroy_old_version
        self.hub.store.add_event(
            "secret.rotated",
            f"{source} rotated by {actor}: version {old if old is not None else '(none)'} -> {new}; "
            f"rolling out to {', '.join(targets)}"
            + ("" if keep else f"; version {old} is destroyed once every target runs version {new} healthily"),
        )
        self._announced[source] = fingerprint
        render = self.hub.reconciler.rerender(f"rotation of {source} (version {old} -> {new})")
        rendered = render.action == "applied"
        now = self.now()
        record = self.hub.store.secret_versions().get(source)
        changes: dict[str, Any] = {"rotated_at": now, "rotated_by": actor}
        if not keep and old is not None and record is not None:
            changes["destroy_pending"] = sorted({*record.destroy_pending, old})
        if rendered and record is not None and record.version == fingerprint:
            changes.update(
                rollout_version=fingerprint, rollout_state="rolling", rollout_started_at=now, rollout_completed_at=None
            )
        self.hub.store.update_secret_version(source, **changes)
        if rendered:
            message = f"version {new} written; {render.message}"
        else:
            first = render.message.splitlines()[0] if render.message else ""
            message = (
                f"version {new} written to Vault, but re-rendering failed ({first}); every cluster keeps its "
                "last good state, and version polling re-renders once Vault answers again"
            )
            log.warning("rotation of %s: %s", source, message)
        return RotationOutcome(source, old, new, not keep, rendered, message, targets)

    # ------------------------------------------------------------ version polling

    def poll_versions(self, force: bool = False) -> list[str]:
        """Scheduled: re-render when Vault holds a newer version than the bundles in force carry.
        Returns the references found stale (and re-rendered, or tried)."""
        current = self.hub.reconciler.current
        if current is None:
            return []
        settings = current.inventory.settings.secrets.vault
        now = self.now()
        if not force and self._next_poll is not None and now < self._next_poll:
            return []
        self._next_poll = now + timedelta(seconds=settings.versionPollInterval)
        carried: dict[str, set[str]] = {}
        refs: dict[str, VaultRef] = {}
        for use in self.in_force().values():
            for source, fingerprint in use.versions.items():
                if not source.startswith(VAULT_PREFIX):
                    continue
                try:
                    ref = parse_vault_ref(source)
                except VaultRefError:
                    continue
                if ref.version is None:
                    refs[source] = ref
                    carried.setdefault(source, set()).add(fingerprint)
        if not refs:
            return []
        vault = self.hub.secrets.vault(settings)
        if vault is None:
            return []
        latest: dict[str, int] = {}
        for location in sorted({r.location for r in refs.values()}):
            mount, _, path = location.partition("/")
            try:
                latest[location] = vault.current_version(mount, path)
            except VaultUnavailable as exc:
                self._poll_failed(str(exc))
                return []
            except VaultRefError as exc:
                log.warning("version poll: %s", exc)
        if self._poll_error is not None:
            log.info("Vault version polling works again")
            self._poll_error = None
        stale: dict[str, str] = {}
        for source, ref in sorted(refs.items()):
            if ref.location in latest:
                fingerprint = f"vault:{ref.location}@{latest[ref.location]}"
                if carried[source] != {fingerprint}:
                    stale[source] = fingerprint
        if not stale:
            self._render_failures, self._render_retry_at = 0, None
            return []
        if not force and self._render_retry_at is not None and now < self._render_retry_at:
            return []
        for source, fingerprint in stale.items():
            if self._announced.get(source) != fingerprint:
                self._announced[source] = fingerprint
                self.hub.store.add_event(
                    "secret.version-changed",
                    f"{source}: Vault holds version {version_label(fingerprint)}, the bundles in force carry "
                    f"{', '.join(sorted(v or '?' for v in map(version_label, carried[source])))}; re-rendering",
                )
        with self._lock:
            result = self.hub.reconciler.rerender("new version of " + ", ".join(stale))
        if result.action == "rejected":
            self._render_failures += 1
            backoff = min(MAX_RENDER_BACKOFF, timedelta(seconds=settings.versionPollInterval * 2**self._render_failures))
            self._render_retry_at = now + backoff
        else:
            self._render_failures, self._render_retry_at = 0, None
        return list(stale)

    def _poll_failed(self, reason: str) -> None:
        if reason != self._poll_error:
            self._poll_error = reason
            log.warning("Vault version polling failed: %s", reason)
            self.hub.store.add_event(
                "secret.poll-failed", f"cannot check Vault for new secret versions: {reason}", severity="warning"
            )

    # ------------------------------------------------------------ rollout tracking

    def tick(self) -> None:
        """Scheduled: follow the revision's rotation policies and advance rollouts."""
        with self._lock:
            current = self.hub.reconciler.current
            if (current.sha if current else None) != self._policy_revision:
                self.sync_policies()
            self.track_rollouts()

    def track_rollouts(self) -> None:
        now = self.now()
        uses = self.in_force()
        in_force = {source for use in uses.values() for source in use.versions}
        records = self.hub.store.secret_versions()
        for ref, record in list(records.items()):
            if ref in in_force and record.rollout_version != record.version:
                updated = self.hub.store.update_secret_version(
                    ref, rollout_version=record.version, rollout_state="rolling", rollout_started_at=now,
                    rollout_completed_at=None,
                )
                if updated is not None:
                    records[ref] = updated
        active = [
            r for r in records.values()
            if r.ref in in_force and (r.rollout_state in ("rolling", "stalled") or r.destroy_pending)
        ]
        if not active:
            return
        locations = {parse_vault_ref(r.ref).location for r in active if r.destroy_pending and _is_vault(r.ref)}
        wanted = {r.ref for r in active} | {s for s in in_force if _is_vault(s) and _location(s) in locations}
        rollouts = self.rollouts(wanted)
        for record in active:
            rollout = rollouts.get(record.ref)
            if rollout is None or rollout.current != record.version:
                continue  # the bundles and the store disagree for a moment (a render in flight)
            changed = record.previous_version is not None or bool(record.destroy_pending)
            if rollout.state.complete and record.rollout_state != "complete":
                self.hub.store.update_secret_version(record.ref, rollout_state="complete", rollout_completed_at=now)
                if changed:
                    started = as_utc(record.rollout_started_at) or now
                    self.hub.store.add_event(
                        "secret.rollout-complete",
                        f"{record.ref}: version {version_label(record.version)} runs on all {len(rollout.clusters)} "
                        f"target cluster(s) ({', '.join(rollout.state.on_version)}) with healthy workloads, "
                        f"{_duration((now - started).total_seconds())} after it started",
                    )
            elif not rollout.state.complete and record.rollout_state == "rolling":
                since = as_utc(record.rollout_started_at)
                if since is not None and now - since >= self.stall_after:
                    self.hub.store.update_secret_version(record.ref, rollout_state="stalled")
                    if changed:
                        kept = (
                            f"; keeping old version(s) {', '.join(map(str, record.destroy_pending))} in Vault"
                            if record.destroy_pending
                            else ""
                        )
                        self.hub.store.add_event(
                            "secret.rollout-stalled",
                            f"{record.ref}: version {version_label(record.version)} not confirmed after "
                            f"{_duration((now - since).total_seconds())}; behind: {', '.join(rollout.state.behind)}"
                            + kept,
                            severity="warning",
                        )
            if record.destroy_pending and rollout.state.complete:
                self._destroy_replaced(record, rollout, rollouts, in_force)

    def _destroy_replaced(
        self,
        record: SecretVersionRecord,
        rollout: SourceRollout,
        rollouts: Mapping[str, SourceRollout],
        in_force: set[str],
    ) -> None:
        """Destroy the versions a rotation replaced, once every user of the path runs the new one."""
        if not _is_vault(record.ref):
            self.hub.store.update_secret_version(record.ref, destroy_pending=[])
            return
        ref = parse_vault_ref(record.ref)
        siblings = [r for s, r in rollouts.items() if _is_vault(s) and _location(s) == ref.location]
        if not all(s.state.complete for s in siblings):
            return  # another key of the same path is still rolling out: the path's versions are shared
        newest = vault_version(rollout.current) or 0
        pinned = {
            parse_vault_ref(s).version for s in in_force if _is_vault(s) and _location(s) == ref.location
        } - {None}
        due = [v for v in record.destroy_pending if v < newest and v not in pinned]
        blocked = [v for v in record.destroy_pending if v in pinned]
        if blocked:
            key = f"{record.ref}:{blocked}"
            if key not in self._destroy_problems:
                self._destroy_problems.add(key)
                self.hub.store.add_event(
                    "secret.destroy-held",
                    f"{ref.location}: not destroying version(s) {', '.join(map(str, blocked))}: a bundle pins them",
                    severity="warning",
                )
        if not due:
            return
        current = self.hub.reconciler.current
        vault = self.hub.secrets.vault(current.inventory.settings.secrets.vault) if current else None
        if vault is None:
            return
        destroyed: list[int] = []
        try:
            for version in due:
                destroy_old(vault, ref, version, rollout.state)
                destroyed.append(version)
        except SecretError as exc:
            key = f"{record.ref}:{exc}"
            if key not in self._destroy_problems:
                self._destroy_problems.add(key)
                self.hub.store.add_event(
                    "secret.destroy-failed",
                    f"{ref.location}: destroying old version(s) failed, will retry: {exc}",
                    severity="warning" if isinstance(exc, VaultUnavailable) else "error",
                )
        if not destroyed:
            return
        self.hub.store.update_secret_version(
            record.ref,
            destroy_pending=[v for v in record.destroy_pending if v not in destroyed],
            destroyed=sorted({*record.destroyed, *destroyed}),
        )
        self.hub.store.add_event(
            "secret.destroyed",
            f"{ref.location}: version(s) {', '.join(map(str, destroyed))} destroyed in Vault; every target "
            f"({', '.join(rollout.state.on_version)}) runs version {newest} with healthy workloads",
        )

    # ------------------------------------------------------------ rotation policies

    def sync_policies(self) -> None:
        """Make the scheduler's rotation jobs match `secrets.rotation` of the revision in force."""
        current = self.hub.reconciler.current
        self._policy_revision = current.sha if current else None
        if self.scheduler is None:
            return
        wanted: dict[str, tuple[RotationPolicy, CronTrigger]] = {}
        for policy in current.inventory.settings.secrets.rotation if current else []:
            try:
                ref = parse_vault_ref(policy.ref)
                if ref.version is not None:
                    raise VaultRefError(f"{ref} is pinned to a version and cannot be rotated")
                trigger = cron_trigger(policy.schedule)
            except (ValueError, VaultRefError) as exc:
                problem = (self._policy_revision or "", policy.ref)
                if problem not in self._policy_problems:
                    self._policy_problems.add(problem)
                    self.hub.store.add_event(
                        "secret.policy-invalid",
                        f"rotation policy for {policy.ref} ignored: {exc}",
                        severity="warning",
                        commit=self._policy_revision,
                    )
                continue
            wanted[POLICY_JOB_PREFIX + str(ref)] = (policy, trigger)
        for job in self.scheduler.get_jobs():
            if job.id.startswith(POLICY_JOB_PREFIX) and job.id not in wanted:
                self.scheduler.remove_job(job.id)
                self._policy_jobs.pop(job.id, None)
        for job_id, (policy, trigger) in wanted.items():
            signature = policy.model_dump_json()
            if self._policy_jobs.get(job_id) == signature and self.scheduler.get_job(job_id) is not None:
                continue
            ref_text = job_id.removeprefix(POLICY_JOB_PREFIX)
            self.scheduler.add_job(
                self.run_policy, trigger, args=[ref_text], id=job_id, name=f"rotate {ref_text}", replace_existing=True
            )
            self._policy_jobs[job_id] = signature

    def run_policy(self, ref_text: str) -> RotationOutcome | None:
        """The job a rotation policy schedules."""
        policy = self._policies().get(ref_text)
        if policy is None:
            return None  # the policy left Git since the job was scheduled
        actor = f"rotation policy ({policy.schedule})"
        try:
            return self.rotate(ref_text, generate=policy.generate, destroy_old_version=policy.destroyOld, actor=actor)
        except HubError as exc:
            log.warning("scheduled rotation of %s failed: %s", ref_text, exc.message)
            if exc.status in (400, 404):  # Vault failures already have their event
                self.hub.store.add_event(
                    "secret.rotation-skipped", f"{actor} did not rotate {ref_text}: {exc.message}", severity="warning"
                )
            return None


def _is_vault(source: str) -> bool:
    return source.startswith(VAULT_PREFIX)


def _location(source: str) -> str:
    try:
        return parse_vault_ref(source).location
    except VaultRefError:
        return ""


def install_rotation(daemon: Any) -> SecretsController:
    """Attach the controller to the hub and schedule its jobs (the daemon calls this)."""
    controller = SecretsController(daemon.hub, scheduler=daemon.scheduler)
    daemon.hub.rotation = controller

    def install(d: Any) -> None:
        controller.sync_policies()
        d.scheduler.add_job(controller.tick, "interval", seconds=TICK_SECONDS, id="secret-rollouts")
        d.scheduler.add_job(controller.poll_versions, "interval", seconds=TICK_SECONDS, id="secret-version-poll")

    daemon.add_job_installer(install)
    return controller
