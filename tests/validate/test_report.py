"""Report formats: SARIF 2.1.0 shaped as code-scanning tools expect, JSON, and the rule classification."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import git
import jsonschema
import pytest
from click.testing import CliRunner

from fleet.cli import main
from fleet.errors import SpecProblem
from fleet.validate import RULES, ValidationReport
from fleet.validate.findings import Finding, classify, unique_sorted
from fleet.validate.report import to_sarif
from tests.validate.example import copy_example, edit

# The parts of the OASIS SARIF 2.1.0 schema that our log uses, with their constraints.
_MESSAGE = {"type": "object", "required": ["text"], "properties": {"text": {"type": "string"}}}
_LEVEL = {"enum": ["none", "note", "warning", "error"]}
SARIF_SUBSET: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["version", "runs"],
    "properties": {
        "$schema": {"type": "string", "format": "uri"},
        "version": {"enum": ["2.1.0"]},
        "runs": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["tool"],
                "properties": {
                    "tool": {
                        "type": "object",
                        "required": ["driver"],
                        "properties": {
                            "driver": {
                                "type": "object",
                                "required": ["name"],
                                "properties": {
                                    "name": {"type": "string"},
                                    "version": {"type": "string"},
                                    "rules": {
                                        "type": "array",
                                        "uniqueItems": True,
                                        "items": {
                                            "type": "object",
                                            "required": ["id"],
                                            "properties": {
                                                "id": {"type": "string"},
                                                "name": {"type": "string"},
                                                "shortDescription": _MESSAGE,
                                                "fullDescription": _MESSAGE,
                                                "defaultConfiguration": {
                                                    "type": "object",
                                                    "properties": {"level": _LEVEL},
                                                },
                                            },
                                        },
                                    },
                                },
                            }
                        },
                    },
                    "columnKind": {"enum": ["utf16CodeUnits", "unicodeCodePoints"]},
                    "results": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["message"],
                            "properties": {
                                "ruleId": {"type": "string"},
                                "ruleIndex": {"type": "integer", "minimum": -1},
                                "level": _LEVEL,
                                "message": _MESSAGE,
                                "locations": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "properties": {
                                            "physicalLocation": {
                                                "type": "object",
                                                "required": ["artifactLocation"],
                                                "properties": {
                                                    "artifactLocation": {
                                                        "type": "object",
                                                        "properties": {
                                                            "uri": {"type": "string", "format": "uri-reference"},
                                                            "uriBaseId": {"type": "string"},
                                                        },
                                                    },
                                                    "region": {
                                                        "type": "object",
                                                        "properties": {"startLine": {"type": "integer", "minimum": 1}},
                                                    },
                                                },
                                            }
                                        },
                                    },
                                },
                            },
                        },
                    },
                },
            },
        },
    },
}


def check_sarif(log: dict[str, Any]) -> None:
    jsonschema.Draft202012Validator(SARIF_SUBSET, format_checker=jsonschema.FormatChecker()).validate(log)
    run = log["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    for result in run["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]


@pytest.fixture
def broken_repo(tmp_path: Path) -> Path:
    repo = copy_example(tmp_path / "work" / "fleet")
    (repo / "apps/web/leak.yaml").write_text("apiVersion: v1\nkind: Secret\nmetadata: {name: leak}\ndata: {t: eA==}\n")
    edit(repo / "apps/web/deployment.yaml", "  replicas: 1\n", "  replicas: 1\n  replicaz: 2\n")
    edit(
        repo / "apps/web/fleet.yaml",
        "  - name: everywhere-else\n",
        "  - clusterSelector: {matchLabels: {env: qa}}\n  - name: everywhere-else\n",
    )
    return repo


def test_sarif_output_is_sarif_shaped_with_rules_and_lines(broken_repo: Path) -> None:
    result = CliRunner().invoke(main, ["validate", str(broken_repo), "-o", "sarif"])
    assert result.exit_code == 1
    log = json.loads(result.output)
    check_sarif(log)
    run = log["runs"][0]
    assert {r["id"] for r in run["tool"]["driver"]["rules"]} == set(RULES)
    located = [
        (
            r["ruleId"],
            r["level"],
            r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            r["locations"][0]["physicalLocation"].get("region", {}).get("startLine"),
        )
        for r in run["results"]
    ]
    assert located == [
        ("kubernetes-schema", "error", "apps/web/deployment.yaml", 7),
        ("target-selects-nothing", "warning", "apps/web/fleet.yaml", 10),
        ("plaintext-secret", "error", "apps/web/leak.yaml", 4),
    ]


def test_sarif_paths_are_relative_to_the_git_root(broken_repo: Path, tmp_path: Path) -> None:
    git.Repo.init(tmp_path / "work")
    sarif_file = tmp_path / "fleet.sarif"
    result = CliRunner().invoke(main, ["validate", str(broken_repo), "--sarif-file", str(sarif_file), "--strict"])
    assert result.exit_code == 1
    assert result.output.splitlines()[0] == "apps/web/deployment.yaml:7: error: spec.replicaz: unknown field (Deployment web)"
    log = json.loads(sarif_file.read_text())
    check_sarif(log)
    uris = [r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in log["runs"][0]["results"]]
    assert uris == ["fleet/apps/web/deployment.yaml", "fleet/apps/web/fleet.yaml", "fleet/apps/web/leak.yaml"]
    # --strict: warnings fail the check, so they show as errors
    assert {r["level"] for r in log["runs"][0]["results"]} == {"error"}


def test_findings_without_a_line_have_no_region() -> None:
    report = ValidationReport(
        root=Path("/repo"),
        findings=(Finding("sops-file", "error", "secrets/common/db.yaml", "not SOPS-encrypted (no `sops:` block)"),),
        kubernetes_version="1.32",
    )
    log = to_sarif(report, "1.0")
    check_sarif(log)
    location = log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]
    assert location == {"artifactLocation": {"uri": "secrets/common/db.yaml", "uriBaseId": "%SRCROOT%"}}


@pytest.mark.parametrize(
    ("problem", "stage", "rule"),
    [
        (SpecProblem("apps/a/fleet.yaml", "dependsOn", "dependency cycle: a -> b -> a"), "inventory", "dependency-cycle"),
        (SpecProblem("clusters/x.yaml", "labels", "label key 'a b' is not a valid label name"), "inventory", "fleet-schema"),
        (SpecProblem("apps/a/fleet.yaml", "targets[0]", "selects no cluster", severity="warning"), "render", "target-selects-nothing"),
        (SpecProblem("apps/a/s.yaml", "data.k", "plaintext Secret data in Git is refused: ..."), "render", "plaintext-secret"),
        (SpecProblem("apps/a/s.yaml", "stringData.k", "plaintext Secret value in Git is refused: ..."), "render", "plaintext-secret"),
        (SpecProblem("apps/b/fleet.yaml", "", "object /ConfigMap/x/y is declared twice for cluster 'dev' (apps a and b)"), "render", "duplicate-object"),
        (SpecProblem("secrets/common/a.yaml", "metadata.name", "Secret /Secret/x/y is already declared by b"), "render", "duplicate-object"),
        (SpecProblem("secrets/common/a.yaml", "", "not SOPS-encrypted (no `sops:` block)"), "render", "sops-file"),
        (SpecProblem("apps/a/s.yaml", "", "stringData.p: 'vault:kv//x#p': empty path segment"), "render", "vault-ref"),
        (SpecProblem("apps/a/c.yaml", "data.g", "unknown value ${greeting} for cluster 'dev'"), "render", "render"),
    ],
)
def test_classify(problem: SpecProblem, stage: str, rule: str) -> None:
    assert classify(problem, stage) == rule  # type: ignore[arg-type]


def test_unique_sorted_collapses_repeats_and_orders_by_place() -> None:
    a = Finding("render", "error", "b.yaml", "x", line=3)
    b = Finding("render", "warning", "a.yaml", "y", line=9)
    c = Finding("render", "error", "a.yaml", "z", line=2)
    assert unique_sorted([a, b, a, c, b]) == [c, b, a]
