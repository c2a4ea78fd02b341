"""Per-cluster bundles: the ordered, labelled objects a cluster should run, and their digest.

Rendering is deterministic: the same inventory, plan and secret versions give
byte-identical objects and the same digest, so agents see 304s when nothing
that concerns their cluster changed, whatever else the commit touched.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from fleet.errors import SpecProblem
from fleet.inventory.loader import SECRETS_DIR, Inventory, relative_path
from fleet.plan.placement import FleetPlan, Placement
from fleet.protocol import LABEL_APP, LABEL_CLUSTER, LABEL_MANAGED_BY, MANAGED_BY_VALUE, AppPolicy, object_key
from fleet.render.customize import (
    apply_image_overrides,
    apply_replica_overrides,
    default_namespace,
    scale_to_zero,
)
from fleet.render.kinds import crd_scopes, wave
from fleet.render.manifests import SourceObject, load_app_manifests
from fleet.render.secretrefs import annotate_secret_digests, mark_vault_placeholder, sops_placeholder
from fleet.render.substitute import UnknownValue, substitute
from fleet.secrets.errors import SecretError
from fleet.secrets.refs import check_allowed, find_vault_refs
from fleet.secrets.scope import secret_files_for
from fleet.secrets.sops import secret_manifest

SECRETS_APP_LABEL = "fleet.secrets"  # label value for objects rendered from secrets/ (not a valid app name)


@dataclass(frozen=True)
class Bundle:
    cluster: str
    objects: tuple[dict[str, Any], ...]
    apps: tuple[AppPolicy, ...]
    epoch: int
    prune_enabled: bool
    max_delete_share: float
    poll_interval: int
    drift_interval: int
    secret_versions: Mapping[str, str] = field(default_factory=dict)
    digest: str = ""

    def keys(self) -> list[str]:
        return [object_key(o) for o in self.objects]


@dataclass(frozen=True)
class RenderResult:
    bundles: Mapping[str, Bundle]
    problems: tuple[SpecProblem, ...]
    warnings: tuple[SpecProblem, ...]


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def compute_digest(bundle: Bundle) -> str:
    """sha256 over everything an agent acts on (not the revision: unrelated commits keep the digest)."""
    content = {
        "objects": list(bundle.objects),
        "apps": [a.model_dump() for a in bundle.apps],
        "epoch": bundle.epoch,
        "prune": {"enabled": bundle.prune_enabled, "maxDeleteShare": bundle.max_delete_share},
        "intervals": [bundle.poll_interval, bundle.drift_interval],
        "secretVersions": dict(bundle.secret_versions),
    }
    return "sha256:" + hashlib.sha256(canonical_json(content)).hexdigest()


def finalize(
    bundle: Bundle, secret_digests: Mapping[str, str], secret_versions: Mapping[str, str] | None = None
) -> Bundle:
    """Stamp secret digests (keyed HMACs, never values) and compute the bundle digest."""
    objects = [copy.deepcopy(o) for o in bundle.objects]
    annotate_secret_digests(objects, secret_digests)
    done = replace(bundle, objects=tuple(objects), secret_versions=dict(secret_versions or {}))
    return replace(done, digest=compute_digest(done))


def sort_key(obj: dict[str, Any], app_rank: int) -> tuple[int, int, str, str, str]:
    meta = obj.get("metadata") or {}
    return (wave(obj), app_rank, str(obj.get("kind")), str(meta.get("namespace", "")), str(meta.get("name", "")))


def _label(obj: dict[str, Any], app: str, cluster: str) -> None:
    meta = obj.setdefault("metadata", {})
    labels = meta.get("labels")
    if not isinstance(labels, dict):
        labels = {}
        meta["labels"] = labels
    labels[LABEL_MANAGED_BY] = MANAGED_BY_VALUE
    labels[LABEL_APP] = app
    labels[LABEL_CLUSTER] = cluster


class Renderer:
    """Renders bundles for one revision. Parses each app's manifests and each secret file once."""

    def __init__(self, inventory: Inventory) -> None:
        self.inventory = inventory
        self._manifests: dict[str, tuple[list[SourceObject], list[SpecProblem]]] = {}
        self._secret_files: list[str] | None = None
        self._skeletons: dict[str, dict[str, Any] | SpecProblem] = {}
        # (cluster, object key) -> where the object was written, so checks on rendered
        # objects (`fleet validate`) can point at a file and line
        self.provenance: dict[tuple[str, str], SourceObject] = {}

    # ------------------------------------------------------------ sources

    def manifests(self, app: str) -> tuple[list[SourceObject], list[SpecProblem]]:
        if app not in self._manifests:
            self._manifests[app] = load_app_manifests(self.inventory.root, self.inventory.apps[app])
        return self._manifests[app]

    def secret_files(self) -> list[str]:
        if self._secret_files is None:
            base = self.inventory.root / SECRETS_DIR
            files: list[str] = []
            if base.is_dir():
                for path in sorted(base.rglob("*")):
                    rel_parts = path.relative_to(base).parts
                    if path.is_file() and path.suffix in (".yaml", ".yml", ".json") and not any(
                        p.startswith(".") for p in rel_parts
                    ):
                        files.append(relative_path(self.inventory.root, path))
            self._secret_files = files
        return self._secret_files

    def _skeleton(self, file: str) -> dict[str, Any] | SpecProblem:
        if file not in self._skeletons:
            path: Path = self.inventory.root / file
            try:
                if path.is_symlink() and self.inventory.root not in path.resolve().parents:
                    raise SecretError(f"{file}: path leads outside the repository; refused")
                self._skeletons[file] = secret_manifest(path.read_text(encoding="utf-8"), file)
            except (SecretError, OSError, UnicodeDecodeError) as exc:
                message = str(exc).removeprefix(f"{file}: ")
                self._skeletons[file] = SpecProblem(file=file, field="", message=message)
        return self._skeletons[file]

    # ------------------------------------------------------------ rendering

    def _render_placement(
        self, placement: Placement, problems: list[SpecProblem]
    ) -> list[dict[str, Any]]:
        app = self.inventory.apps[placement.app]
        sources, load_problems = self.manifests(placement.app)
        problems.extend(p for p in load_problems if p.severity == "error")
        rendered: list[dict[str, Any]] = []
        origins: dict[int, SourceObject] = {}
        for source in sources:
            try:
                obj = substitute(source.obj, placement.values)
            except UnknownValue as exc:
                problems.append(
                    source.problem(exc.path, f"unknown value ${{{exc.name}}} for cluster {placement.cluster!r}")
                )
                continue
            rendered.append(obj)
            origins[id(obj)] = source
        scopes = crd_scopes(rendered)
        for obj in rendered:
            default_namespace(obj, app.namespace, scopes)
            apply_image_overrides(obj, placement.target.images)
            apply_replica_overrides(obj, placement.target.replicas)
            if placement.scale_to_zero:
                scale_to_zero(obj)
            if mark_vault_placeholder(obj):
                try:
                    refs = find_vault_refs(obj)
                except SecretError as exc:
                    origin = origins.get(id(obj))
                    problems.append(
                        SpecProblem(
                            file=origin.file if origin else self.inventory.files.get(f"apps/{app.name}", ""),
                            field="",
                            line=origin.line() if origin else None,
                            message=str(exc),
                        )
                    )
                    refs = []
                for path, ref in refs:
                    try:
                        check_allowed(ref, placement.cluster, self.inventory.settings.secrets.vault.allowedPrefixes)
                    except SecretError as exc:
                        meta = obj.get("metadata") or {}
                        problems.append(
                            SpecProblem(
                                file=self.inventory.files.get(f"apps/{app.name}", ""),
                                field=f"Secret {meta.get('namespace', '')}/{meta.get('name', '')} {path}",
                                message=str(exc),
                            )
                        )
        if app.namespace and not any(
            o.get("kind") == "Namespace" and (o.get("metadata") or {}).get("name") == app.namespace for o in rendered
        ):
            rendered.insert(0, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": app.namespace}})
        for obj in rendered:
            _label(obj, app.name, placement.cluster)
            origin = origins.get(id(obj))
            if origin is not None:
                self.provenance.setdefault((placement.cluster, object_key(obj)), origin)
        return rendered

    def render_cluster(self, cluster: str, placements: Sequence[Placement], epoch: int) -> tuple[Bundle, list[SpecProblem]]:
        problems: list[SpecProblem] = []
        ranked: list[tuple[tuple[int, int, str, str, str], dict[str, Any]]] = []
        owners: dict[str, str] = {}
        for rank, placement in enumerate(placements):
            for obj in self._render_placement(placement, problems):
                key = object_key(obj)
                if key in owners:
                    if obj.get("kind") == "Namespace" and len(obj.get("metadata", {})) <= 2:
                        continue  # an implicit namespace another app already brings
                    problems.append(
                        SpecProblem(
                            file=self.inventory.files.get(f"apps/{placement.app}", ""),
                            field="",
                            message=f"object {key} is declared twice for cluster {cluster!r} "
                            f"(apps {owners[key]} and {placement.app})",
                        )
                    )
                    continue
                owners[key] = placement.app
                ranked.append((sort_key(obj, rank), obj))

        spec = self.inventory.clusters[cluster]
        for file in secret_files_for(spec, self.secret_files(), self.inventory.settings.secrets.scopes):
            skeleton = self._skeleton(file)
            if isinstance(skeleton, SpecProblem):
                problems.append(skeleton)
                continue
            obj = sops_placeholder(skeleton, file)
            _label(obj, SECRETS_APP_LABEL, cluster)
            key = object_key(obj)
            if key in owners:
                problems.append(
                    SpecProblem(file=file, field="metadata.name", message=f"Secret {key} is already declared by {owners[key]}")
                )
                continue
            owners[key] = file
            self.provenance.setdefault((cluster, key), SourceObject(obj=dict(skeleton), file=file))
            ranked.append((sort_key(obj, -1), obj))

        ranked.sort(key=lambda item: item[0])
        settings = self.inventory.settings
        apps = tuple(
            AppPolicy(name=p.app, selfHeal=self.inventory.apps[p.app].selfHeal, prune=self.inventory.apps[p.app].prune)
            for p in placements
        )
        bundle = Bundle(
            cluster=cluster,
            objects=tuple(obj for _, obj in ranked),
            apps=apps,
            epoch=epoch,
            prune_enabled=settings.prune.enabled,
            max_delete_share=settings.prune.maxDeleteShare,
            poll_interval=settings.agent.pollInterval,
            drift_interval=settings.agent.driftInterval,
        )
        return replace(bundle, digest=compute_digest(bundle)), problems

    def render(self, plan: FleetPlan) -> RenderResult:
        bundles: dict[str, Bundle] = {}
        problems: list[SpecProblem] = list(plan.problems)
        warnings: list[SpecProblem] = [*self.inventory.warnings, *plan.warnings]
        for app in self.inventory.apps:
            warnings.extend(p for p in self.manifests(app)[1] if p.severity == "warning")
        for cluster, placements in sorted(plan.placements.items()):
            bundle, cluster_problems = self.render_cluster(cluster, placements, plan.epochs.get(cluster, 0))
            bundles[cluster] = bundle
            problems.extend(cluster_problems)
        return RenderResult(bundles=bundles, problems=tuple(_unique(problems)), warnings=tuple(_unique(warnings)))


def _unique(problems: Sequence[SpecProblem]) -> list[SpecProblem]:
    seen: set[SpecProblem] = set()
    out = []
    for problem in problems:
        if problem not in seen:
            seen.add(problem)
            out.append(problem)
    return out


def render_fleet(inventory: Inventory, plan: FleetPlan) -> RenderResult:
    return Renderer(inventory).render(plan)
