"""`fleet validate` output: text lines, JSON, and SARIF 2.1.0 for code-scanning UIs. Pure functions."""

from __future__ import annotations

from typing import Any

from fleet.validate.findings import RULES, Finding
from fleet.validate.run import ValidationReport

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_VERSION = "2.1.0"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def summary_line(report: ValidationReport, strict: bool = False) -> str:
    scope = (
        f"{_count(report.clusters, 'cluster')}, {_count(report.objects, 'object')}, "
        f"Kubernetes {report.kubernetes_version}"
    )
    errors, warnings = len(report.errors), len(report.warnings)
    if report.passed(strict):
        verdict = "OK" if not warnings else f"OK with {_count(warnings, 'warning')}"
    else:
        verdict = f"FAILED: {_count(errors, 'error')}, {_count(warnings, 'warning')}"
        if strict and not errors:
            verdict += " (--strict)"
    return f"fleet validate: {verdict} ({scope})"


def format_text(report: ValidationReport, strict: bool = False) -> str:
    lines = [str(finding) for finding in report.findings]
    lines.append(summary_line(report, strict))
    return "\n".join(lines)


def finding_dict(finding: Finding) -> dict[str, Any]:
    return {
        "rule": finding.rule,
        "severity": finding.severity,
        "file": finding.file,
        "line": finding.line,
        "field": finding.field,
        "message": finding.message,
        "text": str(finding),
    }


def to_json(report: ValidationReport, strict: bool = False) -> dict[str, Any]:
    return {
        "ok": report.passed(strict),
        "strict": strict,
        "kubernetesVersion": report.kubernetes_version,
        "clusters": report.clusters,
        "objects": report.objects,
        "errors": len(report.errors),
        "warnings": len(report.warnings),
        "findings": [finding_dict(f) for f in report.findings],
    }


def _location(finding: Finding, uri_prefix: str) -> dict[str, Any]:
    file = finding.file.split(" (", 1)[0]  # "kustomization.yaml (kustomize output)" -> the file
    uri = file if file != "." else (uri_prefix.rstrip("/") or ".")
    if uri_prefix and file != ".":
        uri = f"{uri_prefix.rstrip('/')}/{file}"
    physical: dict[str, Any] = {"artifactLocation": {"uri": uri, "uriBaseId": "%SRCROOT%"}}
    if finding.line is not None and finding.line >= 1:
        physical["region"] = {"startLine": finding.line}
    return {"physicalLocation": physical}


def to_sarif(
    report: ValidationReport, tool_version: str, strict: bool = False, uri_prefix: str = ""
) -> dict[str, Any]:
    """A SARIF 2.1.0 log: one run, one rule per check, one result per finding.

    Locations are relative to %SRCROOT%; `uri_prefix` is the fleet repo's directory
    inside the Git repository (code-scanning UIs resolve paths from the Git root).
    With --strict, warnings fail the check, so they are reported at level error.
    """
    rule_ids = list(RULES)
    rules = [
        {
            "id": rule.id,
            "name": "".join(part.capitalize() for part in rule.id.split("-")),
            "shortDescription": {"text": rule.title},
            "fullDescription": {"text": rule.description},
            "defaultConfiguration": {"level": rule.level},
        }
        for rule in RULES.values()
    ]
    results = []
    for finding in report.findings:
        level = "error" if finding.severity == "error" or strict else "warning"
        results.append(
            {
                "ruleId": finding.rule,
                "ruleIndex": rule_ids.index(finding.rule),
                "level": level,
                "message": {"text": finding.reason},
                "locations": [_location(finding, uri_prefix)],
            }
        )
    return {
        "$schema": SARIF_SCHEMA,
        "version": SARIF_VERSION,
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "fleet validate",
                        "version": tool_version,
                        "rules": rules,
                    }
                },
                "columnKind": "unicodeCodePoints",
                "results": results,
                "properties": {"kubernetesVersion": report.kubernetes_version},
            }
        ],
    }
