"""Kubernetes objects against the OpenAPI schemas of one Kubernetes version, and CRs against their CRDs.

The schemas ship with `kubernetes-validate` (JSON Schema 2020-12, one file per
kind and a shared `_definitions.json`). Its `validate()` reloads the 1.3 MB
definitions on every call and stops at the first error; we compile one
validator per kind and collect every error.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

import jsonschema
from jsonschema.protocols import Validator
from packaging.version import Version
from referencing import Registry, Resource

from fleet.errors import FleetError

DEFAULT_KUBERNETES_VERSION = "1.32"
_SCHEMA_DIR = re.compile(r"^v(\d+)\.(\d+)\.\d+-local-strict$")
_JSON_TYPES = {dict: "object", list: "array", str: "string", bool: "boolean", int: "integer", float: "number"}
# Fields every custom resource has, whatever its CRD's schema says.
_OBJECT_ENVELOPE = {
    "apiVersion": {"type": "string"},
    "kind": {"type": "string"},
    "metadata": {"type": "object"},
}


class UnsupportedVersion(FleetError):
    """No schemas for the requested Kubernetes version."""


@dataclass(frozen=True)
class SchemaIssue:
    """One schema violation: where in the object (keys and indexes) and why (never the value itself)."""

    path: tuple[str | int, ...]
    message: str

    @property
    def field(self) -> str:
        return dotted(self.path)


def dotted(path: Sequence[str | int]) -> str:
    """("spec", "containers", 0, "image") -> "spec.containers[0].image"."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z0-9_-]+", part):
            out += f".{part}" if out else part
        else:
            out += f"[{json.dumps(part)}]"
    return out


def _schema_root() -> Traversable:
    return resources.files("kubernetes_validate").joinpath("kubernetes-json-schema")


@cache
def supported_versions() -> tuple[str, ...]:
    """Kubernetes minor versions we have strict schemas for, oldest first ("1.25", ...)."""
    found = []
    for entry in _schema_root().iterdir():
        match = _SCHEMA_DIR.match(entry.name)
        if match:
            found.append(f"{match.group(1)}.{match.group(2)}")
    return tuple(sorted(found, key=Version))


def resolve_version(requested: str) -> str:
    """The newest supported minor version not newer than `requested` ("v1.32.3" -> "1.32")."""
    text = requested.strip().removeprefix("v")
    match = re.match(r"^(\d+)\.(\d+)", text)
    if match is None:
        raise UnsupportedVersion(f"{requested!r} is not a Kubernetes version such as 1.32")
    wanted = Version(f"{match.group(1)}.{match.group(2)}")
    versions = supported_versions()
    candidates = [v for v in versions if Version(v) <= wanted]
    if not candidates or wanted > Version(versions[-1]):
        raise UnsupportedVersion(
            f"no schemas for Kubernetes {requested}: this install has {versions[0]} to {versions[-1]}"
        )
    return candidates[-1]


def _file_api_version(api_version: str) -> str:
    # kubernetes-validate's file naming: rbac.authorization.k8s.io/v1 -> rbac-v1, apps/v1 -> apps-v1, v1 -> v1
    return re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)


def is_builtin_group(group: str) -> bool:
    """Groups Kubernetes itself serves: the core group, dotless groups (apps, batch) and *.k8s.io."""
    return group == "" or "." not in group or group.endswith(".k8s.io")


def json_type(value: Any) -> str:
    return "null" if value is None else _JSON_TYPES.get(type(value), type(value).__name__)


