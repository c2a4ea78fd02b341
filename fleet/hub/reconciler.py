"""Git -> store: fetch, gate, load, plan, render, resolve secret versions, register, store.

Last good state wins. A fetch error, a held or unverified move, an invalid
revision, a render error or a secret that does not decrypt all leave every
cluster's desired state exactly as it was, and are reported as events. None
of them can shrink a desired state, so none of them can cause a prune.
"""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fleet.errors import FleetError, SpecError, SpecProblem
from fleet.hub.registration import Registrar
from fleet.hub.secrets import HubSecrets, needs_vault
from fleet.inventory.loader import Inventory, load_inventory
from fleet.inventory.models import FleetSettings, SigningSettings
from fleet.plan.failover import GroupState
from fleet.plan.placement import plan_fleet
from fleet.render.bundle import Bundle, Renderer, finalize
from fleet.secrets.errors import SecretError, VaultUnavailable
from fleet.secrets.resolver import secret_sources
from fleet.source.errors import SourceError
from fleet.source.git import GitSource, Revision
from fleet.source.policy import decide_move
from fleet.source.signing import SignatureCheck, verify_commit
from fleet.store.models import utcnow
from fleet.store.store import Store

log = logging.getLogger("fleet.hub.reconciler")


@dataclass(frozen=True)
class LoadedRevision:
    sha: str
    root: Path
    inventory: Inventory


@dataclass
class PollResult:
    action: str  # "unchanged" | "applied" | "held" | "stayed" | "rejected" | "deferred" | "fetch-failed"
    sha: str | None = None
    message: str = ""
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class SigningOverride:
    """Signing policy given on the hub's command line; it beats fleet.yaml (which a commit could edit)."""

    mode: str
    trusted: tuple[str, ...]


class RevisionRejected(FleetError):
    """The revision cannot be rendered. `transient`: only because a dependency (Vault) is down,
    so the same revision is tried again on the next poll instead of being rejected for good."""

    def __init__(self, problems: list[SpecProblem], transient: bool = False) -> None:
        self.problems = problems
        self.transient = transient
        super().__init__("\n".join(str(p) for p in problems))


def summarize_problems(problems: list[SpecProblem], limit: int = 20) -> str:
    lines = [str(p) for p in problems[:limit]]
    if len(problems) > limit:
        lines.append(f"... and {len(problems) - limit} more")
    return "\n".join(lines)


def bundle_document(bundle: Bundle) -> dict[str, Any]:
    """What the store keeps for a cluster: the bundle without any secret value (it has none)."""
    return {
        "objects": list(bundle.objects),
        "apps": [a.model_dump() for a in bundle.apps],
        "prune": {"enabled": bundle.prune_enabled, "maxDeleteShare": bundle.max_delete_share},
        "pollInterval": bundle.poll_interval,
        "driftInterval": bundle.drift_interval,
        "secretVersions": dict(bundle.secret_versions),
    }


