"""Shared helpers for the secrets tests: age keys, throwaway fleet repos, canary values."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from fleet.secrets.envelope import generate_identity
from fleet.secrets.sops import SopsKeys, encrypt

REGEX = "^(data|stringData)$"
CANARY = "canary-Zq8vX3pL0wK7"  # a value that must never show up anywhere but a decryption


@dataclass(frozen=True)
class AgeKey:
    identity: str
    recipient: str
    key_file: Path

    def keys(self) -> SopsKeys:
        return SopsKeys(age_key_file=self.key_file)


def _age_key(directory: Path) -> AgeKey:
    identity, recipient = generate_identity()
    directory.mkdir(parents=True, exist_ok=True)
    key_file = directory / "keys.txt"
    key_file.write_text(identity + "\n")
    key_file.chmod(0o600)
    return AgeKey(identity, recipient, key_file)


@pytest.fixture(scope="session")
def age_key(tmp_path_factory: pytest.TempPathFactory) -> AgeKey:
    return _age_key(tmp_path_factory.mktemp("age-a"))


@pytest.fixture(scope="session")
def other_age_key(tmp_path_factory: pytest.TempPathFactory) -> AgeKey:
    return _age_key(tmp_path_factory.mktemp("age-b"))


@pytest.fixture(autouse=True)
def isolated_key_environment(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only keys a test hands over explicitly count: no ~/.config/sops, ~/.gnupg, ~/.ssh or VAULT_* leak in."""
    monkeypatch.setenv("HOME", str(tmp_path_factory.mktemp("home")))
    for name in list(os.environ):
        if name.startswith(("SOPS_", "VAULT_", "AWS_", "GOOGLE_")) or name in ("GNUPGHOME", "EDITOR", "VISUAL"):
            monkeypatch.delenv(name)


def secret_doc(
    name: str = "db",
    namespace: str = "app",
    string_data: dict[str, Any] | None = None,
    data: dict[str, str] | None = None,
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace, "labels": {"team": "db"}},
        "type": "Opaque",
    }
    if string_data is not None:
        doc["stringData"] = string_data
    if data is not None:
        doc["data"] = data
    return doc


def secret_yaml(**kwargs: Any) -> bytes:
    return yaml.safe_dump(secret_doc(**kwargs), sort_keys=False).encode()


def write_sops_config(root: Path, rules: list[dict[str, Any]]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / ".sops.yaml").write_text(yaml.safe_dump({"creation_rules": rules}, sort_keys=False))


def age_rule(recipient: str, path_regex: str = r"^secrets/.*\.(ya?ml|json)$", regex: str | None = REGEX) -> dict[str, Any]:
    rule: dict[str, Any] = {"path_regex": path_regex, "age": recipient}
    if regex is not None:
        rule["encrypted_regex"] = regex
    return rule


@pytest.fixture
def age_repo(tmp_path: Path, age_key: AgeKey) -> Iterator[Path]:
    """A fleet repo whose .sops.yaml encrypts everything under secrets/ to `age_key`."""
    root = tmp_path / "repo"
    write_sops_config(root, [age_rule(age_key.recipient)])
    yield root


def add_encrypted(root: Path, file: str, plaintext: bytes, keys: SopsKeys) -> bytes:
    """Encrypt `plaintext` for `file` with the repo's rules and write it there; returns the ciphertext."""
    ciphertext = encrypt(plaintext, file, root, keys)
    target = root / file
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(ciphertext)
    return ciphertext
