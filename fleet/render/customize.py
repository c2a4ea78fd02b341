"""Per-target customisations: namespace, image overrides, replica overrides, scale to zero.

Each function takes and returns plain objects; callers pass deep copies.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fleet.inventory.models import ImageOverride, ReplicaOverride
from fleet.render.kinds import SCALABLE_KINDS, is_namespaced, pod_spec


def split_image(image: str) -> tuple[str, str | None, str | None]:
    """"registry:5000/team/app:1.2@sha256:..." -> (name, tag, digest). A port is not a tag."""
    name, _, digest = image.partition("@")
    slash = name.rfind("/")
    colon = name.rfind(":")
    tag = None
    if colon > slash:
        name, tag = name[:colon], name[colon + 1 :]
    return name, tag, digest or None


def join_image(name: str, tag: str | None, digest: str | None) -> str:
    image = name
    if tag and not digest:
        image += f":{tag}"
    if digest:
        image += f"@{digest}"
    return image


def apply_image_overrides(obj: dict[str, Any], overrides: Sequence[ImageOverride]) -> None:
    spec = pod_spec(obj)
    if spec is None or not overrides:
        return
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for container in spec.get(key) or []:
            image = container.get("image")
            if not isinstance(image, str):
                continue
            name, tag, digest = split_image(image)
            for override in overrides:
                if override.name != name:
                    continue
                new_name = override.newName or name
                new_tag = override.newTag if override.newTag is not None else tag
                new_digest = override.digest if override.digest is not None else (None if override.newTag else digest)
                container["image"] = join_image(new_name, new_tag, new_digest)
                break


def apply_replica_overrides(obj: dict[str, Any], overrides: Sequence[ReplicaOverride]) -> None:
    if obj.get("kind") not in SCALABLE_KINDS:
        return
    name = (obj.get("metadata") or {}).get("name")
    for override in overrides:
        if override.name == name:
            obj.setdefault("spec", {})["replicas"] = override.count


def scale_to_zero(obj: dict[str, Any]) -> None:
    if obj.get("kind") in SCALABLE_KINDS:
        obj.setdefault("spec", {})["replicas"] = 0


def default_namespace(obj: dict[str, Any], namespace: str | None, custom_scopes: dict[tuple[str, str], bool]) -> None:
    if namespace is None or not is_namespaced(obj, custom_scopes):
        return
    meta = obj.setdefault("metadata", {})
    if not meta.get("namespace"):
        meta["namespace"] = namespace
