"""`fleet validate` on secrets/: SOPS-encrypted, well-formed, readable metadata, scoped. No keys used."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from fleet.secrets.sops import SopsKeys, encrypt
from fleet.validate import validate_repo
from tests.validate.example import DEMO_AGE_RECIPIENT, copy_example, edit

CREDENTIALS = "secrets/common/registry-credentials.yaml"
PLAINTEXT = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: web\nstringData:\n  password: hunter2-canary\n"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return copy_example(tmp_path / "fleet")


def lines(root: Path) -> list[str]:
    report = validate_repo(root)
    text = [str(f) for f in report.findings]
    assert not any("hunter2-canary" in line for line in text)
    return text


def test_plaintext_file_under_secrets_is_refused(repo: Path) -> None:
    (repo / "secrets/common/db.yaml").write_text(PLAINTEXT)
    assert lines(repo) == ["secrets/common/db.yaml: error: not SOPS-encrypted (no `sops:` block)"]


def test_a_value_added_outside_sops_is_refused(repo: Path) -> None:
    edit(repo / CREDENTIALS, "stringData:\n", "stringData:\n    EXTRA: hunter2-canary\n")
    assert lines(repo) == [
        f"{CREDENTIALS}:9: error: stringData.EXTRA: value is not encrypted (edited outside sops?): "
        "re-encrypt the file with `sops`"
    ]


def test_a_sops_block_without_mac_is_refused(repo: Path) -> None:
    path = repo / CREDENTIALS
    text = path.read_text()
    kept = [line for line in text.splitlines(keepends=True) if not line.startswith("    mac: ")]
    assert len(kept) == len(text.splitlines()) - 1
    path.write_text("".join(kept))
    assert lines(repo) == [
        f"{CREDENTIALS}:11: error: sops: the sops block has no mac: the file was not written by sops or was altered"
    ]


def test_encrypted_metadata_is_refused_once(repo: Path, tmp_path: Path) -> None:
    # a creation rule without encrypted_regex encrypts name and namespace too: the hub cannot place it
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / ".sops.yaml").write_text(
        yaml.safe_dump({"creation_rules": [{"path_regex": "^secrets/", "age": DEMO_AGE_RECIPIENT}]})
    )
    ciphertext = encrypt(PLAINTEXT.encode(), "secrets/common/db.yaml", rules, SopsKeys())
    (repo / "secrets/common/db.yaml").write_bytes(ciphertext)
    found = lines(repo)
    assert len(found) == 1, found
    assert found[0].startswith("secrets/common/db.yaml: error: ")
    assert "is encrypted, so the Secret cannot be placed without keys" in found[0]
    assert "encrypted_regex" in found[0]


def test_unscoped_and_foreign_files_are_warnings(repo: Path) -> None:
    (repo / "secrets/misc").mkdir()
    (repo / "secrets/misc/registry.yaml").write_text((repo / CREDENTIALS).read_text())
    (repo / "secrets/notes.txt").write_text("rotate quarterly\n")
    (repo / "secrets/.gitkeep").write_text("")
    report = validate_repo(repo)
    assert report.passed() and not report.passed(strict=True)
    assert [(f.rule, str(f)) for f in report.findings] == [
        (
            "unscoped-secret",
            "secrets/misc/registry.yaml: warning: reaches no cluster: put it under secrets/common/ or "
            "secrets/clusters/<name>/, or add a scope for it in fleet.yaml (secrets.scopes)",
        ),
        (
            "sops-file",
            "secrets/notes.txt: warning: not a .yaml/.yml/.json file: fleet ignores it; make sure it holds no "
            "plaintext secret",
        ),
    ]


def test_a_label_scope_in_fleet_yaml_covers_a_directory(repo: Path) -> None:
    (repo / "secrets/prod").mkdir()
    (repo / "secrets/prod/registry.yaml").write_text(
        (repo / CREDENTIALS).read_text().replace("name: registry-credentials", "name: prod-registry")
    )
    # renamed so it does not collide with the common copy on prod clusters (only decryption
    # would notice that the MAC no longer matches; validate needs no keys)
    edit(
        repo / "fleet.yaml",
        "secrets:\n",
        "secrets:\n  scopes:\n    - path: secrets/prod\n      clusterSelector: {matchLabels: {env: prod}}\n",
    )
    assert lines(repo) == []
