"""Secret placeholders in bundles, and checksums that roll the workloads consuming them.

Bundles never hold secret values. A Secret whose values come from SOPS or
Vault is rendered as a placeholder: its metadata, plus an annotation naming
where its values come from. The hub fills values only in the sealed part of
the agent's response.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from fleet.protocol import (
    ANNOTATION_SECRET_DIGEST,
    ANNOTATION_SECRET_SOURCE,
    ANNOTATION_SECRETS_CHECKSUM,
    object_key,
)
from fleet.render.kinds import pod_spec, pod_template_metadata
from fleet.secrets.refs import is_vault_ref

SOPS_SOURCE_PREFIX = "sops:"
VAULT_SOURCE = "vault"


def _annotations(obj: dict[str, Any]) -> dict[str, str]:
    meta = obj.setdefault("metadata", {})
    annotations = meta.get("annotations")
    if not isinstance(annotations, dict):
        annotations = {}
        meta["annotations"] = annotations
    return annotations


def mark_vault_placeholder(obj: dict[str, Any]) -> bool:
    """Mark a Secret whose stringData holds `vault:` references. True if it is one."""
    if obj.get("kind") != "Secret":
        return False
    string_data = obj.get("stringData")
    if not isinstance(string_data, dict) or not any(is_vault_ref(v) for v in string_data.values()):
        return False
    _annotations(obj)[ANNOTATION_SECRET_SOURCE] = VAULT_SOURCE
    return True


def sops_placeholder(skeleton: Mapping[str, Any], file: str) -> dict[str, Any]:
    """A placeholder Secret for a SOPS file: metadata and type only, values come sealed."""
    meta = dict(skeleton.get("metadata") or {})
    placeholder: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            key: meta[key] for key in ("name", "namespace", "labels", "annotations") if meta.get(key) is not None
        },
    }
    if skeleton.get("type"):
        placeholder["type"] = skeleton["type"]
    _annotations(placeholder)[ANNOTATION_SECRET_SOURCE] = SOPS_SOURCE_PREFIX + file
    return placeholder


def secret_key(namespace: str, name: str) -> str:
    return f"/Secret/{namespace}/{name}"


def consumed_secret_names(obj: dict[str, Any]) -> set[str]:
    """Secrets a workload's pods read through env, envFrom, volumes or imagePullSecrets."""
    spec = pod_spec(obj)
    if spec is None:
        return set()
    names: set[str] = set()
    for key in ("initContainers", "containers"):
        for container in spec.get(key) or []:
            for env in container.get("env") or []:
                ref = ((env.get("valueFrom") or {}).get("secretKeyRef") or {}).get("name")
                if ref:
                    names.add(ref)
            for env_from in container.get("envFrom") or []:
                ref = (env_from.get("secretRef") or {}).get("name")
                if ref:
                    names.add(ref)
    for volume in spec.get("volumes") or []:
        ref = (volume.get("secret") or {}).get("secretName")
        if ref:
            names.add(ref)
        for source in (volume.get("projected") or {}).get("sources") or []:
            ref = (source.get("secret") or {}).get("name")
            if ref:
                names.add(ref)
    return names


def annotate_secret_digests(objects: list[dict[str, Any]], digests: Mapping[str, str]) -> None:
    """Stamp each placeholder Secret with its keyed digest, and each consuming workload's pod
    template with a checksum over the digests it reads, so a changed value rolls the pods.

    `digests` maps a Secret's object key (`/Secret/<namespace>/<name>`) to its keyed digest.
    """
    for obj in objects:
        if obj.get("kind") != "Secret":
            continue
        digest = digests.get(object_key(obj))
        if digest is not None:
            _annotations(obj)[ANNOTATION_SECRET_DIGEST] = digest
    for obj in objects:
        names = consumed_secret_names(obj)
        if not names:
            continue
        namespace = (obj.get("metadata") or {}).get("namespace", "")
        consumed = sorted(
            f"{name}={digests[secret_key(namespace, name)]}" for name in names if secret_key(namespace, name) in digests
        )
        if not consumed:
            continue
        template_meta = pod_template_metadata(obj)
        if template_meta is None:
            continue
        annotations = template_meta.get("annotations")
        if not isinstance(annotations, dict):
            annotations = {}
            template_meta["annotations"] = annotations
        annotations[ANNOTATION_SECRETS_CHECKSUM] = hashlib.sha256("\n".join(consumed).encode()).hexdigest()[:32]
