"""The hub's per-target secret resolution: fingerprints, keyed digests and sealed bundles.

A bundle carries value-free placeholders (annotation `fleet.dev/secret-source`);
this module turns them into values only inside one call, and hands back
either fingerprints (no values read), keyed digests, or ciphertext sealed to
one agent. Nothing is cached: every call reads SOPS files and Vault afresh.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from fleet.inventory.models import ClusterSpec, SecretScope
from fleet.protocol import ANNOTATION_SECRET_SOURCE, SealedSecrets, object_key
from fleet.secrets.digest import keyed_digest
from fleet.secrets.envelope import seal
from fleet.secrets.errors import SecretError, VaultRefError
from fleet.secrets.redact import Redactor
from fleet.secrets.refs import VaultRef, check_allowed, find_vault_refs, parse_vault_ref
from fleet.secrets.scope import secret_files_for
from fleet.secrets.sops import SopsKeys, check_secret_document, decrypt, load_document
from fleet.secrets.vault import VaultClient

log = logging.getLogger(__name__)

SOPS_SOURCE_PREFIX = "sops:"
VAULT_SOURCE = "vault"


@dataclass(frozen=True)
class SecretSource:
    """A value-free description of one placeholder Secret in a bundle."""

    object_key: str
    kind: Literal["sops", "vault"]
    file: str | None
    refs: Mapping[str, str]  # data key -> vault reference (canonical text)


def secret_sources(objects: Iterable[dict[str, Any]]) -> list[SecretSource]:
    """The placeholders among rendered objects: `sops:<file>` or `vault` in the secret-source annotation."""
    sources: list[SecretSource] = []
    seen: set[str] = set()
    for obj in objects:
        annotations = (obj.get("metadata") or {}).get("annotations") or {}
        source = annotations.get(ANNOTATION_SECRET_SOURCE)
        if source is None:
            continue
        key = object_key(obj)
        if obj.get("kind") != "Secret":
            raise SecretError(f"{key}: {ANNOTATION_SECRET_SOURCE} is only valid on a Secret")
        if key in seen:
            raise SecretError(f"{key}: two secret placeholders for the same Secret")
        seen.add(key)
        if isinstance(source, str) and source.startswith(SOPS_SOURCE_PREFIX) and len(source) > len(SOPS_SOURCE_PREFIX):
            sources.append(SecretSource(key, "sops", source[len(SOPS_SOURCE_PREFIX) :], {}))
        elif source == VAULT_SOURCE:
            refs: dict[str, str] = {}
            for field_path, ref in find_vault_refs(obj):
                data_key = field_path.split(".", 1)[1]
                if data_key in refs:
                    raise VaultRefError(f"{key}: data key {data_key!r} references Vault in both data and stringData")
                refs[data_key] = str(ref)
            if not refs:
                raise VaultRefError(f"{key}: marked {ANNOTATION_SECRET_SOURCE}: vault but has no vault: references")
            sources.append(SecretSource(key, "vault", None, refs))
        else:
            raise SecretError(f"{key}: {ANNOTATION_SECRET_SOURCE} must be 'sops:<file>' or 'vault', not {source!r}")
    return sources


def _secret_data(document: Mapping[str, Any], file: str) -> dict[str, bytes]:
    """A decrypted Secret's values as bytes; `stringData` wins over `data` as on the API server."""
    values: dict[str, bytes] = {}
    for data_key, encoded in (document.get("data") or {}).items():
        if not isinstance(encoded, str):
            raise SecretError(f"{file}: data.{data_key} must be a base64 string")
        try:
            values[data_key] = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise SecretError(f"{file}: data.{data_key} is not valid base64") from None
    for data_key, text in (document.get("stringData") or {}).items():
        if not isinstance(text, str):
            raise SecretError(f"{file}: stringData.{data_key} must be a string (quote it in YAML)")
        values[data_key] = text.encode()
    return values