class KubeSchemas:
    """Compiled validators for one Kubernetes version, built on first use per kind."""

    def __init__(self, version: str = DEFAULT_KUBERNETES_VERSION) -> None:
        self.version = resolve_version(version)
        self._dir = _schema_root().joinpath(f"v{self.version}.0-local-strict")
        self._registry: Registry[Any] | None = None
        self._validators: dict[tuple[str, str], Validator | None] = {}
        self._names: list[str] | None = None

    def _load(self, name: str) -> Any:
        return json.loads(self._dir.joinpath(name).read_text(encoding="utf-8"))

    def _definitions(self) -> Registry[Any]:
        if self._registry is None:
            self._registry = Resource.from_contents(self._load("_definitions.json")) @ Registry()
        return self._registry

    def validator(self, api_version: str, kind: str) -> Validator | None:
        """A validator for a built-in kind, or None when this version has no schema for it."""
        key = (api_version, kind)
        if key not in self._validators:
            name = f"{kind.lower()}-{_file_api_version(api_version)}.json"
            if not self._dir.joinpath(name).is_file():
                self._validators[key] = None
            else:
                schema = self._load(name)
                registry = Resource.from_contents(schema) @ self._definitions()
                self._validators[key] = jsonschema.Draft202012Validator(schema, registry=registry)
        return self._validators[key]

    def served_versions(self, kind: str) -> list[str]:
        """apiVersions (as kubernetes-validate names them) this version serves `kind` under."""
        if self._names is None:
            self._names = sorted(entry.name for entry in self._dir.iterdir())
        prefix = f"{kind.lower()}-"
        found = []
        for name in self._names:
            if name.startswith(prefix) and name.endswith(".json"):
                suffix = name[len(prefix) : -len(".json")]
                found.append(suffix.replace("-", "/", 1) if "-" in suffix else suffix)
        return found


# ------------------------------------------------------------------ errors -> issues


def _unknown_fields(error: jsonschema.ValidationError) -> list[str]:
    instance = error.instance
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    if not isinstance(instance, dict):
        return []
    known = set(schema.get("properties") or {})
    patterns = [re.compile(p) for p in (schema.get("patternProperties") or {})]
    return sorted(k for k in instance if k not in known and not any(p.search(k) for p in patterns))


def issues_from_error(error: jsonschema.ValidationError) -> list[SchemaIssue]:
    """Readable issues for one jsonschema error. Messages name types and fields, not values."""
    path = tuple(error.absolute_path)
    validator = error.validator
    if validator == "additionalProperties":
        unknown = _unknown_fields(error)
        if unknown:
            return [SchemaIssue((*path, name), "unknown field") for name in unknown]
    if validator == "required":
        instance = error.instance if isinstance(error.instance, dict) else {}
        required = error.validator_value if isinstance(error.validator_value, list) else []
        return [SchemaIssue((*path, name), "required field is missing") for name in required if name not in instance]
    if validator == "type":
        expected = error.validator_value
        wanted = " or ".join(t for t in expected if t != "null") if isinstance(expected, list) else str(expected)
        return [SchemaIssue(path, f"expected {wanted}, got {json_type(error.instance)}")]
    if validator == "enum":
        choices = ", ".join(json.dumps(v) for v in (error.validator_value or []) if v is not None)
        return [SchemaIssue(path, f"must be one of {choices}")]
    if validator in ("oneOf", "anyOf") and error.context:
        types = sorted(
            {
                t
                for sub in error.context
                if sub.validator == "type"
                for t in (sub.validator_value if isinstance(sub.validator_value, list) else [sub.validator_value])
                if t != "null"
            }
        )
        if types:
            return [SchemaIssue(path, f"expected {' or '.join(types)}, got {json_type(error.instance)}")]
    message = error.message
    if len(message) > 200:
        message = message[:197] + "..."
    return [SchemaIssue(path, message)]


def check_with(validator: Validator, obj: Mapping[str, Any]) -> list[SchemaIssue]:
    issues: list[SchemaIssue] = []
    for error in sorted(validator.iter_errors(obj), key=lambda e: [str(p) for p in e.absolute_path]):
        issues.extend(issues_from_error(error))
    seen: set[SchemaIssue] = set()
    return [i for i in issues if not (i in seen or seen.add(i))]  # type: ignore[func-returns-value]


# ------------------------------------------------------------------ custom resources


