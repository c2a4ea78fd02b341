"""Kubeconfig documents for simulated clusters (one context per cluster)."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

EXTENSION_NAME = "kubesim"


@dataclass(frozen=True)
class ClusterEntry:
    name: str
    url: str
    token: str
    ca_pem: bytes | None


def build(clusters: Iterable[ClusterEntry], admin_url: str | None = None, admin_token: str | None = None) -> dict[str, Any]:
    """A kubeconfig with one cluster/user/context per simulated cluster; context name == cluster name.

    When the admin endpoint runs, its URL and token sit in a top-level `extensions` entry
    named `kubesim`, where `fleet sim fault` and `fleet sim counters` find them.
    """
    entries = list(clusters)
    config: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [],
        "users": [],
        "contexts": [],
        "current-context": entries[0].name if entries else "",
    }
    for entry in entries:
        cluster: dict[str, Any] = {"server": entry.url}
        if entry.ca_pem is not None:
            cluster["certificate-authority-data"] = base64.b64encode(entry.ca_pem).decode()
        config["clusters"].append({"name": entry.name, "cluster": cluster})
        config["users"].append({"name": entry.name, "user": {"token": entry.token}})
        config["contexts"].append({"name": entry.name, "context": {"cluster": entry.name, "user": entry.name}})
    if admin_url:
        extension = {"apiVersion": "v1", "kind": "Config", "admin-url": admin_url}
        if admin_token:
            extension["admin-token"] = admin_token
        config["extensions"] = [{"name": EXTENSION_NAME, "extension": extension}]
    return config


def write(config: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write with mode 0600 (it holds bearer tokens), replacing atomically."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        yaml.safe_dump(config, handle, sort_keys=False)
    os.chmod(temporary, 0o600)
    os.replace(temporary, target)
    return target


def admin_endpoint(config: dict[str, Any]) -> tuple[str, str] | None:
    """(admin URL, admin token) recorded in a kubeconfig written by the simulator."""
    for entry in config.get("extensions") or []:
        if entry.get("name") == EXTENSION_NAME:
            extension = entry.get("extension") or {}
            if extension.get("admin-url"):
                return str(extension["admin-url"]), str(extension.get("admin-token", ""))
    return None
