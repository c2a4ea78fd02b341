"""`fleet validate`: every check on a checkout, with no hub, no cluster and no keys."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fleet.errors import SpecError
from fleet.inventory.loader import APPS_DIR, CLUSTERS_DIR, SETTINGS_FILE, Inventory, load_inventory
from fleet.inventory.yamlfile import ProblemError, read_yaml_file
from fleet.plan.placement import plan_fleet
from fleet.render.bundle import Renderer
from fleet.secrets.errors import VaultRefError
from fleet.secrets.refs import parse_vault_ref
from fleet.validate.checks import schema_findings, vault_ref_findings
from fleet.validate.findings import MALFORMED_VAULT_REF, Finding, from_problem, unique_sorted
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
    try:
        inventory = load_inventory(root)
    except SpecError as exc:
        findings.extend(from_problem(p, "inventory") for p in exc.problems)
        # The secrets checks need no inventory; scoping does (it reads fleet.yaml's scopes).
        findings.extend(check_secrets_dir(root, None))
        return ValidationReport(root, tuple(unique_sorted(findings)), schemas.version)

    findings.extend(check_secrets_dir(root, inventory.settings.secrets.scopes))
    findings.extend(_rotation_ref_findings(inventory))
    renderer = Renderer(inventory)
    result = renderer.render(plan_fleet(inventory))
    # Apps that target no cluster are not rendered, but their manifests are still checked.
    for app in inventory.apps:
        findings.extend(from_problem(p, "render") for p in renderer.manifests(app)[1] if p.severity == "error")
    for problem in result.problems:
        if problem.field == "" and MALFORMED_VAULT_REF.match(problem.message):
            continue  # vault_ref_findings reports it at the reference's own line
        findings.append(from_problem(problem, "render"))
    findings.extend(from_problem(p, "render") for p in result.warnings)
    findings.extend(vault_ref_findings(result.bundles, renderer.provenance, inventory.files))
    findings.extend(schema_findings(result.bundles, renderer.provenance, schemas, inventory.files))
    return ValidationReport(
        root=root,
        findings=tuple(unique_sorted(findings)),
        kubernetes_version=schemas.version,
        clusters=len(result.bundles),
        objects=sum(len(b.objects) for b in result.bundles.values()),
    )
