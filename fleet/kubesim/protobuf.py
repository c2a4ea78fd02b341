"""Decoding Kubernetes protobuf request bodies for the kinds `kubectl create <generator>` sends.

kubectl's typed clients (`kubectl create namespace|configmap|secret|deployment|...`) post
`application/vnd.kubernetes.protobuf`. A real server decodes those with generated Go types;
here a small table of field numbers (from k8s.io/api's generated.proto) covers the kinds
those generators build. Anything else is answered with 415, as before.
"""

from __future__ import annotations

import base64
from typing import Any

MAGIC = b"k8s\x00"


class ProtobufError(ValueError):
    """The body is not a Kubernetes protobuf envelope we can decode."""


# message -> field number -> (json name, type). Types: string, bytes, int, bool, time, intorstring,
# "msg:Name", "map:string", "map:bytes", "map:quantity", "list:string", "list:msg:Name".
# A trailing "!" keeps a zero value (Go pointer fields such as replicas).
Field = tuple[str, str]
MESSAGES: dict[str, dict[int, Field]] = {
    "ObjectMeta": {1: ("name", "string"), 2: ("generateName", "string"), 3: ("namespace", "string"),
                   11: ("labels", "map:string"), 12: ("annotations", "map:string"),
                   13: ("ownerReferences", "list:msg:OwnerReference"), 14: ("finalizers", "list:string")},
    "OwnerReference": {1: ("kind", "string"), 3: ("name", "string"), 4: ("uid", "string"), 5: ("apiVersion", "string"),
                       6: ("controller", "bool!"), 7: ("blockOwnerDeletion", "bool!")},
    "Namespace": {1: ("metadata", "msg:ObjectMeta"), 2: ("spec", "msg:NamespaceSpec")},
    "NamespaceSpec": {1: ("finalizers", "list:string")},
    "ConfigMap": {1: ("metadata", "msg:ObjectMeta"), 2: ("data", "map:string"), 3: ("binaryData", "map:bytes"),
                  4: ("immutable", "bool!")},
    "Secret": {1: ("metadata", "msg:ObjectMeta"), 2: ("data", "map:bytes"), 3: ("type", "string"),
               4: ("stringData", "map:string"), 5: ("immutable", "bool!")},
    "ServiceAccount": {1: ("metadata", "msg:ObjectMeta"), 2: ("secrets", "list:msg:ObjectReference"),
                       3: ("imagePullSecrets", "list:msg:LocalObjectReference"),
                       4: ("automountServiceAccountToken", "bool!")},
    "ObjectReference": {1: ("kind", "string"), 2: ("namespace", "string"), 3: ("name", "string")},
    "LocalObjectReference": {1: ("name", "string")},
    "Deployment": {1: ("metadata", "msg:ObjectMeta"), 2: ("spec", "msg:DeploymentSpec")},
    "DeploymentSpec": {1: ("replicas", "int!"), 2: ("selector", "msg:LabelSelector"), 3: ("template", "msg:PodTemplateSpec"),
                       4: ("strategy", "msg:DeploymentStrategy"), 5: ("minReadySeconds", "int"),
                       6: ("revisionHistoryLimit", "int!"), 7: ("paused", "bool"), 9: ("progressDeadlineSeconds", "int!")},
    "DeploymentStrategy": {1: ("type", "string")},
    "LabelSelector": {1: ("matchLabels", "map:string"), 2: ("matchExpressions", "list:msg:LabelSelectorRequirement")},
    "LabelSelectorRequirement": {1: ("key", "string"), 2: ("operator", "string"), 3: ("values", "list:string")},
    "PodTemplateSpec": {1: ("metadata", "msg:ObjectMeta"), 2: ("spec", "msg:PodSpec")},
    "PodSpec": {2: ("containers", "list:msg:Container"), 3: ("restartPolicy", "string"),
                4: ("terminationGracePeriodSeconds", "int!"), 6: ("dnsPolicy", "string"), 7: ("nodeSelector", "map:string"),
                8: ("serviceAccountName", "string"), 15: ("imagePullSecrets", "list:msg:LocalObjectReference"),
                20: ("initContainers", "list:msg:Container")},
    "Container": {1: ("name", "string"), 2: ("image", "string"), 3: ("command", "list:string"), 4: ("args", "list:string"),
                  5: ("workingDir", "string"), 6: ("ports", "list:msg:ContainerPort"), 7: ("env", "list:msg:EnvVar"),
                  8: ("resources", "msg:ResourceRequirements"), 14: ("imagePullPolicy", "string"),
                  16: ("stdin", "bool"), 18: ("tty", "bool")},
    "ContainerPort": {1: ("name", "string"), 2: ("hostPort", "int"), 3: ("containerPort", "int"), 4: ("protocol", "string")},
    "EnvVar": {1: ("name", "string"), 2: ("value", "string")},
    "ResourceRequirements": {1: ("limits", "map:quantity"), 2: ("requests", "map:quantity")},
    "Service": {1: ("metadata", "msg:ObjectMeta"), 2: ("spec", "msg:ServiceSpec")},
    "ServiceSpec": {1: ("ports", "list:msg:ServicePort"), 2: ("selector", "map:string"), 3: ("clusterIP", "string"),
                    4: ("type", "string"), 5: ("externalIPs", "list:string"), 10: ("externalName", "string")},
    "ServicePort": {1: ("name", "string"), 2: ("protocol", "string"), 3: ("port", "int"), 4: ("targetPort", "intorstring"),
                    5: ("nodePort", "int")},
    "Job": {1: ("metadata", "msg:ObjectMeta"), 2: ("spec", "msg:JobSpec")},
    "JobSpec": {1: ("parallelism", "int!"), 2: ("completions", "int!"), 3: ("activeDeadlineSeconds", "int!"),
                4: ("selector", "msg:LabelSelector"), 5: ("manualSelector", "bool!"), 6: ("template", "msg:PodTemplateSpec"),
                7: ("backoffLimit", "int!"), 8: ("ttlSecondsAfterFinished", "int!")},
    "CronJob": {1: ("metadata", "msg:ObjectMeta"), 2: ("spec", "msg:CronJobSpec")},
    "CronJobSpec": {1: ("schedule", "string"), 2: ("startingDeadlineSeconds", "int!"), 3: ("concurrencyPolicy", "string"),
                    4: ("suspend", "bool!"), 5: ("jobTemplate", "msg:JobTemplateSpec"),
                    6: ("successfulJobsHistoryLimit", "int!"), 7: ("failedJobsHistoryLimit", "int!"),
                    8: ("timeZone", "string")},
    "JobTemplateSpec": {1: ("metadata", "msg:ObjectMeta"), 2: ("spec", "msg:JobSpec")},
    "Role": {1: ("metadata", "msg:ObjectMeta"), 2: ("rules", "list:msg:PolicyRule")},
    "ClusterRole": {1: ("metadata", "msg:ObjectMeta"), 2: ("rules", "list:msg:PolicyRule")},
    "PolicyRule": {1: ("verbs", "list:string"), 2: ("apiGroups", "list:string"), 3: ("resources", "list:string"),
                   4: ("resourceNames", "list:string"), 5: ("nonResourceURLs", "list:string")},
    "RoleBinding": {1: ("metadata", "msg:ObjectMeta"), 2: ("subjects", "list:msg:Subject"), 3: ("roleRef", "msg:RoleRef")},
    "ClusterRoleBinding": {1: ("metadata", "msg:ObjectMeta"), 2: ("subjects", "list:msg:Subject"),
                           3: ("roleRef", "msg:RoleRef")},
    "Subject": {1: ("kind", "string"), 2: ("apiGroup", "string"), 3: ("name", "string"), 4: ("namespace", "string")},
    "RoleRef": {1: ("apiGroup", "string"), 2: ("kind", "string"), 3: ("name", "string")},
    "TypeMeta": {1: ("apiVersion", "string"), 2: ("kind", "string")},
    "Unknown": {1: ("typeMeta", "msg:TypeMeta"), 2: ("raw", "bytes"), 3: ("contentEncoding", "string"),
                4: ("contentType", "string")},
}  # fmt: skip


