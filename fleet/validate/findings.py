"""What `fleet validate` reports: findings tagged with the check (rule) that raised them.

The loader, planner and renderer report `SpecProblem`s; `classify` decides
which check each belongs to, so CI can show and suppress them per rule.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from fleet.errors import SpecProblem

Severity = Literal["error", "warning"]
Stage = Literal["inventory", "render"]


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    description: str
    level: Severity


RULES: dict[str, Rule] = {
    rule.id: rule
    for rule in (
        Rule(
            "fleet-schema",
            "Fleet spec schema",
            "clusters/*.yaml, apps/*/fleet.yaml and fleet.yaml must match their schemas and agree with each other.",
            "error",
        ),
        Rule("dependency-cycle", "dependsOn cycle", "Apps may not depend on each other in a cycle.", "error"),
        Rule(
            "kubernetes-schema",
            "Kubernetes schema",
            "Every rendered manifest must match the Kubernetes OpenAPI schema (or its CRD's schema); "
            "unknown fields are errors.",
            "error",
        ),
        Rule(
            "kubernetes-no-schema",
            "No schema for a custom resource",
            "A custom resource whose CRD is not in the same bundle cannot be validated.",
            "warning",
        ),
        Rule(
            "plaintext-secret",
            "Plaintext Secret",
            "A Secret in Git may only carry vault: references; values belong in SOPS files under secrets/.",
            "error",
        ),
        Rule(
            "sops-file",
            "SOPS file",
            "Every file under secrets/ must be a SOPS-encrypted Secret with a well-formed sops block and readable metadata.",
            "error",
        ),
        Rule(
            "unscoped-secret",
            "Secret file reaches no cluster",
            "A file under secrets/ that no scope covers is delivered to no cluster.",
            "warning",
        ),
        Rule(
            "vault-ref",
            "Vault reference",
            "vault:<mount>/<path>#<key> references must be well-formed and inside the cluster's allowed prefixes.",
            "error",
        ),
        Rule(
            "duplicate-object",
            "Duplicate object",
            "An object may be declared only once in a cluster's bundle.",
            "error",
        ),
        Rule(
            "target-selects-nothing",
            "Target selects no cluster",
            "An app target whose selector matches no cluster is probably a typo.",
            "warning",
        ),
        Rule(
            "render",
            "Rendering",
            "Manifests must parse and render for every target cluster (values, Kustomize, shape).",
            "error",
        ),
    )
}


@dataclass(frozen=True)
class Finding:
    """One problem, located as precisely as we can: file, line and field."""

    rule: str
    severity: Severity
    file: str
    message: str
    field: str = ""
    line: int | None = None

    @property
    def reason(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.severity}: {self.reason}"


_CYCLE = re.compile(r"^dependency cycle\b")
_PLAINTEXT = re.compile(r"^plaintext Secret (data|value) in Git is refused")
_DUPLICATE = re.compile(r"is declared twice for cluster|is already declared by")
_VAULT_PREFIX = re.compile(r"is not allowed for cluster .*allowed prefixes")
# A malformed reference as the renderer reports it: "<section>.<key>: 'vault:...': reason"
MALFORMED_VAULT_REF = re.compile(r"^(stringData|data)\.[^:]+: 'vault:")


def classify(problem: SpecProblem, stage: Stage) -> str:
    """The rule a loader/planner/renderer problem belongs to."""
    message = problem.message
    if _CYCLE.match(message):
        return "dependency-cycle"
    if message == "selects no cluster":
        return "target-selects-nothing"
    if stage == "inventory":
        return "fleet-schema"
    if _PLAINTEXT.match(message):
        return "plaintext-secret"
    if _DUPLICATE.search(message):
        return "duplicate-object"
    if _VAULT_PREFIX.search(message) or MALFORMED_VAULT_REF.match(message):
        return "vault-ref"
    if problem.file.startswith("secrets/"):
        return "sops-file"
    return "render"


def from_problem(problem: SpecProblem, stage: Stage) -> Finding:
    severity: Severity = "warning" if problem.severity == "warning" else "error"
    return Finding(
        rule=classify(problem, stage),
        severity=severity,
        file=problem.file,
        message=problem.message,
        field=problem.field,
        line=problem.line,
    )


def unique_sorted(findings: Iterable[Finding]) -> list[Finding]:
    """Each finding once, errors and warnings interleaved in file and line order."""
    seen: dict[tuple[str, str, int | None, str, str], Finding] = {}
    for finding in findings:
        key = (finding.rule, finding.file, finding.line, finding.field, finding.message)
        seen.setdefault(key, finding)
    return sorted(
        seen.values(), key=lambda f: (f.file, f.line or 0, f.severity != "error", f.rule, f.field, f.message)
    )
