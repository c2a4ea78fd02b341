"""YAML reading that remembers where each field came from.

Errors in the fleet repo must name the file, the line and the field. We parse
with ruamel's round-trip loader, which records line numbers on every mapping
and sequence, and hand plain Python data to pydantic.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError

from fleet.errors import SpecProblem

MAX_FILE_BYTES = 1024 * 1024


@dataclass(frozen=True)
class YamlDocument:
    """One parsed YAML document: plain data plus the tree that knows line numbers."""

    file: str
    data: Any
    tree: Any

    def line_of(self, loc: Iterable[str | int]) -> int | None:
        return line_of(self.tree, loc)


def _loader() -> YAML:
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    return yaml


def to_plain(node: Any) -> Any:
    """Round-trip nodes -> plain dicts, lists and scalars."""
    if isinstance(node, CommentedMap):
        return {str(k): to_plain(v) for k, v in node.items()}
    if isinstance(node, CommentedSeq):
        return [to_plain(v) for v in node]
    if isinstance(node, dict):
        return {str(k): to_plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [to_plain(v) for v in node]
    if isinstance(node, str):
        return str(node)
    if isinstance(node, bool):
        return bool(node)
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    return node


def parse_yaml_text(text: str, file: str) -> list[YamlDocument]:
    """Parse every document in `text`. Raises ProblemError with the line on bad YAML."""
    try:
        trees = [doc for doc in _loader().load_all(text) if doc is not None]
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        reason = exc.problem or exc.context or "invalid YAML"
        raise ProblemError(SpecProblem(file=file, field="", line=line, message=f"invalid YAML: {reason}")) from None
    except Exception as exc:  # ruamel raises a few unmarked errors (e.g. duplicate keys)
        raise ProblemError(SpecProblem(file=file, field="", message=f"invalid YAML: {exc}")) from None
    return [YamlDocument(file=file, data=to_plain(tree), tree=tree) for tree in trees]


def read_yaml_file(path: Path, file: str) -> list[YamlDocument]:
    """Read and parse a YAML file; `file` is the repo-relative name used in errors."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ProblemError(
                SpecProblem(file=file, field="", message=f"file is {size} bytes; the limit is {MAX_FILE_BYTES}")
            )
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ProblemError(SpecProblem(file=file, field="", message="file is not UTF-8 text")) from None
    except OSError as exc:
        raise ProblemError(SpecProblem(file=file, field="", message=f"cannot read: {exc.strerror}")) from None
    return parse_yaml_text(text, file)


class ProblemError(Exception):
    """Carries a single SpecProblem up to the collector."""

    def __init__(self, problem: SpecProblem) -> None:
        self.problem = problem
        super().__init__(str(problem))


def line_of(tree: Any, loc: Iterable[str | int]) -> int | None:
    """1-based line of the deepest node of `loc` that exists in `tree`.

    Components that are not in the tree (pydantic adds union tags such as
    'aws' to locations) are skipped.
    """
    line: int | None = None
    node = tree
    for part in loc:
        if isinstance(node, CommentedMap) and isinstance(part, str) and part in node:
            with contextlib.suppress(KeyError, TypeError):
                line = node.lc.key(part)[0] + 1
            node = node[part]
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node):
            with contextlib.suppress(KeyError, TypeError, IndexError):
                line = node.lc.item(part)[0] + 1
            node = node[part]
        elif line is None and hasattr(node, "lc"):
            line = node.lc.line + 1
    if line is None and hasattr(tree, "lc"):
        line = tree.lc.line + 1
    return line


def field_path(tree: Any, loc: Iterable[str | int]) -> str:
    """Dotted field name for a pydantic location, without union tags."""
    parts: list[str] = []
    node = tree
    for part in loc:
        if isinstance(part, int):
            parts.append(f"[{part}]")
            node = node[part] if isinstance(node, list) and 0 <= part < len(node) else None
            continue
        if isinstance(node, dict) and part in node:
            parts.append(f".{part}" if parts else part)
            node = node[part]
        elif isinstance(node, dict):
            # a field that is missing or unknown; name it, then stop descending
            parts.append(f".{part}" if parts else part)
            node = None
        # anything else is a union tag that does not appear in the file
    return "".join(parts)


_MESSAGES = {
    "extra_forbidden": "unknown field",
    "missing": "required field is missing",
}


def strip_union_tags(data: Any, loc: Iterable[str | int]) -> tuple[str | int, ...]:
    """Drop the discriminator values pydantic inserts into locations.

    For `provider: {type: aws, ...}` pydantic reports ('provider', 'aws', 'region');
    the file only has ('provider', 'region').
    """
    kept: list[str | int] = []
    node = data
    for part in loc:
        if isinstance(node, dict) and part not in node and node.get("type") == part:
            continue
        kept.append(part)
        if isinstance(node, dict):
            node = node.get(part) if isinstance(part, str) else None
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            node = None
    return tuple(kept)


def validation_problems(doc: YamlDocument, exc: ValidationError) -> list[SpecProblem]:
    problems = []
    for error in exc.errors():
        loc = strip_union_tags(doc.data, error["loc"])
        message = _MESSAGES.get(error["type"], error["msg"])
        if error["type"] == "union_tag_invalid":
            expected = error.get("ctx", {}).get("expected_tags", "")
            message = f"must be one of {expected}"
            loc = (*loc, "type")
        elif error["type"] == "union_tag_not_found":
            loc = (*loc, "type")
            message = "required field is missing"
        message = message.removeprefix("Value error, ")
        problems.append(
            SpecProblem(file=doc.file, field=field_path(doc.data, loc), line=line_of(doc.tree, loc), message=message)
        )
    return problems


def iter_yaml_files(directory: Path) -> Iterator[Path]:
    if not directory.is_dir():
        return
    for path in sorted(directory.iterdir()):
        if path.suffix in (".yaml", ".yml") and not path.name.startswith("."):
            yield path
