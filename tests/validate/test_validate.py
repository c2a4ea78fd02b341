"""`fleet validate` on copies of the example fleet: what passes, what fails, and where it points."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from fleet.cli import main
from fleet.validate import validate_repo
from tests.validate.example import PROJECT_ROOT, copy_example, edit

PLAINTEXT_SECRET = """\
apiVersion: v1
kind: Secret
metadata:
  name: leak
data:
  token: c2VjcmV0
"""


def run_validate(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["validate", *args])
    return result.exit_code, result.output


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return copy_example(tmp_path / "fleet")


def test_example_repo_passes_fast() -> None:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "fleet", "validate", str(PROJECT_ROOT)], capture_output=True, text=True, timeout=60
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.fullmatch(r"fleet validate: OK \(3 clusters, \d+ objects, Kubernetes 1\.32\)\n", result.stdout)
    assert elapsed < 3.0, f"fleet validate took {elapsed:.1f}s on the example repo"


def test_plaintext_secret_unknown_field_and_cycle_each_get_one_line(repo: Path) -> None:
    (repo / "apps/web/leak.yaml").write_text(PLAINTEXT_SECRET)
    edit(repo / "apps/web/deployment.yaml", "  replicas: 1\n", "  replicas: 1\n  replicaz: 2\n")
    edit(repo / "apps/base/fleet.yaml", "namespace: platform\n", "namespace: platform\ndependsOn: [web]\n")

    code, output = run_validate(str(repo))

    assert code == 1
    assert output.splitlines()[:-1] == [
        "apps/base/fleet.yaml:3: error: dependsOn: dependency cycle: base -> web -> base",
        # rendered for three clusters, reported once: where it was written
        "apps/web/deployment.yaml:7: error: spec.replicaz: unknown field (Deployment web)",
        "apps/web/leak.yaml:6: error: data.token: plaintext Secret data in Git is refused: encrypt it with SOPS "
        "under secrets/ or reference Vault in stringData (vault:<mount>/<path>#<key>)",
    ]
    assert output.splitlines()[-1].startswith("fleet validate: FAILED: 3 errors, 0 warnings (3 clusters, ")
    assert "c2VjcmV0" not in output

    code, text = run_validate(str(repo), "-o", "json")
    assert code == 1
    report = json.loads(text)
    assert report["ok"] is False and report["errors"] == 3 and report["warnings"] == 0
    assert [(f["rule"], f["file"], f["line"], f["field"]) for f in report["findings"]] == [
        ("dependency-cycle", "apps/base/fleet.yaml", 3, "dependsOn"),
        ("kubernetes-schema", "apps/web/deployment.yaml", 7, "spec.replicaz"),
        ("plaintext-secret", "apps/web/leak.yaml", 6, "data.token"),
    ]


def test_kubernetes_schema_errors_point_at_the_field(repo: Path) -> None:
    edit(repo / "apps/web/service.yaml", "      targetPort: 80\n", "      targetPort: 80\n      protocl: TCP\n")
    edit(repo / "apps/web/deployment.yaml", "            - containerPort: 80\n", '            - containerPort: "80"\n')
    edit(repo / "apps/payments/deployment.yaml", "apiVersion: apps/v1\n", "apiVersion: apps/v1beta1\n")

    report = validate_repo(repo)

    assert [str(f) for f in report.findings] == [
        "apps/payments/deployment.yaml:1: error: apiVersion: Kubernetes 1.32 does not serve Deployment as "
        "apps/v1beta1; it serves it as apps/v1",
        "apps/web/deployment.yaml:17: error: spec.template.spec.containers[0].ports[0].containerPort: "
        "expected integer, got string (Deployment web)",
        "apps/web/service.yaml:10: error: spec.ports[0].protocl: unknown field (Service web)",
    ]


def test_custom_resources_are_checked_against_their_crd_or_warned(repo: Path) -> None:
    (repo / "apps/base/widgets.yaml").write_text(
        """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  names: {kind: Widget, plural: widgets, singular: widget}
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              properties:
                size: {type: integer}
                port: {x-kubernetes-int-or-string: true}
                extra: {type: object, x-kubernetes-preserve-unknown-fields: true}
---
apiVersion: example.com/v1
kind: Widget
metadata:
  name: good
spec:
  size: 3
  port: http
  extra: {anything: goes}
---
apiVersion: example.com/v1
kind: Widget
metadata:
  name: bad
