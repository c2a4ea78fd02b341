"""`fleet validate`: every check on a checkout, with no hub, no cluster and no keys."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path

from fleet.errors import SpecError, SpecProblem
from fleet.inventory.loader import (
    APPS_DIR,
    CLUSTERS_DIR,
    SETTINGS_FILE,
    Inventory,
    load_apps,
    load_clusters,
    load_inventory,
    load_settings,
)
from fleet.inventory.yamlfile import ProblemError, YamlDocument, read_yaml_file
from fleet.plan.placement import plan_fleet
from fleet.render.bundle import Renderer
from fleet.secrets.errors import VaultRefError
from fleet.secrets.refs import parse_vault_ref
from fleet.validate.checks import schema_findings, vault_ref_findings
from fleet.validate.findings import Finding, classify, from_problem, unique_sorted
from fleet.validate.kubeschema import DEFAULT_KUBERNETES_VERSION, KubeSchemas
from fleet.validate.secretfiles import check_secrets_dir


@dataclass(frozen=True)
class ValidationReport:
    root: Path
    findings: tuple[Finding, ...]
    kubernetes_version: str
    clusters: int = 0
    objects: int = 0

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warning"]

    def passed(self, strict: bool = False) -> bool:
        return not self.errors and not (strict and self.warnings)


def _rotation_ref_findings(inventory: Inventory) -> list[Finding]:
    findings = []
    for index, policy in enumerate(inventory.settings.secrets.rotation):
        try:
            parse_vault_ref(policy.ref)
        except VaultRefError as exc:
            line = None
            try:
                docs = read_yaml_file(inventory.root / SETTINGS_FILE, SETTINGS_FILE)
                line = docs[0].line_of(["secrets", "rotation", index, "ref"]) if docs else None
            except ProblemError:
                pass
            findings.append(
                Finding("vault-ref", "error", SETTINGS_FILE, str(exc), f"secrets.rotation[{index}].ref", line)
            )
    return findings


def partial_inventory(root: Path) -> Inventory:
    """The parts of a broken checkout that did load, so the other checks can still run on them.

    Its problems were already reported by `load_inventory`; they are not collected again.
    """
    ignored: list[SpecProblem] = []
    files: dict[str, str] = {}
    settings = load_settings(root, ignored)
    clusters = load_clusters(root, ignored, files)
    apps = load_apps(root, ignored, files)
    return Inventory(root=root, settings=settings, clusters=clusters, apps=apps, files=files)


_FIELD_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def field_parts(field: str) -> list[str | int]:
    """"targets[2].clusterSelector" -> ["targets", 2, "clusterSelector"]."""
    return [int(index) if index else name for name, index in _FIELD_PART.findall(field)]


def with_lines(root: Path, findings: list[Finding]) -> list[Finding]:
    """Fill in the line of findings that name a field of a YAML file but no line (e.g. dependsOn cycles)."""
    docs: dict[str, YamlDocument | None] = {}
    located = []
    for finding in findings:
        if finding.line is None and finding.field and finding.file.endswith((".yaml", ".yml")):
            if finding.file not in docs:
                try:
                    parsed = read_yaml_file(root / finding.file, finding.file)
                    docs[finding.file] = parsed[0] if len(parsed) == 1 else None
                except ProblemError:
                    docs[finding.file] = None
            doc = docs[finding.file]
            parts = field_parts(finding.field)
            # only fields that start at the top of the file ("Secret ns/name ..." is no field path)
            if doc is not None and isinstance(doc.data, dict) and parts and parts[0] in doc.data:
                finding = replace(finding, line=doc.line_of(parts))
        located.append(finding)
    return located


def _looks_like_fleet_repo(root: Path) -> bool:
    return any((root / name).exists() for name in (SETTINGS_FILE, CLUSTERS_DIR, APPS_DIR))


def validate_repo(root: Path | str, kubernetes_version: str = DEFAULT_KUBERNETES_VERSION) -> ValidationReport:
    """Run every check on the fleet repo checked out at `root`. Raises UnsupportedVersion only."""
    root = Path(root).resolve()
    schemas = KubeSchemas(kubernetes_version)
    findings: list[Finding] = []
    if not _looks_like_fleet_repo(root):
        findings.append(
            Finding("fleet-schema", "error", ".", f"no {SETTINGS_FILE}, {CLUSTERS_DIR}/ or {APPS_DIR}/ here: is this the fleet repo?")
        )
        return ValidationReport(root, tuple(findings), schemas.version)
    partial = False
    try:
        inventory = load_inventory(root)
    except SpecError as exc:
        findings.extend(from_problem(p, "inventory") for p in exc.problems)
        inventory = partial_inventory(root)
        partial = True

    # Scoping reads fleet.yaml's scopes: with a broken inventory they may be wrong, so skip it.
    findings.extend(check_secrets_dir(root, None if partial else inventory.settings.secrets.scopes))
    findings.extend(_rotation_ref_findings(inventory))
    renderer = Renderer(inventory)
    # Apps that target no cluster are not rendered, but their manifests are still checked.
    for app in inventory.apps:
        findings.extend(from_problem(p, "render") for p in renderer.manifests(app)[1] if p.severity == "error")
    try:
        result = renderer.render(plan_fleet(inventory))
    except Exception:
        if not partial:
            raise
        # Best effort on an inventory already known to be broken (e.g. a failover group
        # without a primary): its own errors are reported, the remaining checks wait for a fix.
        return ValidationReport(root, tuple(unique_sorted(with_lines(root, findings))), schemas.version)
    for problem in result.problems:
        if classify(problem, "render") == "vault-ref":
            continue  # vault_ref_findings reports it at the reference's own line
        if partial and problem.field == "dependsOn":
            continue  # may name an app left out because its fleet.yaml is invalid
        findings.append(from_problem(problem, "render"))
    findings.extend(from_problem(p, "render") for p in result.warnings)
    findings.extend(
        vault_ref_findings(
            result.bundles, renderer.provenance, inventory.files, inventory.settings.secrets.vault.allowedPrefixes
        )
    )
    findings.extend(schema_findings(result.bundles, renderer.provenance, schemas, inventory.files))
    return ValidationReport(
        root=root,
        findings=tuple(unique_sorted(with_lines(root, findings))),
        kubernetes_version=schemas.version,
        clusters=len(result.bundles),
        objects=sum(len(b.objects) for b in result.bundles.values()),
    )
