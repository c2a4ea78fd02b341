"""Load a checkout of the fleet repo into an Inventory, or explain why not.

A revision is all or nothing: one bad file rejects the whole revision, so the
hub keeps the last good one in force. The loader therefore collects every
problem instead of stopping at the first, and the SpecError lists them all.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from fleet.errors import SpecError, SpecProblem
from fleet.inventory.models import AppSpec, ClusterSpec, FleetSettings, is_dns1123_label
from fleet.inventory.yamlfile import (
    ProblemError,
    YamlDocument,
    iter_yaml_files,
    read_yaml_file,
    validation_problems,
)

SETTINGS_FILE = "fleet.yaml"
CLUSTERS_DIR = "clusters"
APPS_DIR = "apps"
SECRETS_DIR = "secrets"

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Inventory:
    """Everything a revision of the fleet repo declares, validated."""

    root: Path
    settings: FleetSettings
    clusters: Mapping[str, ClusterSpec]
    apps: Mapping[str, AppSpec]
    # "clusters/<name>" / "apps/<name>" -> repo-relative file that declared it
    files: Mapping[str, str] = field(default_factory=dict)
    warnings: tuple[SpecProblem, ...] = ()

    def app_dir(self, app: str) -> Path:
        return self.root / APPS_DIR / app

    def failover_groups(self) -> dict[str, list[ClusterSpec]]:
        groups: dict[str, list[ClusterSpec]] = {}
        for cluster in self.clusters.values():
            if cluster.failover is not None:
                groups.setdefault(cluster.failover.group, []).append(cluster)
        return groups


def check_inside_repo(root: Path, path: Path, file: str) -> SpecProblem | None:
    """A symlink or path that leaves the repo is refused."""
    try:
        resolved = path.resolve(strict=False)
    except (OSError, RuntimeError):
        return SpecProblem(file=file, field="", message="path cannot be resolved (symlink loop?)")
    if resolved != root and root not in resolved.parents:
        return SpecProblem(file=file, field="", message="path leads outside the repository; refused")
    return None


def _validate(model: type[M], doc: YamlDocument, data: Any, problems: list[SpecProblem]) -> M | None:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems.extend(validation_problems(doc, exc))
        return None


def _single_document(path: Path, file: str, problems: list[SpecProblem]) -> YamlDocument | None:
    try:
        docs = read_yaml_file(path, file)
    except ProblemError as exc:
        problems.append(exc.problem)
        return None
    if len(docs) != 1 or not isinstance(docs[0].data, dict):
        problems.append(SpecProblem(file=file, field="", message="expected exactly one YAML mapping"))
        return None
    return docs[0]


def load_settings(root: Path, problems: list[SpecProblem]) -> FleetSettings:
    path = root / SETTINGS_FILE
    if not path.exists():
        return FleetSettings()
    escaped = check_inside_repo(root, path, SETTINGS_FILE)
    if escaped:
        problems.append(escaped)
        return FleetSettings()
    doc = _single_document(path, SETTINGS_FILE, problems)
    if doc is None:
        return FleetSettings()
    return _validate(FleetSettings, doc, doc.data, problems) or FleetSettings()


def load_clusters(root: Path, problems: list[SpecProblem], files: dict[str, str]) -> dict[str, ClusterSpec]:
    clusters: dict[str, ClusterSpec] = {}
    seen: dict[str, str] = {}  # lower-cased name -> file
    for path in iter_yaml_files(root / CLUSTERS_DIR):
        file = f"{CLUSTERS_DIR}/{path.name}"
        escaped = check_inside_repo(root, path, file)
        if escaped:
            problems.append(escaped)
            continue
        doc = _single_document(path, file, problems)
        if doc is None:
            continue
        stem = path.stem
        name = doc.data.get("name")
        if isinstance(name, str) and name != stem:
            problems.append(
                SpecProblem(
                    file=file,
                    field="name",
                    line=doc.line_of(["name"]),
                    message=f"name {name!r} must equal the file name {stem!r}",
                )
            )
            continue
        spec = _validate(ClusterSpec, doc, doc.data, problems)
        if spec is None:
            continue
        key = spec.name.lower()
        if key in seen:
            problems.append(
                SpecProblem(
                    file=file,
                    field="name",
                    line=doc.line_of(["name"]),
                    message=f"cluster {spec.name!r} is already declared in {seen[key]}",
                )
            )
            continue
        seen[key] = file
        clusters[spec.name] = spec
        files[f"clusters/{spec.name}"] = file
    return clusters


def load_apps(root: Path, problems: list[SpecProblem], files: dict[str, str]) -> dict[str, AppSpec]:
    apps: dict[str, AppSpec] = {}
    apps_dir = root / APPS_DIR
    if not apps_dir.is_dir():
        return apps
    seen: dict[str, str] = {}
    for app_dir in sorted(p for p in apps_dir.iterdir() if p.is_dir() or p.is_symlink()):
        if app_dir.name.startswith("."):
            continue
        rel = f"{APPS_DIR}/{app_dir.name}"
        escaped = check_inside_repo(root, app_dir, rel)
        if escaped:
            problems.append(escaped)
            continue
        if not is_dns1123_label(app_dir.name):
            problems.append(
                SpecProblem(file=rel, field="", message=f"app directory {app_dir.name!r} is not a valid DNS-1123 name")
            )
            continue
        file = f"{rel}/fleet.yaml"
        spec_path = app_dir / "fleet.yaml"
        if not spec_path.exists():
            problems.append(SpecProblem(file=file, field="", message="missing: every app needs a fleet.yaml"))
            continue
        escaped = check_inside_repo(root, spec_path, file)
        if escaped:
            problems.append(escaped)
            continue
        doc = _single_document(spec_path, file, problems)
        if doc is None:
            continue
        data = dict(doc.data)
        declared = data.setdefault("name", app_dir.name)
        if declared != app_dir.name:
            problems.append(
                SpecProblem(
                    file=file,
                    field="name",
                    line=doc.line_of(["name"]),
                    message=f"name {declared!r} must equal the directory name {app_dir.name!r}",
                )
            )
            continue
        spec = _validate(AppSpec, doc, data, problems)
        if spec is None:
            continue
        manifests = (app_dir / spec.path).resolve()
        if check_inside_repo(app_dir.resolve(), manifests, file) is not None:
            problems.append(
                SpecProblem(file=file, field="path", line=doc.line_of(["path"]), message="path leaves the app directory")
            )
            continue
        if spec.name.lower() in seen:
            problems.append(SpecProblem(file=file, field="name", message=f"app {spec.name!r} is declared twice"))
            continue
        seen[spec.name.lower()] = file
        apps[spec.name] = spec
        files[f"apps/{spec.name}"] = file
    return apps


def dependency_cycles(apps: Mapping[str, AppSpec]) -> list[list[str]]:
    """Every distinct cycle in `dependsOn`, each as the list of apps around it."""
    cycles: list[list[str]] = []
    seen_cycles: set[frozenset[str]] = set()
    state: dict[str, int] = {}  # 1 visiting, 2 done
    stack: list[str] = []

    def visit(name: str) -> None:
        state[name] = 1
        stack.append(name)
        for dep in apps[name].dependsOn:
            if dep not in apps:
                continue
            if state.get(dep) == 1:
                cycle = stack[stack.index(dep) :]
                key = frozenset(cycle)
                if key not in seen_cycles:
                    seen_cycles.add(key)
                    cycles.append([*cycle, dep])
            elif dep not in state:
                visit(dep)
        stack.pop()
        state[name] = 2

    for name in sorted(apps):
        if name not in state:
            visit(name)
    return cycles


def _cross_checks(
    settings: FleetSettings,
    clusters: Mapping[str, ClusterSpec],
    apps: Mapping[str, AppSpec],
    files: Mapping[str, str],
) -> tuple[list[SpecProblem], list[SpecProblem]]:
    problems: list[SpecProblem] = []
    warnings: list[SpecProblem] = []
    for app in apps.values():
        file = files[f"apps/{app.name}"]
        for dep in app.dependsOn:
            if dep not in apps:
                problems.append(SpecProblem(file=file, field="dependsOn", message=f"unknown app {dep!r}"))
    for cycle in dependency_cycles(apps):
        file = files[f"apps/{cycle[0]}"]
        problems.append(
            SpecProblem(file=file, field="dependsOn", message="dependency cycle: " + " -> ".join(cycle))
        )

    groups: dict[str, list[ClusterSpec]] = {}
    for cluster in clusters.values():
        if cluster.failover is not None:
            groups.setdefault(cluster.failover.group, []).append(cluster)
    for group, members in sorted(groups.items()):
        primaries = [c.name for c in members if c.failover and c.failover.role == "primary"]
        if len(primaries) != 1:
            file = files[f"clusters/{members[0].name}"]
            problems.append(
                SpecProblem(
                    file=file,
                    field="failover.role",
                    message=f"failover group {group!r} needs exactly one primary, has {len(primaries)}"
                    + (f" ({', '.join(sorted(primaries))})" if primaries else ""),
                )
            )
    for app in apps.values():
        if app.failover and app.failoverGroup not in groups:
            problems.append(
                SpecProblem(
                    file=files[f"apps/{app.name}"],
                    field="failoverGroup",
                    message=f"no cluster belongs to failover group {app.failoverGroup!r}",
                )
            )
    for group in settings.failover.groups:
        if group not in groups:
            warnings.append(
                SpecProblem(
                    file=SETTINGS_FILE,
                    field=f"failover.groups.{group}",
                    message="no cluster belongs to this group",
                    severity="warning",
                )
            )
        dns = settings.failover.groups[group].dns
        if dns is not None:
            for name in dns.targets:
                if name not in clusters:
                    problems.append(
                        SpecProblem(
                            file=SETTINGS_FILE,
                            field=f"failover.groups.{group}.dns.targets.{name}",
                            message="unknown cluster",
                        )
                    )
    return problems, warnings


def load_inventory(root: Path | str) -> Inventory:
    """Parse and validate a checkout. Raises SpecError listing every problem."""
    root = Path(root).resolve()
    problems: list[SpecProblem] = []
    files: dict[str, str] = {}
    settings = load_settings(root, problems)
    clusters = load_clusters(root, problems, files)
    apps = load_apps(root, problems, files)
    if not problems:
        cross, warnings = _cross_checks(settings, clusters, apps, files)
        problems.extend(cross)
    else:
        warnings = []
    if problems:
        raise SpecError(problems)
    return Inventory(
        root=root, settings=settings, clusters=clusters, apps=apps, files=files, warnings=tuple(warnings)
    )


def relative_path(root: Path, path: Path) -> str:
    return os.path.relpath(path, root).replace(os.sep, "/")
