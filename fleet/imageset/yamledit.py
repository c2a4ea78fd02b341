"""Surgical YAML edits: ruamel's round-trip parser finds the nodes, and only their bytes change.

A dump of a round-trip tree can still re-indent sequences or re-wrap long
lines. Here ruamel's composer gives every node's exact start and end offsets,
and an edit replaces or inserts text at those offsets, so comments, key order,
quoting and layout elsewhere stay byte for byte.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import yaml as pyyaml
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from fleet.errors import FleetError
from fleet.inventory.yamlfile import to_plain

_PLAIN_SAFE = re.compile(r"^[A-Za-z0-9_./@+$-][A-Za-z0-9_./:@+$-]*$")
_FLOW_INDICATORS = set(",[]{}:#")


class YamlEditError(FleetError):
    """A file cannot be edited as asked (it does not parse, or has an unexpected shape)."""


@dataclass(frozen=True)
class Edit:
    """Replace text[start:end] with `text` (start == end inserts)."""

    start: int
    end: int
    text: str


def compose_documents(text: str, file: str) -> list[Node]:
    try:
        return [node for node in YAML(typ="rt").compose_all(text) if node is not None]
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{file}:{mark.line + 1}" if mark is not None else file
        raise YamlEditError(f"{where}: invalid YAML: {exc.problem or exc.context}") from None


def load_plain(text: str) -> list[Any]:
    """Plain data of every document, to check an edit changed exactly what it meant to."""
    return [to_plain(doc) for doc in YAML(typ="rt").load_all(text) if doc is not None]


def get(node: Node | None, key: str) -> Node | None:
    if not isinstance(node, MappingNode):
        return None
    for key_node, value_node in node.value:
        if isinstance(key_node, ScalarNode) and key_node.value == key:
            return value_node
    return None


def get_path(node: Node | None, path: Iterable[str]) -> Node | None:
    for key in path:
        node = get(node, key)
    return node


def items(node: Node | None) -> list[Node]:
    return list(node.value) if isinstance(node, SequenceNode) else []


def scalar(node: Node | None) -> str | None:
    return str(node.value) if isinstance(node, ScalarNode) else None


def line_of(node: Node) -> int:
    return int(node.start_mark.line) + 1


def plain_scalar_ok(value: str, flow: bool = False) -> bool:
    """True if `value` written unquoted reads back as the same string (YAML 1.1 and 1.2 alike)."""
    if not _PLAIN_SAFE.match(value) or value.endswith(":"):
        return False
    if flow and any(ch in _FLOW_INDICATORS for ch in value):
        return False
    try:
        return bool(pyyaml.safe_load(value) == value)
    except pyyaml.YAMLError:
        return False


def render_scalar(value: str, style: str | None = None, flow: bool = False) -> str:
    """`value` as YAML text in the given quoting style ('"', "'" or plain), quoting when plain is unsafe."""
    if style == "'":
        return "'" + value.replace("'", "''") + "'"
    if style == '"' or not plain_scalar_ok(value, flow):
        return json.dumps(value, ensure_ascii=False)
    return value


def replace_scalar(node: ScalarNode, value: str) -> Edit:
    style = node.style if node.style in ("'", '"') else None
    return Edit(node.start_mark.index, node.end_mark.index, render_scalar(value, style))


def _content_end(node: Node) -> int:
    """Offset just after the last character of `node`'s own content."""
    if isinstance(node, MappingNode) and not node.flow_style and node.value:
        return _content_end(node.value[-1][1])
    if isinstance(node, SequenceNode) and not node.flow_style and node.value:
        return _content_end(node.value[-1])
    return int(node.end_mark.index)


def _after_line(text: str, index: int) -> tuple[int, str]:
    """Where a new line goes after the content ending at `index`, and the prefix it needs."""
    if index > 0 and text[index - 1] == "\n":  # a block scalar ends with its newline
        return index, ""
    newline = text.find("\n", index)
    if newline == -1:
        return len(text), "\n"
    return newline + 1, ""


def add_key(text: str, mapping: MappingNode, key: str, value: str) -> Edit:
    """Add `key: value` as the mapping's last entry. `value` is YAML text; a block value starts with a newline."""
    if mapping.flow_style:
        if not mapping.value:
            return Edit(mapping.start_mark.index + 1, mapping.start_mark.index + 1, f"{key}: {value}")
        end = _content_end(mapping.value[-1][1])
        return Edit(end, end, f", {key}: {value}")
    column = int(mapping.value[0][0].start_mark.column)
    at, prefix = _after_line(text, _content_end(mapping))
    block = value.replace("\n", "\n" + " " * column)
    return Edit(at, at, f"{prefix}{' ' * column}{key}:{'' if value.startswith(chr(10)) else ' '}{block}\n")


def append_item(text: str, sequence: SequenceNode, item: str) -> Edit:
    """Append `item` (YAML text on one line) to a sequence, in its own style."""
    if sequence.flow_style or not sequence.value:
        if not sequence.value:
            start = sequence.start_mark.index
            return Edit(start + 1, start + 1, item)
        end = _content_end(sequence.value[-1])
        return Edit(end, end, f", {item}")
    first = int(sequence.value[0].start_mark.index)
    dash = text.rfind("-", 0, first)
    line_start = text.rfind("\n", 0, dash) + 1
    column = dash - line_start
    at, prefix = _after_line(text, _content_end(sequence))
    return Edit(at, at, f"{prefix}{' ' * column}- {item}\n")


def apply_edits(text: str, edits: Sequence[Edit]) -> str:
    ordered = sorted(edits, key=lambda e: (e.start, e.end))
    for before, after in itertools.pairwise(ordered):
        if after.start < before.end:
            raise YamlEditError("overlapping edits")  # a bug, not a user error
    for edit in reversed(ordered):
        text = text[: edit.start] + edit.text + text[edit.end :]
    return text