def _structural(node: Any, root: bool = False) -> Any:
    """A CRD's openAPIV3Schema as a strict JSON Schema (draft 4, as OpenAPI 3.0 is).

    Kubernetes prunes unknown fields of custom resources; a strict check reports
    them instead, except below `x-kubernetes-preserve-unknown-fields`.
    """
    if isinstance(node, list):
        return [_structural(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _structural(value) for key, value in node.items() if not key.startswith("x-kubernetes-")}
    for key in ("properties", "patternProperties", "definitions"):
        if isinstance(node.get(key), dict):
            out[key] = {name: _structural(sub) for name, sub in node[key].items()}
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if node.get("nullable") and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    out.pop("nullable", None)
    if root or node.get("x-kubernetes-embedded-resource"):
        out["properties"] = {**_OBJECT_ENVELOPE, **out.get("properties", {})}
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not node.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


@dataclass(frozen=True)
class CrdSchemas:
    """Custom resource schemas declared by the CRDs in one bundle: (group, version, kind) -> validator."""

    validators: Mapping[tuple[str, str, str], Validator]
    kinds: frozenset[tuple[str, str]]  # (group, kind) some CRD declares, whatever its versions

    @classmethod
    def from_objects(cls, objects: Sequence[Mapping[str, Any]]) -> CrdSchemas:
        validators: dict[tuple[str, str, str], Validator] = {}
        kinds: set[tuple[str, str]] = set()
        for crd in objects:
            if crd.get("kind") != "CustomResourceDefinition":
                continue
            spec = crd.get("spec") or {}
            group = str(spec.get("group", ""))
            kind = str((spec.get("names") or {}).get("kind", ""))
            kinds.add((group, kind))
            for version in spec.get("versions") or []:
                if not isinstance(version, dict):
                    continue
                schema = ((version.get("schema") or {}).get("openAPIV3Schema")) if version.get("schema") else None
                if isinstance(schema, dict):
                    validators[(group, str(version.get("name", "")), kind)] = jsonschema.Draft4Validator(
                        _structural(schema, root=True)
                    )
        return cls(validators=validators, kinds=frozenset(kinds))

    def validator(self, api_version: str, kind: str) -> Validator | None:
        group, _, version = api_version.rpartition("/")
        return self.validators.get((group, version, kind))

    def declares(self, api_version: str, kind: str) -> bool:
        return (api_version.rpartition("/")[0], kind) in self.kinds


@dataclass(frozen=True)
class ObjectCheck:
    """The outcome for one object: its issues, or why it could not be checked."""

    issues: tuple[SchemaIssue, ...] = ()
    unchecked: str | None = None  # a warning: no schema to check against
    not_served: str | None = None  # an error: a built-in kind under an apiVersion this version does not serve


def check_object(obj: Mapping[str, Any], schemas: KubeSchemas, crds: CrdSchemas) -> ObjectCheck:
    api_version = str(obj.get("apiVersion", ""))
    kind = str(obj.get("kind", ""))
    validator = crds.validator(api_version, kind) or schemas.validator(api_version, kind)
    if validator is not None:
        return ObjectCheck(issues=tuple(check_with(validator, obj)))
    group = api_version.rpartition("/")[0]
    served = schemas.served_versions(kind)
    if is_builtin_group(group) and served and not crds.declares(api_version, kind):
        return ObjectCheck(
            not_served=f"Kubernetes {schemas.version} does not serve {kind} as {api_version}; "
            f"it serves it as {', '.join(served)}"
        )
    if crds.declares(api_version, kind):
        return ObjectCheck(
            unchecked=f"the CustomResourceDefinition for {kind} in this bundle has no schema for {api_version}"
        )
    return ObjectCheck(
        unchecked=f"no schema for {api_version} {kind} in Kubernetes {schemas.version} and no "
        "CustomResourceDefinition for it in the same bundle; not validated"
    )


def iter_bundle_checks(
    objects: Sequence[Mapping[str, Any]], schemas: KubeSchemas
) -> Iterator[tuple[Mapping[str, Any], ObjectCheck]]:
    crds = CrdSchemas.from_objects(objects)
    for obj in objects:
        yield obj, check_object(obj, schemas, crds)
