"""Drift: which of the fields fleet sets differ in the live object. Pure.

Only the desired object's own fields are compared, the way server-side apply
owns them: fields the API server or controllers fill in (defaults, status,
bookkeeping metadata) are not drift. Lists of maps are matched by their merge
key (containers by name, ports by port number...), so order and entries added
by other managers are not drift either. Paths name fields, never values, so
a Secret's diff is safe to report.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from kubernetes.utils.quantity import parse_quantity

# metadata the server writes; never part of what fleet sets
_SERVER_METADATA = frozenset(
    {
        "resourceVersion",
        "uid",
        "managedFields",
        "generation",
        "creationTimestamp",
        "selfLink",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
    }
)

# merge keys of associative lists, tried in order; the first one every desired item has wins
_MERGE_KEYS: dict[str, tuple[str, ...]] = {
    "ports": ("containerPort", "port", "name"),
    "volumeMounts": ("mountPath",),
    "volumeDevices": ("devicePath",),
    "hostAliases": ("ip",),
    "conditions": ("type",),
}
_DEFAULT_MERGE_KEYS = ("name",)

# values under these field names are resource quantities: "500m" == "0.5", "1Gi" == "1073741824"
_QUANTITY_PARENTS = frozenset({"limits", "requests", "capacity", "hard", "allocatable"})
_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _child(path: str, key: str) -> str:
    if _PLAIN_KEY.match(key):
        return f"{path}.{key}" if path else key
    return f'{path}["{key}"]'


def _is_empty(value: Any) -> bool:
    return value is None or value == {} or value == []


def _quantity(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    try:
        return Decimal(parse_quantity(value))
    except (ValueError, InvalidOperation, TypeError):
        return None


def _scalars_equal(desired: Any, live: Any, quantity: bool) -> bool:
    if desired == live and type(desired) is type(live):
        return True
    if isinstance(desired, bool) or isinstance(live, bool):
        return False
    if isinstance(desired, int | float) and isinstance(live, int | float):
        return bool(desired == live)
    if quantity:
        a, b = _quantity(desired), _quantity(live)
        return a is not None and a == b
    return False


def _merge_key(field: str, items: Sequence[Any]) -> str | None:
    if not items or not all(isinstance(item, Mapping) for item in items):
        return None
    for key in _MERGE_KEYS.get(field, _DEFAULT_MERGE_KEYS):
        if all(key in item for item in items):
            return key
    return None


def _diff(desired: Any, live: Any, path: str, field: str, out: list[str], quantity: bool = False) -> None:
    if isinstance(desired, Mapping):
        if not isinstance(live, Mapping):
            if not (_is_empty(desired) and live is None):
                out.append(path)
            return
        for key, value in desired.items():
            key = str(key)
            if key not in live:
                if not _is_empty(value):
                    out.append(_child(path, key))
                continue
            _diff(value, live[key], _child(path, key), key, out, quantity=field in _QUANTITY_PARENTS)
        return
    if isinstance(desired, list):
        _diff_list(desired, live, path, field, out)
        return
    if not _scalars_equal(desired, live, quantity):
        out.append(path)


def _diff_list(desired: list[Any], live: Any, path: str, field: str, out: list[str]) -> None:
    if not isinstance(live, list):
        if not (_is_empty(desired) and live is None):
            out.append(path)
        return
    merge_key = _merge_key(field, desired)
    if merge_key is not None:
        live_by_key = {item.get(merge_key): item for item in live if isinstance(item, Mapping)}
        for item in desired:
            item_path = f"{path}[{merge_key}={item[merge_key]}]"
            if item[merge_key] not in live_by_key:
                out.append(item_path)
            else:
                _diff(item, live_by_key[item[merge_key]], item_path, field, out)
        return
    if len(desired) != len(live):
        out.append(path)
        return
    if not all(isinstance(item, Mapping | list) for item in desired):
        # a list of scalars (args, command, finalizers) is atomic: one path for any change
        if not all(_scalars_equal(want, have, False) for want, have in zip(desired, live, strict=True)):
            out.append(path)
        return
    for index, (want, have) in enumerate(zip(desired, live, strict=True)):
        _diff(want, have, f"{path}[{index}]", field, out)


def _secret_data(obj: Mapping[str, Any]) -> dict[str, Any]:
    """A Secret's data with stringData folded in, as the API server stores it."""
    data = dict(obj.get("data") or {})
    for key, value in (obj.get("stringData") or {}).items():
        data[key] = base64.b64encode(str(value).encode()).decode()
    return data


def comparable(desired: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a desired object that fleet owns, normalised for comparison."""
    result = {key: value for key, value in desired.items() if key != "status"}
    metadata = {k: v for k, v in (desired.get("metadata") or {}).items() if k not in _SERVER_METADATA}
    result["metadata"] = metadata
    if desired.get("kind") == "Secret" and "stringData" in desired:
        result.pop("stringData")
        result["data"] = _secret_data(desired)
    return result


def diff_fields(desired: Mapping[str, Any], live: Mapping[str, Any]) -> list[str]:
    """Paths of the fields fleet sets whose live value differs, e.g. `spec.replicas`."""
    want = comparable(desired)
    have = dict(live)
    if live.get("kind") == "Secret" and "stringData" in live:
        have["data"] = _secret_data(live)
    out: list[str] = []
    _diff(want, have, "", "", out)
    return out