def _varint(data: bytes, position: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if position >= len(data):
            raise ProtobufError("truncated varint")
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, position
        shift += 7
        if shift > 70:
            raise ProtobufError("varint too long")


def _fields(data: bytes) -> list[tuple[int, int | bytes]]:
    """(field number, value) pairs: ints for varints, bytes for length-delimited fields."""
    result: list[tuple[int, int | bytes]] = []
    position = 0
    while position < len(data):
        key, position = _varint(data, position)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            value, position = _varint(data, position)
            result.append((number, value))
        elif wire_type == 2:
            length, position = _varint(data, position)
            if position + length > len(data):
                raise ProtobufError("truncated field")
            result.append((number, data[position: position + length]))
            position += length
        elif wire_type == 1:
            position += 8
        elif wire_type == 5:
            position += 4
        else:
            raise ProtobufError(f"unsupported wire type {wire_type}")
    return result


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _map_entry(data: bytes) -> tuple[str, bytes | int]:
    key = ""
    value: bytes | int = b""
    for number, item in _fields(data):
        if number == 1 and isinstance(item, bytes):
            key = item.decode()
        elif number == 2:
            value = item
    return key, value


def _scalar(kind: str, value: int | bytes) -> Any:
    if kind == "string":
        return value.decode() if isinstance(value, bytes) else str(value)
    if kind == "bytes":
        return base64.b64encode(value).decode() if isinstance(value, bytes) else ""
    if kind == "int":
        return _signed(value) if isinstance(value, int) else 0
    if kind == "bool":
        return bool(value)
    if kind == "intorstring" and isinstance(value, bytes):
        parts = dict(_fields(value))
        if parts.get(1, 0) == 1:
            raw = parts.get(3, b"")
            return raw.decode() if isinstance(raw, bytes) else str(raw)
        number = parts.get(2, 0)
        return _signed(number) if isinstance(number, int) else 0
    raise ProtobufError(f"cannot decode {kind}")


def decode_message(data: bytes, message: str) -> dict[str, Any]:
    schema = MESSAGES[message]
    result: dict[str, Any] = {}
    for number, value in _fields(data):
        field = schema.get(number)
        if field is None:
            continue  # a field the table does not know: drop it like an unknown JSON field
        name, kind = field
        keep_zero = kind.endswith("!")
        kind = kind.rstrip("!")
        if kind.startswith("map:"):
            if not isinstance(value, bytes):
                raise ProtobufError(f"{message}.{name}: bad map entry")
            key, item = _map_entry(value)
            value_kind = kind[4:]
            if value_kind == "quantity":
                decoded: Any = _scalar("string", dict(_fields(item)).get(1, b"") if isinstance(item, bytes) else b"")
            else:
                decoded = _scalar(value_kind, item)
            result.setdefault(name, {})[key] = decoded
        elif kind.startswith("list:"):
            item_kind = kind[5:]
            if item_kind.startswith("msg:"):
                if not isinstance(value, bytes):
                    raise ProtobufError(f"{message}.{name}: bad list item")
                result.setdefault(name, []).append(decode_message(value, item_kind[4:]))
            else:
                result.setdefault(name, []).append(_scalar(item_kind, value))
        elif kind.startswith("msg:"):
            if not isinstance(value, bytes):
                raise ProtobufError(f"{message}.{name}: bad message")
            nested = decode_message(value, kind[4:])
            if nested:
                result[name] = nested
        else:
            decoded = _scalar(kind, value)
            if decoded in ("", 0, False) and not keep_zero:
                continue  # Go zero values are omitted from JSON (omitempty)
            result[name] = decoded
    return result


def decode(body: bytes) -> dict[str, Any]:
    """A `k8s\\0`-prefixed runtime.Unknown envelope as the JSON-shaped object it carries."""
    if not body.startswith(MAGIC):
        raise ProtobufError("missing the Kubernetes protobuf magic prefix")
    envelope = decode_message(body[len(MAGIC):], "Unknown")
    type_meta = envelope.get("typeMeta") or {}
    kind = str(type_meta.get("kind", ""))
    if kind not in MESSAGES or kind in ("Unknown", "TypeMeta"):
        raise ProtobufError(f"protobuf bodies of kind {kind or '?'} are not supported; send JSON")
    raw = base64.b64decode(envelope.get("raw", ""))
    obj = decode_message(raw, kind)
    return {"apiVersion": type_meta.get("apiVersion", ""), "kind": kind, **obj}