class SecretResolver:
    """Resolves a cluster's placeholders. Holds keys and clients, never values."""

    def __init__(
        self,
        repo_root: Path,
        keys: SopsKeys,
        vault: VaultClient | None,
        hub_key: bytes,
        allowed_prefixes: Sequence[str],
        *,
        clusters: Mapping[str, ClusterSpec] | None = None,
        scopes: Sequence[SecretScope] = (),
        redactor: Redactor | None = None,
    ) -> None:
        """`clusters`/`scopes` (optional) make the resolver re-check each file's scope itself;
        a `redactor` (optional) learns every value resolved, so a log filter can scrub it."""
        self._root = repo_root
        self._keys = keys
        self._vault = vault
        self._hub_key = hub_key
        self._prefixes = list(allowed_prefixes)
        self._clusters = clusters
        self._scopes = list(scopes)
        self._redactor = redactor
        # keyed digests (never values) of SOPS files already decrypted, by file, ciphertext hash and
        # placeholder: a file shared by many clusters is decrypted once per resolver, not once per cluster
        self._sops_digests: dict[tuple[str, str, str], str] = {}

    def __repr__(self) -> str:
        return f"SecretResolver(repo_root={str(self._root)!r}, vault={self._vault!r})"

    # ------------------------------------------------------------ SOPS files

    def _sops_path(self, cluster: str, file: str) -> Path:
        parts = file.split("/")
        if file.startswith("/") or "\\" in file or any(p in ("", ".", "..") for p in parts) or parts[0] != "secrets":
            raise SecretError(f"{file}: a SOPS source must be a plain path under secrets/")
        if len(parts) >= 4 and parts[1] == "clusters" and parts[2] != cluster:
            raise SecretError(f"{file}: belongs to cluster {parts[2]!r} and is never sent to {cluster!r}")
        if self._clusters is not None:
            spec = self._clusters.get(cluster)
            if spec is None or not secret_files_for(spec, [file], self._scopes):
                raise SecretError(f"{file}: is not in scope for cluster {cluster!r}")
        root = self._root.resolve()
        path = (root / file).resolve()
        if not path.is_relative_to(root):
            raise SecretError(f"{file}: resolves outside the repository")
        return path

    def _ciphertext(self, cluster: str, file: str) -> bytes:
        try:
            return self._sops_path(cluster, file).read_bytes()
        except OSError as exc:
            raise SecretError(f"{file}: cannot read it ({exc.strerror})") from None

    def _decrypt_source(self, cluster: str, source: SecretSource) -> tuple[dict[str, bytes], dict[str, str]]:
        file = source.file or ""
        ciphertext = self._ciphertext(cluster, file)
        document = load_document(decrypt(ciphertext, file, self._keys), file)
        check_secret_document(document, file)
        actual = object_key(document)
        if actual != source.object_key:
            raise SecretError(f"{file}: decrypts to {actual}, but the placeholder is {source.object_key}")
        return _secret_data(document, file), {file: _sops_fingerprint(ciphertext)}

    # ------------------------------------------------------------ Vault references

    def _require_vault(self) -> VaultClient:
        if self._vault is None:
            raise SecretError("a Secret references Vault but no Vault is configured (secrets.vault.address)")
        return self._vault

    def _refs(self, cluster: str, source: SecretSource) -> dict[str, VaultRef]:
        refs = {}
        for data_key, text in source.refs.items():
            ref = parse_vault_ref(text)
            try:
                check_allowed(ref, cluster, self._prefixes)
            except VaultRefError as exc:
                raise VaultRefError(f"{source.object_key}: {exc}") from None
            refs[data_key] = ref
        return refs

    def _read_source(self, cluster: str, source: SecretSource) -> tuple[dict[str, bytes], dict[str, str]]:
        vault = self._require_vault()
        values: dict[str, bytes] = {}
        versions: dict[str, str] = {}
        for data_key, ref in self._refs(cluster, source).items():
            values[data_key], version = vault.read(ref)
            versions[str(ref)] = _vault_fingerprint(ref, version)
        return values, versions

    # ------------------------------------------------------------ public

    def _resolve(self, cluster: str, source: SecretSource) -> tuple[dict[str, bytes], dict[str, str]]:
        if source.kind == "sops":
            values, versions = self._decrypt_source(cluster, source)
        else:
            values, versions = self._read_source(cluster, source)
        if self._redactor is not None:
            for value in values.values():
                self._redactor.register(value)
        return values, versions

    def versions(self, cluster: str, sources: Sequence[SecretSource]) -> dict[str, str]:
        """File or reference -> version fingerprint, for the store and rollout tracking. Reads no values."""
        fingerprints: dict[str, str] = {}
        current: dict[str, int] = {}
        for source in sources:
            if source.kind == "sops":
                file = source.file or ""
                fingerprints[file] = _sops_fingerprint(self._ciphertext(cluster, file))
                continue
            for ref in self._refs(cluster, source).values():
                version = ref.version
                if version is None:
                    if ref.location not in current:
                        current[ref.location] = self._require_vault().current_version(ref.mount, ref.path)
                    version = current[ref.location]
                fingerprints[str(ref)] = _vault_fingerprint(ref, version)
        return fingerprints

    def digests(self, cluster: str, sources: Sequence[SecretSource]) -> dict[str, str]:
        """object key -> keyed digest of its values. Decrypts in memory: also the reconcile-time trial."""
        result = {}
        for source in sources:
            cache_key = None
            if source.kind == "sops":
                file = source.file or ""
                # the scope check runs for every cluster; only the decryption is shared
                fingerprint = _sops_fingerprint(self._ciphertext(cluster, file))
                cache_key = (file, fingerprint, source.object_key)
                if cache_key in self._sops_digests:
                    result[source.object_key] = self._sops_digests[cache_key]
                    continue
            values, _ = self._resolve(cluster, source)
            result[source.object_key] = keyed_digest(self._hub_key, values)
            if cache_key is not None:
                self._sops_digests[cache_key] = result[source.object_key]
        log.debug("computed %d secret digests for cluster %s", len(result), cluster)
        return result

    def seal_with_versions(
        self, cluster: str, sources: Sequence[SecretSource], recipient: str
    ) -> tuple[SealedSecrets, dict[str, str]]:
        """Resolve and seal in one call, with the fingerprints of exactly the versions sealed."""
        payload: dict[str, dict[str, str]] = {}
        versions: dict[str, str] = {}
        for source in sources:
            if source.object_key in payload:
                raise SecretError(f"{source.object_key}: two secret placeholders for the same Secret")
            values, used = self._resolve(cluster, source)
            payload[source.object_key] = {k: base64.b64encode(v).decode("ascii") for k, v in values.items()}
            versions.update(used)
        sealed = seal(payload, recipient)
        log.debug("sealed %d secrets for cluster %s to %s", len(payload), cluster, recipient)
        return sealed, versions

    def seal_for(self, cluster: str, sources: Sequence[SecretSource], recipient: str) -> SealedSecrets:
        """Resolve the cluster's values and seal them to its agent; nothing is retained."""
        return self.seal_with_versions(cluster, sources, recipient)[0]


def _sops_fingerprint(ciphertext: bytes) -> str:
    return "sops:sha256:" + hashlib.sha256(ciphertext).hexdigest()


def _vault_fingerprint(ref: VaultRef, version: int) -> str:
    return f"vault:{ref.location}@{version}"
