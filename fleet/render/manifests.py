"""Reading an app's manifests: plain YAML/JSON files, or a Kustomize directory.

Manifests are parsed once per revision and rendered per cluster. Each object
remembers its file and YAML tree so errors point at a line.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fleet.errors import SpecProblem
from fleet.inventory.loader import APPS_DIR, check_inside_repo, relative_path
from fleet.inventory.models import AppSpec
from fleet.inventory.yamlfile import ProblemError, YamlDocument, parse_yaml_text, read_yaml_file
from fleet.secrets.refs import is_vault_ref

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
KUSTOMIZE_TIMEOUT = 60.0


@dataclass(frozen=True)
class SourceObject:
    """One manifest object as written in Git (before per-cluster rendering)."""

    obj: dict[str, Any]
    file: str
    doc: YamlDocument | None = None
    index: tuple[str | int, ...] = ()  # location of the object inside its document (for List items)

    def line(self, *field: str | int) -> int | None:
        return self.doc.line_of((*self.index, *field)) if self.doc is not None else None

    def problem(self, field: str, message: str, *path: str | int) -> SpecProblem:
        return SpecProblem(file=self.file, field=field, line=self.line(*path), message=message)


def _manifest_files(directory: Path) -> list[Path]:
    files = []
    for path in sorted(directory.rglob("*")):
        if any(part.startswith(".") for part in path.relative_to(directory).parts):
            continue
        if path.is_file() and path.suffix in MANIFEST_SUFFIXES:
            files.append(path)
    return files


def _objects_from_doc(doc: YamlDocument, problems: list[SpecProblem]) -> list[SourceObject]:
    data = doc.data
    if not isinstance(data, dict):
        problems.append(SpecProblem(file=doc.file, field="", line=doc.line_of(()), message="expected a mapping"))
        return []
    if data.get("kind") == "List" or (str(data.get("kind", "")).endswith("List") and "items" in data):
        items = data.get("items") or []
        return [
            SourceObject(obj=item, file=doc.file, doc=doc, index=("items", i))
            for i, item in enumerate(items)
            if isinstance(item, dict)
        ]
    return [SourceObject(obj=data, file=doc.file, doc=doc)]


def check_object_shape(source: SourceObject) -> list[SpecProblem]:
    obj = source.obj
    problems = []
    for field in ("apiVersion", "kind"):
        if not isinstance(obj.get(field), str) or not obj.get(field):
            problems.append(source.problem(field, "required field is missing"))
    meta = obj.get("metadata")
    named = isinstance(meta, dict) and isinstance(meta.get("name"), str) and bool(meta.get("name"))
    if not named and not (isinstance(meta, dict) and meta.get("generateName")):
        problems.append(source.problem("metadata.name", "required field is missing", "metadata"))
    return problems


def check_no_plaintext_secret(source: SourceObject) -> list[SpecProblem]:
    """A Secret in Git may only carry `vault:` references; values belong in secrets/ (SOPS) or Vault."""
    obj = source.obj
    if obj.get("kind") != "Secret" or str(obj.get("apiVersion", "")) != "v1":
        return []
    problems = []
    data = obj.get("data") or {}
    if isinstance(data, dict) and data:
        key = sorted(data)[0]
        problems.append(
            source.problem(
                f"data.{key}",
                "plaintext Secret data in Git is refused: encrypt it with SOPS under secrets/ "
                "or reference Vault in stringData (vault:<mount>/<path>#<key>)",
                "data",
                key,
            )
        )
    string_data = obj.get("stringData") or {}
    if isinstance(string_data, dict):
        for key, value in sorted(string_data.items()):
            if not is_vault_ref(value):
                problems.append(
                    source.problem(
                        f"stringData.{key}",
                        "plaintext Secret value in Git is refused: use a vault:<mount>/<path>#<key> reference "
                        "or a SOPS-encrypted file under secrets/",
                        "stringData",
                        key,
                    )
                )
    return problems


def run_kustomize(directory: Path, file: str) -> str:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise ProblemError(
            SpecProblem(file=file, field="", message="a Kustomize directory needs `kubectl kustomize`; kubectl not found")
        )
    try:
        result = subprocess.run(
            [kubectl, "kustomize", str(directory)],
            capture_output=True,
            text=True,
            timeout=KUSTOMIZE_TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        raise ProblemError(
            SpecProblem(file=file, field="", message=f"kubectl kustomize timed out after {KUSTOMIZE_TIMEOUT:.0f}s")
        ) from None
    if result.returncode != 0:
        reason = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "failed"
        raise ProblemError(SpecProblem(file=file, field="", message=f"kubectl kustomize: {reason}"))
    return result.stdout


def load_app_manifests(root: Path, app: AppSpec) -> tuple[list[SourceObject], list[SpecProblem]]:
    """All objects an app declares, with the problems found (shape, plaintext Secrets, escapes)."""
    problems: list[SpecProblem] = []
    objects: list[SourceObject] = []
    app_dir = root / APPS_DIR / app.name
    directory = (app_dir / app.path).resolve()
    rel_dir = relative_path(root, directory)
    if not directory.is_dir():
        problems.append(SpecProblem(file=f"{APPS_DIR}/{app.name}/fleet.yaml", field="path", message="not a directory"))
        return objects, problems

    kustomization = next((directory / n for n in KUSTOMIZATION_FILES if (directory / n).exists()), None)
    docs: list[YamlDocument] = []
    try:
        if kustomization is not None:
            rel = relative_path(root, kustomization)
            docs = parse_yaml_text(run_kustomize(directory, rel), f"{rel} (kustomize output)")
        else:
            for path in _manifest_files(directory):
                rel = relative_path(root, path)
                if path.parent == app_dir.resolve() and path.name == "fleet.yaml":
                    continue
                escaped = check_inside_repo(root, path, rel)
                if escaped:
                    problems.append(escaped)
                    continue
                try:
                    docs.extend(read_yaml_file(path, rel))
                except ProblemError as exc:
                    problems.append(exc.problem)
    except ProblemError as exc:
        problems.append(exc.problem)
        return objects, problems

    for doc in docs:
        for source in _objects_from_doc(doc, problems):
            shape = check_object_shape(source)
            if shape:
                problems.extend(shape)
                continue
            secret_problems = check_no_plaintext_secret(source)
            if secret_problems:
                problems.extend(secret_problems)
                continue
            objects.append(source)
    if not objects and not problems:
        problems.append(
            SpecProblem(
                file=f"{APPS_DIR}/{app.name}/fleet.yaml",
                field="path",
                message=f"no manifests found in {rel_dir}",
                severity="warning",
            )
        )
    return objects, problems
