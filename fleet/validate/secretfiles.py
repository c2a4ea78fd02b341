"""Checks on `secrets/`: every file SOPS-encrypted, well-formed and scoped, without any key.

Only the `sops:` block and the plaintext metadata are read; encrypted values
are looked at only to see that they are `ENC[...]`, never decoded.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fleet.inventory.models import SecretScope
from fleet.inventory.yamlfile import ProblemError, line_of, parse_yaml_text
from fleet.secrets.errors import SopsError
from fleet.secrets.scope import unscoped_files
from fleet.secrets.sops import load_document, secret_manifest, sops_metadata
from fleet.validate.findings import Finding

SECRETS_DIR = "secrets"
SECRET_SUFFIXES = (".yaml", ".yml", ".json")
_ENCRYPTED = re.compile(r"^ENC\[[A-Z0-9_]+,data:")


def secret_files(root: Path) -> tuple[list[str], list[str]]:
    """(YAML/JSON files, other files) under secrets/, repo-relative; hidden files and dirs are skipped."""
    base = root / SECRETS_DIR
    manifests: list[str] = []
    others: list[str] = []
    if not base.is_dir():
        return manifests, others
    for path in sorted(base.rglob("*")):
        parts = path.relative_to(base).parts
        if any(part.startswith(".") for part in parts) or not path.is_file():
            continue
        rel = "/".join((SECRETS_DIR, *parts))
        (manifests if path.suffix in SECRET_SUFFIXES else others).append(rel)
    return manifests, others


def _plaintext_values(document: dict[str, Any]) -> list[tuple[str, str]]:
    """(section, key) of every data/stringData value that is not a SOPS ciphertext."""
    found = []
    for section in ("data", "stringData"):
        entries = document.get(section)
        if isinstance(entries, dict):
            for key, value in entries.items():
                if not (isinstance(value, str) and _ENCRYPTED.match(value)):
                    found.append((section, str(key)))
    return found


def _line(text: str, file: str, path: tuple[str | int, ...]) -> int | None:
    if file.endswith(".json"):
        return None
    try:
        docs = parse_yaml_text(text, file)
    except ProblemError:
        return None
    return line_of(docs[0].tree, path) if docs else None


def check_secret_file(text: str, file: str) -> list[Finding]:
    """One file under secrets/: a SOPS-encrypted Secret whose metadata is readable without keys."""

    def error(message: str, field: str = "", path: tuple[str | int, ...] = ()) -> Finding:
        return Finding("sops-file", "error", file, message, field=field, line=_line(text, file, path) if path else None)

    try:
        document = load_document(text, file)
        metadata = sops_metadata(text, file)
    except SopsError as exc:
        return [error(str(exc).removeprefix(f"{file}: "))]
    findings = []
    if not metadata.has_mac:
        findings.append(error("the sops block has no mac: the file was not written by sops or was altered", "sops", ("sops",)))
    for section, key in _plaintext_values(document):
        findings.append(
            error(
                "value is not encrypted (edited outside sops?): re-encrypt the file with `sops`",
                f"{section}.{key}",
                (section, key),
            )
        )
    try:
        secret_manifest(text, file)
    except SopsError as exc:
        findings.append(error(str(exc).removeprefix(f"{file}: ")))
    return findings


def check_secrets_dir(root: Path, scopes: Sequence[SecretScope] | None) -> list[Finding]:
    """Every file under secrets/; with `scopes` (the inventory loaded), files that reach no cluster too."""
    manifests, others = secret_files(root)
    findings: list[Finding] = []
    for file in manifests:
        path = root / file
        if path.is_symlink():
            findings.append(Finding("sops-file", "error", file, "symlinks are not allowed under secrets/"))
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            findings.append(Finding("sops-file", "error", file, f"cannot read: {type(exc).__name__}"))
            continue
        findings.extend(check_secret_file(text, file))
    for file in others:
        findings.append(
            Finding(
                "sops-file",
                "warning",
                file,
                "not a .yaml/.yml/.json file: fleet ignores it; make sure it holds no plaintext secret",
            )
        )
    if scopes is not None:
        for file in unscoped_files(manifests, scopes):
            findings.append(
                Finding(
                    "unscoped-secret",
                    "warning",
                    file,
                    "reaches no cluster: put it under secrets/common/ or secrets/clusters/<name>/, "
                    "or add a scope for it in fleet.yaml (secrets.scopes)",
                )
            )
    return findings
