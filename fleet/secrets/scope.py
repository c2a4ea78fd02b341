"""Which SOPS files under `secrets/` reach which cluster. Pure functions over a file list.

Rules (every rule whose directory contains a file applies, and all of them
must admit the cluster, so a nested or overlapping scope only ever narrows):
- `secrets/common/**` admits every cluster;
- `secrets/clusters/<name>/**` admits the cluster `<name>` only;
- a label scope from `fleet.yaml` admits clusters its selector matches.
A file no rule covers reaches no cluster, and `unscoped_files` reports it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import PurePosixPath

from fleet.inventory.models import ClusterSpec, LabelSelector, SecretScope
from fleet.plan.targeting import selector_matches

SECRETS_DIR = "secrets"
COMMON_DIR = ("secrets", "common")
CLUSTERS_DIR = ("secrets", "clusters")

Rule = Callable[[ClusterSpec], bool]


def _parts(file: str) -> tuple[str, ...] | None:
    """The path's segments, or None for anything not a plain relative path under secrets/."""
    if not file or "\\" in file or file.startswith("/"):
        return None
    parts = tuple(file.split("/"))
    if any(part in ("", ".", "..") for part in parts):
        return None
    if len(parts) < 2 or parts[0] != SECRETS_DIR:
        return None
    return parts


def _is_under(parts: tuple[str, ...], directory: tuple[str, ...]) -> bool:
    return len(parts) > len(directory) and parts[: len(directory)] == directory


def _rules_for(parts: tuple[str, ...], scopes: Sequence[SecretScope]) -> list[Rule]:
    rules: list[Rule] = []
    if _is_under(parts, COMMON_DIR):
        rules.append(lambda cluster: True)
    if _is_under(parts, CLUSTERS_DIR):
        # secrets/clusters/<name>/<file...>: a file directly in secrets/clusters/ names no cluster,
        # and no label scope may hand it out either.
        if len(parts) < 4:
            return []
        owner = parts[2]
        rules.append(lambda cluster: cluster.name == owner)
    for scope in scopes:
        if _is_under(parts, PurePosixPath(scope.path).parts):
            rules.append(_label_rule(scope.clusterSelector))
    return rules


def _label_rule(selector: LabelSelector) -> Rule:
    return lambda cluster: selector_matches(selector, cluster.labels)


def secret_files_for(cluster: ClusterSpec, files: Iterable[str], scopes: Sequence[SecretScope]) -> list[str]:
    """The files among `files` (repo-relative, '/'-separated) that `cluster` may receive, sorted."""
    chosen = []
    for file in files:
        parts = _parts(file)
        if parts is None:
            continue
        rules = _rules_for(parts, scopes)
        if rules and all(rule(cluster) for rule in rules):
            chosen.append(file)
    return sorted(set(chosen))


def unscoped_files(files: Iterable[str], scopes: Sequence[SecretScope]) -> list[str]:
    """Files no scope covers (or that are not plain paths under secrets/): they reach no cluster."""
    return sorted({file for file in files if (parts := _parts(file)) is None or not _rules_for(parts, scopes)})
