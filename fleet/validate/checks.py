"""Checks over rendered bundles: Kubernetes schemas and `vault:` reference syntax.

Each object is checked as every cluster gets it (values differ per cluster),
and each problem is reported once, at the file and line it was written.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fleet.protocol import LABEL_APP, object_key
from fleet.render.bundle import Bundle
from fleet.render.manifests import SourceObject
from fleet.secrets.errors import VaultRefError
from fleet.secrets.refs import check_allowed, is_vault_ref, parse_vault_ref
from fleet.validate.findings import Finding
from fleet.validate.kubeschema import KubeSchemas, iter_bundle_checks

Provenance = Mapping[tuple[str, str], SourceObject]


def _describe(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return f"{obj.get('kind', '?')} {meta.get('name', '?')}"


class _Locator:
    """Where an object of a cluster's bundle was written, falling back to its app's fleet.yaml."""

    def __init__(self, provenance: Provenance, app_files: Mapping[str, str]) -> None:
        self.provenance = provenance
        self.app_files = app_files

    def __call__(self, cluster: str, obj: Mapping[str, Any], *path: str | int) -> tuple[str, int | None]:
        source = self.provenance.get((cluster, object_key(dict(obj))))
        if source is not None:
            return source.file, source.line(*path)
        app = str(((obj.get("metadata") or {}).get("labels") or {}).get(LABEL_APP, ""))
        return self.app_files.get(f"apps/{app}", f"apps/{app}/fleet.yaml"), None


def schema_findings(
    bundles: Mapping[str, Bundle], provenance: Provenance, schemas: KubeSchemas, app_files: Mapping[str, str]
) -> list[Finding]:
    locate = _Locator(provenance, app_files)
    findings: list[Finding] = []
    for cluster, bundle in sorted(bundles.items()):
        for obj, result in iter_bundle_checks(bundle.objects, schemas):
            what = _describe(obj)
            for issue in result.issues:
                file, line = locate(cluster, obj, *issue.path)
                findings.append(
                    Finding("kubernetes-schema", "error", file, f"{issue.message} ({what})", issue.field, line)
                )
            if result.not_served is not None:
                file, line = locate(cluster, obj, "apiVersion")
                findings.append(Finding("kubernetes-schema", "error", file, result.not_served, "apiVersion", line))
            if result.unchecked is not None:
                file, line = locate(cluster, obj, "apiVersion")
                findings.append(Finding("kubernetes-no-schema", "warning", file, f"{what}: {result.unchecked}", "", line))
    return findings


def vault_ref_findings(
    bundles: Mapping[str, Bundle],
    provenance: Provenance,
    app_files: Mapping[str, str],
    allowed_prefixes: Sequence[str],
) -> list[Finding]:
    """`vault:` references in Secrets, as each cluster renders them: well-formed and within its prefixes."""
    locate = _Locator(provenance, app_files)
    findings: list[Finding] = []
    for cluster, bundle in sorted(bundles.items()):
        for obj in bundle.objects:
            if obj.get("kind") != "Secret":
                continue
            for section in ("stringData", "data"):
                entries = obj.get(section)
                if not isinstance(entries, dict):
                    continue
                for key, value in sorted(entries.items()):
                    if not is_vault_ref(value):
                        continue
                    try:
                        check_allowed(parse_vault_ref(value), cluster, allowed_prefixes)
                    except VaultRefError as exc:
                        file, line = locate(cluster, obj, section, key)
                        findings.append(Finding("vault-ref", "error", file, str(exc), f"{section}.{key}", line))
    return findings
