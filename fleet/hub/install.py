"""One-time in-cluster agent install: the only time the hub applies to a cluster itself.

The manifests in `templates/agent/` (also at `deploy/agent/` in the repo) are
rendered with the cluster name, the hub URL, the image and a fresh one-time
bootstrap token, and applied once with the provider's credentials. After that
the agent pulls everything else itself.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import yaml
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import DynamicApiError

from fleet import __version__
from fleet.protocol import object_key
from fleet.providers.base import ClusterAccess
from fleet.render.substitute import substitute

FIELD_MANAGER = "fleet-install"
DEFAULT_IMAGE = f"ghcr.io/fleet-dev/fleet:{__version__}"


class InstallError(Exception):
    pass


def render_agent_manifests(cluster: str, hub_url: str, token: str, image: str = DEFAULT_IMAGE) -> list[dict[str, Any]]:
    values = {"cluster": cluster, "hub": hub_url, "token": token, "image": image}
    objects: list[dict[str, Any]] = []
    folder = resources.files("fleet.hub") / "templates" / "agent"
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".yaml"):
            continue
        for doc in yaml.safe_load_all(entry.read_text()):
            if doc:
                objects.append(substitute(doc, values))
    return objects


def apply_manifests(access: ClusterAccess, objects: list[dict[str, Any]]) -> list[str]:
    """Server-side apply each object in order; returns the applied object keys (never their content)."""
    applied = []
    with access.kubernetes_client() as api_client:
        client = DynamicClient(api_client)
        for obj in objects:
            resource = client.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
            namespace = obj["metadata"].get("namespace")
            try:
                resource.server_side_apply(
                    body=obj, name=obj["metadata"]["name"], namespace=namespace, field_manager=FIELD_MANAGER,
                    force_conflicts=True,
                )
            except DynamicApiError as exc:
                raise InstallError(f"applying {object_key(obj)} failed: {exc.status} {exc.reason}") from None
            applied.append(object_key(obj))
    return applied
