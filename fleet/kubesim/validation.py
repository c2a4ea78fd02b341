"""Validation of objects before they are stored (pure functions returning Status causes)."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from typing import Any

from fleet.kubesim import schema
from fleet.kubesim.errors import cause
from fleet.kubesim.resources import ResourceType
from fleet.kubesim.schema import Node
from fleet.kubesim.selectors import SelectorError, labels_match, selector_from_label_selector_object

Cause = dict[str, str]

DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
DNS1035_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
CONFIG_KEY = re.compile(r"[-._a-zA-Z0-9]+")
QUALIFIED_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")

_SUBDOMAIN_MESSAGE = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
_LABEL_MESSAGE = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and "
    "end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
_DNS1035_MESSAGE = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic "
    "character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for "
    "validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)

# Kinds whose names are DNS-1123 labels or DNS-1035 labels rather than subdomains.
_LABEL_NAMED = {"Namespace"}
_DNS1035_NAMED = {"Service"}
# Kinds whose names only need to be valid path segments.
_PATH_SEGMENT_NAMED = {"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"}


def _invalid(field: str, value: Any, message: str) -> Cause:
    return cause(field, f'Invalid value: "{value}": {message}')


def validate_name(resource_type: ResourceType, name: str) -> list[Cause]:
    if not name:
        return [cause("metadata.name", "Required value: name or generateName is required", "FieldValueRequired")]
    kind = resource_type.kind if not resource_type.custom else ""
    if kind in _PATH_SEGMENT_NAMED:
        if name in (".", "..") or "/" in name or "%" in name:
            return [_invalid("metadata.name", name, "may not contain '/' or '%' or be '.' or '..'")]
        return []
    if kind in _LABEL_NAMED:
        if len(name) > 63:
            return [_invalid("metadata.name", name, "must be no more than 63 characters")]
        if not DNS1123_LABEL.fullmatch(name):
            return [_invalid("metadata.name", name, _LABEL_MESSAGE)]
        return []
    if kind in _DNS1035_NAMED:
        if len(name) > 63:
            return [_invalid("metadata.name", name, "must be no more than 63 characters")]
        if not DNS1035_LABEL.fullmatch(name):
            return [_invalid("metadata.name", name, _DNS1035_MESSAGE)]
        return []
    if len(name) > 253:
        return [_invalid("metadata.name", name, "must be no more than 253 characters")]
    if not DNS1123_SUBDOMAIN.fullmatch(name):
        return [_invalid("metadata.name", name, _SUBDOMAIN_MESSAGE)]
    return []


def _qualified_name_errors(key: str) -> str | None:
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not DNS1123_SUBDOMAIN.fullmatch(prefix)):
        return "prefix part " + _SUBDOMAIN_MESSAGE
    if not name or len(name) > 63 or not QUALIFIED_NAME.fullmatch(name):
        return (
            "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
            "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
            "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
        )
    return None


def validate_labels(labels: Any, field: str) -> list[Cause]:
    causes: list[Cause] = []
    if labels is None:
        return causes
    if not isinstance(labels, Mapping):
        return [_invalid(field, labels, "must be a map of strings")]
    for key, value in labels.items():
        problem = _qualified_name_errors(str(key))
        if problem:
            causes.append(_invalid(field, key, problem))
        if not isinstance(value, str) or len(value) > 63 or not LABEL_VALUE.fullmatch(value):
            causes.append(
                _invalid(
                    f"{field}",
                    value,
                    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
                    "'.', and must start and end with an alphanumeric character",
                )
            )
    return causes


def validate_annotations(annotations: Any) -> list[Cause]:
    if annotations is None:
        return []
    if not isinstance(annotations, Mapping):
        return [_invalid("metadata.annotations", annotations, "must be a map of strings")]
    causes = []
    for key, value in annotations.items():
        problem = _qualified_name_errors(str(key))
        if problem:
            causes.append(_invalid("metadata.annotations", key, problem))
        if not isinstance(value, str):
            causes.append(_invalid(f"metadata.annotations[{key}]", value, "must be a string"))
    if sum(len(str(k)) + len(str(v)) for k, v in annotations.items()) > 256 * 1024:
        causes.append(cause("metadata.annotations", "Too long: must have at most 262144 bytes", "FieldValueTooLong"))
    return causes


def _selector_matches_template(spec: Mapping[str, Any], prefix: str, required: bool = True) -> list[Cause]:
    selector = spec.get("selector")
    if not selector:
        return [cause(f"{prefix}.selector", "Required value", "FieldValueRequired")] if required else []
    try:
        requirements = selector_from_label_selector_object(selector)
    except SelectorError as error:
        return [_invalid(f"{prefix}.selector", selector, str(error))]
    if not requirements:
        return [_invalid(f"{prefix}.selector", selector, "empty selector is invalid for deployment")]
    template = spec.get("template") or {}
    labels = (template.get("metadata") or {}).get("labels") or {}
    if not labels_match(requirements, labels):
        rendered = "map[string]string{" + ", ".join(f'"{k}":"{v}"' for k, v in sorted(labels.items())) + "}"
        return [
            cause(
                f"{prefix}.template.metadata.labels",
                f"Invalid value: {rendered}: `selector` does not match template `labels`",
            )
        ]
    return []


def _pod_spec(spec: Any, prefix: str) -> list[Cause]:
    if not isinstance(spec, Mapping):
        return [cause(prefix, "Required value", "FieldValueRequired")]
    containers = spec.get("containers")
    if not containers:
        return [cause(f"{prefix}.containers", "Required value", "FieldValueRequired")]
    causes: list[Cause] = []
    seen: set[str] = set()
    for index, container in enumerate(containers):
        path = f"{prefix}.containers[{index}]"
        if not isinstance(container, Mapping):
            causes.append(_invalid(path, container, "must be an object"))
            continue
        name = container.get("name")
        if not name:
            causes.append(cause(f"{path}.name", "Required value", "FieldValueRequired"))
        elif not DNS1123_LABEL.fullmatch(str(name)):
            causes.append(_invalid(f"{path}.name", name, _LABEL_MESSAGE))
        elif name in seen:
            causes.append(cause(f"{path}.name", f'Duplicate value: "{name}"', "FieldValueDuplicate"))
        seen.add(str(name))
        if not container.get("image"):
            causes.append(cause(f"{path}.image", "Required value", "FieldValueRequired"))
    return causes


def _workload(obj: Mapping[str, Any], selector_required: bool = True) -> list[Cause]:
    spec = obj.get("spec") or {}
    causes = _selector_matches_template(spec, "spec", selector_required)
    causes += _pod_spec((spec.get("template") or {}).get("spec"), "spec.template.spec")
    replicas = spec.get("replicas")
    if isinstance(replicas, int) and replicas < 0:
        causes.append(cause("spec.replicas", f"Invalid value: {replicas}: must be greater than or equal to 0"))
    return causes


def _job(obj: Mapping[str, Any]) -> list[Cause]:
    spec = obj.get("spec") or {}
    template_spec = (spec.get("template") or {}).get("spec")
    causes = _pod_spec(template_spec, "spec.template.spec")
    if isinstance(template_spec, Mapping) and template_spec.get("restartPolicy") not in ("OnFailure", "Never"):
        causes.append(
            cause(
                "spec.template.spec.restartPolicy",
                'Required value: valid values: "OnFailure", "Never"',
                "FieldValueRequired",
            )
        )
    return causes


def _data_keys(data: Any, field: str) -> list[Cause]:
    causes = []
    for key in (data or {}) if isinstance(data, Mapping) else []:
        if not CONFIG_KEY.fullmatch(str(key)) or len(str(key)) > 253:
            causes.append(
                _invalid(
                    f"{field}[{key}]",
                    key,
                    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. "
                    "'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
                )
            )
    return causes


def _secret(obj: Mapping[str, Any]) -> list[Cause]:
    causes = _data_keys(obj.get("data"), "data") + _data_keys(obj.get("stringData"), "stringData")
    total = 0
    for key, value in (obj.get("data") or {}).items():
        if not isinstance(value, str):
            causes.append(cause(f"data[{key}]", "Invalid value: must be a base64 encoded string"))
            continue
        try:
            total += len(base64.b64decode(value, validate=True))
        except (binascii.Error, ValueError):
            # The value may be a secret: never echo it.
            causes.append(cause(f"data[{key}]", "Invalid value: illegal base64 data"))
    if total > 1024 * 1024:
        causes.append(cause("data", "Too long: must have at most 1048576 bytes", "FieldValueTooLong"))
    return causes


def _configmap(obj: Mapping[str, Any]) -> list[Cause]:
    causes = _data_keys(obj.get("data"), "data") + _data_keys(obj.get("binaryData"), "binaryData")
    for key, value in (obj.get("data") or {}).items():
        if not isinstance(value, str):
            causes.append(_invalid(f"data[{key}]", value, "must be a string"))
    return causes


def _service(obj: Mapping[str, Any]) -> list[Cause]:
    spec = obj.get("spec") or {}
    causes: list[Cause] = []
    service_type = spec.get("type", "ClusterIP")
    if service_type not in ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName"):
        causes.append(
            cause(
                "spec.type",
                f'Unsupported value: "{service_type}": supported values: "ClusterIP", "ExternalName", '
                '"LoadBalancer", "NodePort"',
                "FieldValueNotSupported",
            )
        )
    if service_type != "ExternalName" and spec.get("clusterIP") != "None" and not spec.get("ports"):
        causes.append(cause("spec.ports", "Required value", "FieldValueRequired"))
    for index, port in enumerate(spec.get("ports") or []):
        number = port.get("port") if isinstance(port, Mapping) else None
        if not isinstance(number, int) or not 0 < number < 65536:
            causes.append(
                cause(f"spec.ports[{index}].port", f"Invalid value: {number}: must be between 1 and 65535, inclusive")
            )
    return causes


def _ingress(obj: Mapping[str, Any]) -> list[Cause]:
    causes = []
    for r, rule in enumerate((obj.get("spec") or {}).get("rules") or []):
        for p, path in enumerate(((rule or {}).get("http") or {}).get("paths") or []):
            if not (path or {}).get("pathType"):
                causes.append(
                    cause(f"spec.rules[{r}].http.paths[{p}].pathType", "Required value: pathType must be specified",
                          "FieldValueRequired")
                )  # fmt: skip
    return causes


def _crd(obj: Mapping[str, Any]) -> list[Cause]:
    spec = obj.get("spec") or {}
    names = spec.get("names") or {}
    causes: list[Cause] = []
    group = spec.get("group")
    if not group:
        causes.append(cause("spec.group", "Required value", "FieldValueRequired"))
    if not names.get("plural"):
        causes.append(cause("spec.names.plural", "Required value", "FieldValueRequired"))
    if not names.get("kind"):
        causes.append(cause("spec.names.kind", "Required value", "FieldValueRequired"))
    name = (obj.get("metadata") or {}).get("name")
    if group and names.get("plural") and name != f"{names['plural']}.{group}":
        causes.append(
            _invalid("metadata.name", name, "must be spec.names.plural+\".\"+spec.group")
        )
    if spec.get("scope") not in ("Namespaced", "Cluster"):
        causes.append(
            cause("spec.scope", f'Unsupported value: "{spec.get("scope")}": supported values: "Cluster", "Namespaced"',
                  "FieldValueNotSupported")
        )  # fmt: skip
    versions = spec.get("versions") or []
    if not versions:
        causes.append(cause("spec.versions", "Invalid value: must have exactly one version marked as storage version"))
    elif sum(1 for v in versions if isinstance(v, Mapping) and v.get("storage")) != 1:
        causes.append(
            _invalid("spec.versions", "", "must have exactly one version marked as storage version")
        )
    return causes


_KIND_VALIDATORS = {
    "apps/Deployment": _workload,
    "apps/ReplicaSet": _workload,
    "apps/StatefulSet": _workload,
    "apps/DaemonSet": _workload,
    "batch/Job": _job,
    "/Secret": _secret,
    "/ConfigMap": _configmap,
    "/Service": _service,
    "networking.k8s.io/Ingress": _ingress,
    "apiextensions.k8s.io/CustomResourceDefinition": _crd,
}


def validate_object(resource_type: ResourceType, obj: Mapping[str, Any]) -> list[Cause]:
    metadata = obj.get("metadata") or {}
    causes = validate_labels(metadata.get("labels"), "metadata.labels")
    causes += validate_annotations(metadata.get("annotations"))
    if resource_type.custom:
        causes += validate_against_schema(obj, resource_type.schema)
        return causes
    validator = _KIND_VALIDATORS.get(f"{resource_type.group}/{resource_type.kind}")
    if validator is not None:
        causes += validator(obj)
    return causes


# Schemas: unknown fields (fieldValidation) and structural checks for custom resources ----------

def unknown_fields(obj: Any, node: Node, path: str = "") -> list[str]:
    """Paths of fields the schema does not declare (`.spec.foo`)."""
    found: list[str] = []
    node = schema.resolve(node)
    if node is None:
        return found
    if isinstance(obj, Mapping):
        for key, value in obj.items():
            child_path = f"{path}.{key}"
            if path == "" and key in ("apiVersion", "kind"):
                continue
            if path == "" and key == "metadata":
                found += unknown_fields(value, schema.object_meta(), child_path)
                continue
            if not schema.knows_field(node, str(key)):
                found.append(child_path)
                continue
            found += unknown_fields(value, schema.child(node, str(key)), child_path)
    elif isinstance(obj, list):
        item_node = schema.items(node)
        for index, item in enumerate(obj):
            found += unknown_fields(item, item_node, f"{path}[{index}]")
    return found


def prune_unknown(obj: Any, node: Node, top: bool = True) -> None:
    """Drop undeclared fields in place, as the real server does when decoding."""
    node = schema.resolve(node)
    if node is None:
        return
    if isinstance(obj, dict):
        for key in list(obj):
            if top and key in ("apiVersion", "kind"):
                continue
            if top and key == "metadata":
                prune_unknown(obj[key], schema.object_meta(), False)
            elif not schema.knows_field(node, str(key)):
                del obj[key]
            else:
                prune_unknown(obj[key], schema.child(node, str(key)), False)
    elif isinstance(obj, list):
        item_node = schema.items(node)
        for item in obj:
            prune_unknown(item, item_node, False)


def type_errors(obj: Any, node: Node, path: str = "", top: bool = True) -> list[tuple[str, str, str]]:
    """(path, expected type, actual type) for values whose JSON type the schema rules out."""
    node = schema.resolve(node)
    if node is None or obj is None:
        return []
    declared = schema.types_of(node) - {"null"}
    actual = _type_name(obj)
    if declared and not any(actual == t or (t == "number" and actual == "integer") for t in declared):
        return [(path.lstrip("."), " or ".join(sorted(declared)), actual)]
    found: list[tuple[str, str, str]] = []
    if isinstance(obj, Mapping):
        for key, value in obj.items():
            if top and key in ("apiVersion", "kind"):
                continue
            child = schema.object_meta() if top and key == "metadata" else schema.child(node, str(key))
            found += type_errors(value, child, f"{path}.{key}", top=False)
    elif isinstance(obj, list):
        item_node = schema.items(node)
        for index, item in enumerate(obj):
            found += type_errors(item, item_node, f"{path}[{index}]", top=False)
    return found


def json_type_name(value: Any) -> str:
    return _type_name(value)


def _type_name(value: Any) -> str:
    for name, types in (("boolean", (bool,)), ("integer", (int,)), ("number", (float,)), ("string", (str,)),
                        ("object", (dict,)), ("array", (list,))):  # fmt: skip
        if isinstance(value, types):
            return name
    return "null"


def validate_against_schema(obj: Any, node: Node, path: str = "") -> list[Cause]:
    """Type, required and enum checks of a custom resource against its CRD schema."""
    causes: list[Cause] = []
    node = schema.resolve(node)
    if node is None:
        return causes
    declared = schema.types_of(node)
    field = path.lstrip(".") or "<root>"
    if declared and obj is not None:
        actual = _type_name(obj)
        ok = any(actual == t or (t == "number" and actual == "integer") for t in declared)
        if not ok and not node.get("x-kubernetes-int-or-string"):
            expected = " or ".join(sorted(declared - {"null"}))
            causes.append(
                cause(field, f'Invalid value: "{actual}": {field} in body must be of type {expected}: "{actual}"',
                      "FieldValueTypeInvalid")
            )  # fmt: skip
            return causes
    enum = node.get("enum")
    if enum and obj is not None and obj not in enum:
        allowed = ", ".join(f'"{v}"' for v in enum)
        causes.append(cause(field, f'Unsupported value: "{obj}": supported values: {allowed}', "FieldValueNotSupported"))
    if isinstance(obj, Mapping):
        for required in node.get("required") or []:
            if required not in obj:
                sub = f"{path}.{required}".lstrip(".")
                causes.append(cause(sub, "Required value", "FieldValueRequired"))
        for key, value in obj.items():
            if path == "" and key in ("metadata", "apiVersion", "kind"):
                continue
            causes += validate_against_schema(value, schema.child(node, str(key)), f"{path}.{key}")
    elif isinstance(obj, list):
        item_node = schema.items(node)
        for index, item in enumerate(obj):
            causes += validate_against_schema(item, item_node, f"{path}[{index}]")
    return causes