spec:
  size: large
  colour: red
---
apiVersion: monitoring.example.org/v1
kind: Probe
metadata:
  name: unknown-kind
"""
    )
    code, output = run_validate(str(repo))
    assert code == 1
    assert output.splitlines()[:-1] == [
        "apps/base/widgets.yaml:38: error: spec.size: expected integer, got string (Widget bad)",
        "apps/base/widgets.yaml:39: error: spec.colour: unknown field (Widget bad)",
        "apps/base/widgets.yaml:41: warning: Probe unknown-kind: no schema for monitoring.example.org/v1 Probe in "
        "Kubernetes 1.32 and no CustomResourceDefinition for it in the same bundle; not validated",
    ]


def test_warnings_pass_unless_strict(repo: Path) -> None:
    edit(
        repo / "apps/web/fleet.yaml",
        "  - name: everywhere-else\n",
        "  - name: staging\n    clusterSelector:\n      matchLabels: {env: staging}\n  - name: everywhere-else\n",
    )
    code, output = run_validate(str(repo))
    assert code == 0
    assert output.splitlines()[0] == "apps/web/fleet.yaml:10: warning: targets[1]: selects no cluster"
    assert output.splitlines()[1].startswith("fleet validate: OK with 1 warning (3 clusters, ")
    assert len(output.splitlines()) == 2
    code, output = run_validate(str(repo), "--strict")
    assert code == 1
    assert output.splitlines()[-1].startswith("fleet validate: FAILED: 0 errors, 1 warning (--strict) (3 clusters, ")


def test_vault_references_syntax_and_prefixes(repo: Path) -> None:
    edit(repo / "apps/payments/secret.yaml", "vault:kv/shared/payments-db#password", "vault:kv/other/payments-db#password")
    (repo / "apps/web/token.yaml").write_text(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: token\nstringData:\n  token: vault:kv/shared//web#token\n"
    )
    report = validate_repo(repo)
    assert [(f.rule, str(f)) for f in report.findings] == [
        (
            "vault-ref",
            "apps/payments/secret.yaml:8: error: stringData.password: vault:kv/other/payments-db#password is not "
            "allowed for cluster 'prod-us-east': allowed prefixes are kv/clusters/prod-us-east/, kv/shared/ "
            "(secrets.vault.allowedPrefixes in fleet.yaml)",
        ),
        (
            "vault-ref",
            "apps/web/token.yaml:6: error: stringData.token: 'vault:kv/shared//web#token': empty path segment "
            "('//' or a leading/trailing '/')",
        ),
    ]


def test_duplicate_objects_are_reported_per_cluster(repo: Path) -> None:
    (repo / "apps/base/web-config.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web-config\n  namespace: web\ndata: {a: b}\n"
    )
    report = validate_repo(repo)
    assert {f.rule for f in report.findings} == {"duplicate-object"}
    assert sorted(f.message for f in report.findings) == [
        f"object /ConfigMap/web/web-config is declared twice for cluster {cluster!r} (apps base and web)"
        for cluster in ("dev", "prod-us-east", "prod-us-west")
    ]


def test_spec_errors_are_reported_and_the_rest_still_checked(repo: Path) -> None:
    edit(repo / "clusters/dev.yaml", "values:\n", "labelz: {}\nvalues:\n")
    edit(repo / "apps/web/deployment.yaml", "  replicas: 1\n", "  replicas: 1\n  replicaz: 2\n")
    report = validate_repo(repo)
    assert [str(f) for f in report.findings] == [
        "apps/web/deployment.yaml:7: error: spec.replicaz: unknown field (Deployment web)",
        "clusters/dev.yaml:8: error: labelz: unknown field",
    ]


def test_not_a_fleet_repo(tmp_path: Path) -> None:
    code, output = run_validate(str(tmp_path))
    assert code == 1
    assert output.splitlines()[0] == ".: error: no fleet.yaml, clusters/ or apps/ here: is this the fleet repo?"


def test_unsupported_kubernetes_version_is_a_usage_error(repo: Path) -> None:
    code, output = run_validate(str(repo), "--kubernetes-version", "1.99")
    assert code == 2
    assert "no schemas for Kubernetes 1.99" in output


def test_older_kubernetes_version_is_used(repo: Path) -> None:
    code, output = run_validate(str(repo), "--kubernetes-version", "v1.29.4")
    assert code == 0
    assert output.strip().endswith("Kubernetes 1.29)")