class Reconciler:
    def __init__(
        self,
        store: Store,
        source: GitSource,
        checkouts: Path,
        registrar: Registrar,
        secrets: HubSecrets,
        *,
        gnupghome: Path | None = None,
        signing_override: SigningOverride | None = None,
    ) -> None:
        self.store = store
        self.source = source
        self.checkouts = checkouts
        self.registrar = registrar
        self.secrets = secrets
        self.gnupghome = gnupghome
        self.signing_override = signing_override
        self.lock = threading.RLock()
        self.current: LoadedRevision | None = None
        self._last_fetch_error: str | None = None

    # ------------------------------------------------------------ state

    @property
    def settings(self) -> FleetSettings:
        return self.current.inventory.settings if self.current else FleetSettings()

    def restore(self) -> None:
        """After a restart: reload the revision in force from its checkout (re-materialised if needed)."""
        state = self.store.source_state()
        if not state.current_sha:
            return
        try:
            try:
                root = self._checkout(state.current_sha)
            except SourceError:
                # a fresh data dir (a new replica, a rebuilt host) has not fetched yet
                self.source.fetch()
                root = self._checkout(state.current_sha)
            self.current = LoadedRevision(state.current_sha, root, load_inventory(root))
        except (FleetError, OSError) as exc:
            log.warning("could not restore revision %s: %s", state.current_sha[:12], exc)

    def _checkout(self, sha: str) -> Path:
        dest = self.checkouts / sha
        if (dest / ".fleet-complete").exists():
            return dest
        if dest.exists():
            shutil.rmtree(dest)
        self.source.checkout(sha, dest)
        (dest / ".fleet-complete").touch()
        return dest

    def _prune_checkouts(self, keep: set[str]) -> None:
        for path in self.checkouts.iterdir():
            if path.name not in keep:
                shutil.rmtree(path, ignore_errors=True)

    def group_states(self) -> dict[str, GroupState]:
        return {
            name: GroupState(group=name, active=r.active, epoch=r.epoch, reason=r.reason)
            for name, r in self.store.failover_groups().items()
        }

    # ------------------------------------------------------------ signing

    def _signing_policy(self, candidate: Inventory | None) -> SigningSettings:
        if self.signing_override is not None:
            return SigningSettings.model_validate(
                {"mode": self.signing_override.mode, "trustedKeys": list(self.signing_override.trusted)}
            )
        if self.current is not None:
            # The policy in force comes from the last good revision, never from the candidate:
            # a commit must not be able to switch off the check that judges it.
            return self.current.inventory.settings.signing
        return candidate.settings.signing if candidate is not None else SigningSettings()

    def _verify(self, sha: str, policy: SigningSettings) -> SignatureCheck | None:
        if policy.mode == "off":
            return None
        return verify_commit(self.source.repo_path, sha, policy.trustedKeys, self.gnupghome)

    # ------------------------------------------------------------ polling

    def poll(self) -> PollResult:
        with self.lock:
            return self._poll()

    def _poll(self) -> PollResult:
        try:
            head = self.source.fetch()
        except SourceError as exc:
            message = str(exc)
            self.store.update_source_state(last_error=f"fetch failed: {message}")
            if message != self._last_fetch_error:
                self.store.add_event("source.fetch-failed", f"fetch failed: {message}", severity="error")
                self._last_fetch_error = message
            return PollResult("fetch-failed", message=message)
        if self._last_fetch_error is not None:
            self.store.add_event("source.fetch-recovered", "fetching the fleet repo works again")
            self._last_fetch_error = None

        state = self.store.update_source_state(remote_sha=head.sha, last_fetch_at=utcnow())
        current = state.current_sha
        if head.sha == current:
            if state.last_error and state.last_error.startswith("fetch failed"):
                self.store.update_source_state(last_error=None)
            return PollResult("unchanged", sha=head.sha)
        known = self.store.revision(head.sha)
        accepted = frozenset(state.accepted)
        if known is not None and known.state in ("rejected", "held", "unverified") and head.sha not in accepted:
            return PollResult(known.state if known.state != "unverified" else "stayed", sha=head.sha)
        return self._consider(head, current, accepted)

    def _consider(self, head: Revision, current: str | None, accepted: frozenset[str]) -> PollResult:
        is_ff = current is None or self.source.is_ancestor(current, head.sha)
        try:
            root = self._checkout(head.sha)
        except SourceError as exc:
            return self._reject(head, [SpecProblem(file="", field="", message=str(exc))])
        candidate: Inventory | None = None
        load_problems: list[SpecProblem] = []
        try:
            candidate = load_inventory(root)
        except SpecError as exc:
            load_problems = exc.problems

        policy = self._signing_policy(candidate)
        signature = self._verify(head.sha, policy)
        decision = decide_move(
            current,
            head.sha,
            is_fast_forward=is_ff,
            accepted=accepted,
            signing_mode=policy.mode,
            signature=signature,
        )
        signature_text = signature.reason if signature is not None else None
        if decision.action == "hold":
            self._record(head, "held", decision.reason, signature_text)
            self.store.update_source_state(held_sha=head.sha, held_reason=decision.reason)
            self.store.add_event(
                "source.held",
                decision.event or decision.reason,
                severity="warning",
                commit=head.sha,
                author=head.author_name,
            )
            return PollResult("held", sha=head.sha, message=decision.reason)
        if decision.action == "stay":
            self._record(head, "unverified", decision.reason, signature_text)
            if decision.event:
                self.store.add_event(
                    "source.unverified", decision.event, severity="error", commit=head.sha, author=head.author_name
                )
            return PollResult("stayed", sha=head.sha, message=decision.reason)
        if decision.event:  # advancing with a warning (signing mode "warn")
            self.store.add_event(
                "source.signature-warning", decision.event, severity="warning", commit=head.sha, author=head.author_name
            )
        if candidate is None:
            return self._reject(head, load_problems, signature_text)

        shrink = self._shrink_problem(candidate)
        if shrink is not None and head.sha not in accepted:
            self._record(head, "held", shrink, signature_text)
            self.store.update_source_state(held_sha=head.sha, held_reason=shrink)
            self.store.add_event("source.held", shrink, severity="warning", commit=head.sha, author=head.author_name)
            return PollResult("held", sha=head.sha, message=shrink)

        try:
            bundles = self.build(candidate, head.sha)
        except RevisionRejected as exc:
            if exc.transient:
                return self._defer(head, exc.problems, signature_text)
            return self._reject(head, exc.problems, signature_text)

        self.registrar.sync(candidate, commit=head.sha, author=head.author_name)
        changed = self._store_bundles(candidate, bundles, head.sha)
        self.current = LoadedRevision(head.sha, root, candidate)
        self._record(head, "applied", None, signature_text)
        self.store.update_source_state(current_sha=head.sha, held_sha=None, held_reason=None, last_error=None)
        self.store.add_event(
            "revision.applied",
            f"applied {head.sha[:12]} {head.subject!r}: {len(changed)} cluster(s) changed"
            + (f" ({', '.join(sorted(changed))})" if changed else ""),
            commit=head.sha,
            author=head.author_name,
        )
        for warning in candidate.warnings:
            self.store.add_event("revision.warning", str(warning), severity="warning", commit=head.sha)
        self._prune_checkouts({head.sha})
        return PollResult("applied", sha=head.sha, message=f"{len(changed)} cluster(s) changed")

    def _record(self, head: Revision, state: str, error: str | None, signature: str | None = None) -> None:
        self.store.record_revision(
            head.sha,
            author=f"{head.author_name} <{head.author_email}>",
            committer=f"{head.committer_name} <{head.committer_email}>",
            committed_at=head.committed_at,
            message=head.message,
            state=state,
            error=error,
            signature=signature,
        )

    def _reject(self, head: Revision, problems: list[SpecProblem], signature: str | None = None) -> PollResult:
        summary = summarize_problems(problems)
        self._record(head, "rejected", summary, signature)
        self.store.update_source_state(last_error=f"revision {head.sha[:12]} rejected:\n{summary}")
        self.store.add_event(
            "revision.rejected",
            f"revision {head.sha[:12]} rejected; clusters stay on the last good revision:\n{summary}",
            severity="error",
            commit=head.sha,
            author=head.author_name,
        )
        if self.current is not None:
            shutil.rmtree(self.checkouts / head.sha, ignore_errors=True)
        return PollResult("rejected", sha=head.sha, message=summary, problems=[str(p) for p in problems])

    def _defer(self, head: Revision, problems: list[SpecProblem], signature: str | None) -> PollResult:
        """A dependency is down: keep the last good state, say so once, try again next poll."""
        summary = summarize_problems(problems)
        previous = self.store.revision(head.sha)
        self._record(head, "pending", summary, signature)
        self.store.update_source_state(last_error=f"revision {head.sha[:12]} waiting:\n{summary}")
        if previous is None or previous.error != summary:
            self.store.add_event(
                "revision.deferred",
                f"revision {head.sha[:12]} cannot be rendered yet; clusters keep their last good state "
                f"and the hub retries on every poll:\n{summary}",
                severity="error",
                commit=head.sha,
                author=head.author_name,
            )
        return PollResult("deferred", sha=head.sha, message=summary, problems=[str(p) for p in problems])

    def _shrink_problem(self, candidate: Inventory) -> str | None:
        active = {c.name for c in self.store.clusters(include_removed=False)}
        if not active:
            return None
        removed = active - set(candidate.clusters)
        share = len(removed) / len(active)
        limit = self.settings.inventory.maxShrinkShare
        if removed and share > limit:
            return (
                f"revision removes {len(removed)} of {len(active)} clusters ({', '.join(sorted(removed))}), "
                f"more than the allowed {limit:.0%}; held until `fleet source accept`"
            )
        return None

    # ------------------------------------------------------------ rendering

    def build(self, inventory: Inventory, revision: str) -> dict[str, Bundle]:
        """Plan, render and stamp secret versions. Raises RevisionRejected; stores nothing."""
        plan = plan_fleet(inventory, self.group_states())
        result = Renderer(inventory).render(plan)
        errors = [p for p in result.problems if p.severity == "error"]
        if errors:
            raise RevisionRejected(errors)
        finished: dict[str, Bundle] = {}
        problems: list[SpecProblem] = []
        transient = False
        sources_by_cluster = {cluster: secret_sources(b.objects) for cluster, b in result.bundles.items()}
        # one resolver per build: a SOPS file shared by many clusters is decrypted once
        resolver = self.secrets.resolver(inventory, any(needs_vault(s) for s in sources_by_cluster.values()))
        for cluster, bundle in result.bundles.items():
            sources = sources_by_cluster[cluster]
            if not sources:
                finished[cluster] = finalize(bundle, {}, {})
                continue
            try:
                # In-memory trial decryption: a tampered file or a missing key rejects the revision here.
                digests = resolver.digests(cluster, sources)
                versions = resolver.versions(cluster, sources)
            except SecretError as exc:
                transient = transient or isinstance(exc, VaultUnavailable)
                problems.append(SpecProblem(file="secrets", field=f"cluster {cluster}", message=str(exc)))
                continue
            finished[cluster] = finalize(bundle, digests, versions)
        if problems:
            raise RevisionRejected(problems, transient=transient)
        return finished

    def _store_bundles(self, inventory: Inventory, bundles: Mapping[str, Bundle], revision: str) -> list[str]:
        changed = []
        for cluster, bundle in bundles.items():
            if self.store.put_desired(cluster, revision, bundle.digest, bundle.epoch, bundle_document(bundle)):
                changed.append(cluster)
            for ref, version in bundle.secret_versions.items():
                self.store.put_secret_version(ref, version, None)
        return changed

    def rerender(self, reason: str) -> PollResult:
        """Render the revision in force again (failover moved, a secret has a new version)."""
        with self.lock:
            if self.current is None:
                return PollResult("unchanged", message="no revision in force yet")
            try:
                bundles = self.build(self.current.inventory, self.current.sha)
            except RevisionRejected as exc:
                summary = summarize_problems(exc.problems)
                self.store.add_event(
                    "render.failed",
                    f"re-render for {reason} failed; clusters keep their last good state:\n{summary}",
                    severity="error",
                    commit=self.current.sha,
                )
                return PollResult("rejected", sha=self.current.sha, message=summary)
            changed = self._store_bundles(self.current.inventory, bundles, self.current.sha)
            if changed:
                self.store.add_event(
                    "render.updated", f"re-rendered for {reason}: {', '.join(sorted(changed))}", commit=self.current.sha
                )
            return PollResult("applied", sha=self.current.sha, message=f"{len(changed)} cluster(s) changed")

    def accept(self, sha: str) -> None:
        with self.lock:
            state = self.store.source_state()
            accepted = [*[s for s in state.accepted if s != sha][-20:], sha]
            self.store.update_source_state(accepted=accepted)
            self.store.add_event("source.accepted", f"{sha[:12]} accepted by an operator", commit=sha)
