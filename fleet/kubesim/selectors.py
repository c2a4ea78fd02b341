"""Label and field selectors: parsing the query-string syntax and matching objects (pure functions)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


class SelectorError(ValueError):
    """The selector string does not parse."""


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: str  # "=", "!=", "in", "notin", "exists", "!exists"
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        if self.operator == "exists":
            return self.key in labels
        if self.operator == "!exists":
            return self.key not in labels
        if self.operator in ("=", "in"):
            return self.key in labels and labels[self.key] in self.values
        # "!=" and "notin" also match objects without the label, like the real server.
        return labels.get(self.key) not in self.values if self.key in labels else True


LabelSelector = tuple[Requirement, ...]

_KEY = r"[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?"
_VALUE = r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?"
_KEY_RE = re.compile(_KEY)
_VALUE_RE = re.compile(_VALUE)


def _split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def _check_key(key: str) -> str:
    if not _KEY_RE.fullmatch(key):
        raise SelectorError(f"invalid label key {key!r}")
    return key


def _check_value(value: str) -> str:
    if len(value) > 63 or not _VALUE_RE.fullmatch(value):
        raise SelectorError(f"invalid label value: {value!r}")
    return value


_SET_RE = re.compile(r"^\s*(\S+?)\s+(in|notin)\s*\((.*)\)\s*$")
_OP_RE = re.compile(r"^\s*([^=!\s]+)\s*(==|=|!=)\s*(.*?)\s*$")


def parse_label_selector(text: str | None) -> LabelSelector:
    """Parse `a=b,c!=d,e in (f,g),h notin (i),j,!k`."""
    if not text or not text.strip():
        return ()
    requirements: list[Requirement] = []
    for raw in _split_top_level(text):
        part = raw.strip()
        if not part:
            raise SelectorError(f"unable to parse requirement: found '' in {text!r}")
        set_match = _SET_RE.match(part)
        if set_match:
            key, operator, values = set_match.groups()
            items = tuple(_check_value(v.strip()) for v in values.split(",")) if values.strip() else ()
            requirements.append(Requirement(_check_key(key), operator, items))
            continue
        op_match = _OP_RE.match(part)
        if op_match:
            key, operator, value = op_match.groups()
            operator = "=" if operator in ("=", "==") else "!="
            requirements.append(Requirement(_check_key(key), operator, (_check_value(value),)))
            continue
        if part.startswith("!"):
            requirements.append(Requirement(_check_key(part[1:].strip()), "!exists"))
            continue
        requirements.append(Requirement(_check_key(part), "exists"))
    return tuple(requirements)


def selector_from_label_selector_object(selector: Mapping[str, Any] | None) -> LabelSelector:
    """A metav1.LabelSelector (matchLabels/matchExpressions) as requirements."""
    if not selector:
        return ()
    requirements = [Requirement(k, "=", (str(v),)) for k, v in (selector.get("matchLabels") or {}).items()]
    for expression in selector.get("matchExpressions") or []:
        operator = str(expression.get("operator", "")).lower()
        mapped = {"in": "in", "notin": "notin", "exists": "exists", "doesnotexist": "!exists"}.get(operator)
        if mapped is None:
            raise SelectorError(f"{expression.get('operator')!r} is not a valid label selector operator")
        requirements.append(Requirement(str(expression.get("key")), mapped, tuple(expression.get("values") or ())))
    return tuple(requirements)


def format_label_selector(selector: Mapping[str, Any] | None) -> str:
    """The string form used in Scale status and tables (`app=web,tier in (a,b)`)."""
    parts = []
    for requirement in selector_from_label_selector_object(selector):
        if requirement.operator == "=":
            parts.append(f"{requirement.key}={requirement.values[0]}")
        elif requirement.operator in ("in", "notin"):
            parts.append(f"{requirement.key} {requirement.operator} ({','.join(requirement.values)})")
        elif requirement.operator == "exists":
            parts.append(requirement.key)
        else:
            parts.append(f"!{requirement.key}")
    return ",".join(parts)


def labels_match(selector: LabelSelector, labels: Mapping[str, str] | None) -> bool:
    labels = labels or {}
    return all(requirement.matches(labels) for requirement in selector)


# Field selectors -----------------------------------------------------------

FieldSelector = tuple[tuple[str, str, str], ...]  # (field, "=" | "!=", value)


def parse_field_selector(text: str | None) -> FieldSelector:
    if not text or not text.strip():
        return ()
    result = []
    for raw in text.split(","):
        part = raw.strip()
        match = re.fullmatch(r"([^=!]+)(==|=|!=)(.*)", part)
        if not match:
            raise SelectorError(f"invalid selector: {text!r}; can't understand {part!r}")
        field, operator, value = match.groups()
        result.append((field.strip(), "!=" if operator == "!=" else "=", value.strip()))
    return tuple(result)


def _get_path(obj: Mapping[str, Any], dotted: str) -> Any:
    current: Any = obj
    for part in dotted.split("."):
        if not isinstance(current, Mapping):
            return None
        current = current.get(part)
    return current


# Fields each kind supports beyond metadata.name/namespace (as on a real server).
SUPPORTED_FIELDS: dict[str, frozenset[str]] = {
    "Pod": frozenset({"spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
                      "spec.hostNetwork", "status.phase", "status.podIP", "status.nominatedNodeName"}),
    "Event": frozenset({"involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
                        "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
                        "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type"}),
    "Secret": frozenset({"type"}),
    "Namespace": frozenset({"status.phase"}),
    "Node": frozenset({"spec.unschedulable"}),
    "ReplicaSet": frozenset({"status.replicas"}),
    "Job": frozenset({"status.successful"}),
}  # fmt: skip


def validate_field_selector(selector: FieldSelector, kind: str) -> None:
    allowed = SUPPORTED_FIELDS.get(kind, frozenset())
    for field, _, _ in selector:
        if field not in ("metadata.name", "metadata.namespace") and field not in allowed:
            raise SelectorError(f'field label not supported: {field}')


def _field_value(obj: Mapping[str, Any], field: str) -> str:
    if field == "status.successful":
        value: Any = (obj.get("status") or {}).get("succeeded")
    elif field == "source":
        value = (obj.get("source") or {}).get("component")
    else:
        value = _get_path(obj, field)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def fields_match(selector: FieldSelector, obj: Mapping[str, Any]) -> bool:
    for field, operator, value in selector:
        actual = _field_value(obj, field)
        if (actual == value) != (operator == "="):
            return False
    return True


def make_matcher(labels: LabelSelector, fields: FieldSelector) -> Callable[[Mapping[str, Any]], bool]:
    def matches(obj: Mapping[str, Any]) -> bool:
        metadata = obj.get("metadata") or {}
        return labels_match(labels, metadata.get("labels")) and fields_match(fields, obj)

    return matches
