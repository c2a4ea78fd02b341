"""Per-cluster value substitution in manifests, Flux post-build style.

`${name}` and `${a.b.c}` are replaced inside string scalars only, after YAML
parsing, so a value can never inject YAML structure. A string that is exactly
`${x}` takes the value's type (so `replicas: ${replicas}` stays an int).
`$${x}` is a literal `${x}`. `${x:=default}` gives a default.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_VAR = re.compile(r"\$(\$?)\{([A-Za-z_][A-Za-z0-9_.-]*)(?::=([^}]*))?\}")


class UnknownValue(KeyError):
    def __init__(self, name: str, path: str) -> None:
        self.name = name
        self.path = path
        super().__init__(name)


_MISSING = object()


def lookup(values: Mapping[str, Any], dotted: str) -> Any:
    node: Any = values
    for part in dotted.split("."):
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        else:
            return _MISSING
    return node


def _render_scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def substitute_string(text: str, values: Mapping[str, Any], path: str) -> Any:
    whole = _VAR.fullmatch(text)
    if whole and not whole.group(1):
        found = lookup(values, whole.group(2))
        if found is _MISSING:
            if whole.group(3) is None:
                raise UnknownValue(whole.group(2), path)
            return whole.group(3)
        return found

    def replace(match: re.Match[str]) -> str:
        if match.group(1):  # $${x} -> ${x}
            return match.group(0)[1:]
        found = lookup(values, match.group(2))
        if found is _MISSING:
            if match.group(3) is None:
                raise UnknownValue(match.group(2), path)
            return match.group(3)
        if isinstance(found, dict | list):
            raise UnknownValue(match.group(2) + " (a map or list cannot be embedded in text)", path)
        return _render_scalar(found)

    if "$" not in text:
        return text
    return _VAR.sub(replace, text)


def substitute(node: Any, values: Mapping[str, Any], path: str = "") -> Any:
    """A copy of `node` with every `${...}` in strings replaced. Raises UnknownValue."""
    if isinstance(node, dict):
        return {k: substitute(v, values, f"{path}.{k}" if path else str(k)) for k, v in node.items()}
    if isinstance(node, list):
        return [substitute(v, values, f"{path}[{i}]") for i, v in enumerate(node)]
    if isinstance(node, str):
        return substitute_string(node, values, path)
    return node
