"""SOPS through the real sops binary: age (file and env), PGP, Vault transit, rules, tampering."""

from __future__ import annotations

import base64
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from fleet.protocol import ANNOTATION_SECRET_SOURCE
from fleet.secrets import sops as sops_module
from fleet.secrets.errors import SopsError
from fleet.secrets.sops import (
    SopsKeys,
    decrypt,
    encrypt,
    is_sops_encrypted,
    secret_manifest,
    sops_metadata,
)
from tests.fixtures.gpg import GpgKey
from tests.fixtures.vault import BaoServer
from tests.secrets.conftest import (
    CANARY,
    REGEX,
    AgeKey,
    add_encrypted,
    age_rule,
    secret_yaml,
    write_sops_config,
)

FILE = "secrets/common/db.yaml"


def _flip_first_char(text: str, pattern: str) -> str:
    match = re.search(pattern, text)
    assert match, pattern
    start = match.start(1)
    replacement = "A" if text[start] != "A" else "B"
    return text[:start] + replacement + text[start + 1 :]


def _assert_clean(message: str) -> None:
    assert CANARY not in message
    assert base64.b64encode(CANARY.encode()).decode() not in message


# ------------------------------------------------------------------ age


def test_age_key_file_round_trip_keeps_metadata_readable(age_repo: Path, age_key: AgeKey) -> None:
    plaintext = secret_yaml(string_data={"password": CANARY}, data={"token": base64.b64encode(b"tok").decode()})
    ciphertext = add_encrypted(age_repo, FILE, plaintext, age_key.keys())

    text = ciphertext.decode()
    assert CANARY not in text
    document = yaml.safe_load(text)
    assert document["metadata"]["name"] == "db"
    assert document["stringData"]["password"].startswith("ENC[")
    assert is_sops_encrypted(text)
    assert not is_sops_encrypted(plaintext.decode())

    decrypted = yaml.safe_load(decrypt(ciphertext, FILE, age_key.keys()))
    assert decrypted["stringData"]["password"] == CANARY
    assert "sops" not in decrypted


def test_age_key_from_environment_variable(age_repo: Path, age_key: AgeKey, monkeypatch: pytest.MonkeyPatch) -> None:
    ciphertext = add_encrypted(age_repo, FILE, secret_yaml(string_data={"password": CANARY}), age_key.keys())
    keys = SopsKeys(age_key=age_key.identity)
    assert yaml.safe_load(decrypt(ciphertext, FILE, keys))["stringData"]["password"] == CANARY

    monkeypatch.setenv("SOPS_AGE_KEY", age_key.identity)
    from_env = SopsKeys.from_env()
    assert from_env.age_key == age_key.identity
    assert age_key.identity not in repr(from_env)
    assert yaml.safe_load(decrypt(ciphertext, FILE, from_env))["stringData"]["password"] == CANARY


def test_json_secret_round_trip(age_repo: Path, age_key: AgeKey) -> None:
    file = "secrets/common/api.json"
    plaintext = (
        b'{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "api", "namespace": "app"},'
        b' "stringData": {"key": "' + CANARY.encode() + b'"}}'
    )
    ciphertext = add_encrypted(age_repo, file, plaintext, age_key.keys())
    assert ciphertext.lstrip().startswith(b"{")
    assert CANARY.encode() not in ciphertext
    assert secret_manifest(ciphertext.decode(), file)["data"] == {"key": ""}
    assert b'"key": "' + CANARY.encode() in decrypt(ciphertext, file, age_key.keys())


# ------------------------------------------------------------------ PGP and Vault transit


def test_pgp_round_trip_with_gnupghome(tmp_path: Path, gpg_key: GpgKey) -> None:
    root = tmp_path / "repo"
    write_sops_config(root, [{"path_regex": "^secrets/", "pgp": gpg_key.fingerprint, "encrypted_regex": REGEX}])
    ciphertext = add_encrypted(root, FILE, secret_yaml(string_data={"password": CANARY}), SopsKeys(gnupghome=gpg_key.home))

    metadata = sops_metadata(ciphertext.decode(), FILE)
    assert metadata.recipients == [f"pgp:{gpg_key.fingerprint}"]
    decrypted = decrypt(ciphertext, FILE, SopsKeys(gnupghome=gpg_key.home))
    assert yaml.safe_load(decrypted)["stringData"]["password"] == CANARY

    # Without the keyring (HOME is an empty directory) the same file is refused, naming the fingerprint.
    with pytest.raises(SopsError) as refused:
        decrypt(ciphertext, FILE, SopsKeys())
    assert FILE in str(refused.value)
    assert gpg_key.fingerprint in str(refused.value)
    _assert_clean(str(refused.value))


def test_vault_transit_round_trip(tmp_path: Path, vault_server: BaoServer) -> None:
    root = tmp_path / "repo"
    write_sops_config(
        root, [{"path_regex": "^secrets/", "hc_vault_transit_uri": vault_server.transit_uri, "encrypted_regex": REGEX}]
    )
    keys = SopsKeys(vault_addr=vault_server.addr, vault_token=vault_server.root_token)
    ciphertext = add_encrypted(root, FILE, secret_yaml(string_data={"password": CANARY}), keys)

    assert sops_metadata(ciphertext.decode(), FILE).recipients == [vault_server.transit_uri]
    assert yaml.safe_load(decrypt(ciphertext, FILE, keys))["stringData"]["password"] == CANARY
    assert vault_server.root_token not in repr(keys)

    with pytest.raises(SopsError) as refused:
        decrypt(ciphertext, FILE, SopsKeys(vault_addr=vault_server.addr, vault_token="not-a-token"))
    assert FILE in str(refused.value) and vault_server.transit_uri in str(refused.value)
    _assert_clean(str(refused.value))


# ------------------------------------------------------------------ creation rules


def test_encrypt_follows_the_matching_creation_rule(tmp_path: Path, age_key: AgeKey, other_age_key: AgeKey) -> None:
    root = tmp_path / "repo"
    write_sops_config(
        root,
        [
            age_rule(other_age_key.recipient, path_regex=r"^secrets/clusters/prod-a/"),
            age_rule(age_key.recipient, path_regex=r"^secrets/common/"),
        ],
    )
    plaintext = secret_yaml(string_data={"password": CANARY})
    prod = encrypt(plaintext, "secrets/clusters/prod-a/db.yaml", root, SopsKeys())
    common = encrypt(plaintext, "secrets/common/db.yaml", root, SopsKeys())
    assert sops_metadata(prod.decode(), "prod").recipients == [other_age_key.recipient]
    assert sops_metadata(common.decode(), "common").recipients == [age_key.recipient]

    # The rule decides who can read it: the common key cannot open the prod-a file.
    with pytest.raises(SopsError):
        decrypt(prod, "secrets/clusters/prod-a/db.yaml", age_key.keys())

    with pytest.raises(SopsError, match="no creation rule"):
        encrypt(plaintext, "secrets/elsewhere/db.yaml", root, SopsKeys())


def test_encrypt_without_sops_config_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SopsError, match=r"no \.sops\.yaml"):
        encrypt(secret_yaml(string_data={"password": CANARY}), FILE, tmp_path, SopsKeys())


def test_recipient_environment_variables_cannot_override_rules(
    age_repo: Path, age_key: AgeKey, other_age_key: AgeKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOPS_AGE_RECIPIENTS", other_age_key.recipient)
    ciphertext = encrypt(secret_yaml(string_data={"password": CANARY}), FILE, age_repo, SopsKeys.from_env())
    assert sops_metadata(ciphertext.decode(), FILE).recipients == [age_key.recipient]


# ------------------------------------------------------------------ refusals


@pytest.fixture
def encrypted(age_repo: Path, age_key: AgeKey) -> str:
    return add_encrypted(age_repo, FILE, secret_yaml(string_data={"password": CANARY}), age_key.keys()).decode()


@pytest.mark.parametrize(
    "pattern",
    [r"password: ENC\[AES256_GCM,data:([^,]+)", r"mac: ENC\[AES256_GCM,data:([^,]+)"],
    ids=["value", "mac"],
)
def test_tampered_file_is_refused(encrypted: str, age_key: AgeKey, pattern: str) -> None:
    tampered = _flip_first_char(encrypted, pattern)
    with pytest.raises(SopsError) as refused:
        decrypt(tampered.encode(), FILE, age_key.keys())
    message = str(refused.value)
    assert FILE in message and age_key.recipient in message
    assert "integrity" in message
    _assert_clean(message)


def test_changed_metadata_fails_the_mac(encrypted: str, age_key: AgeKey) -> None:
    tampered = encrypted.replace("name: db", "name: other", 1)
    with pytest.raises(SopsError, match="MAC does not match") as refused:
        decrypt(tampered.encode(), FILE, age_key.keys())
    _assert_clean(str(refused.value))


def test_file_without_an_available_key_is_refused(encrypted: str, other_age_key: AgeKey, age_key: AgeKey) -> None:
    for keys in (SopsKeys(), other_age_key.keys()):
        with pytest.raises(SopsError) as refused:
            decrypt(encrypted.encode(), FILE, keys)
        message = str(refused.value)
        assert FILE in message and age_key.recipient in message and "no key available" in message
        _assert_clean(message)


def test_no_flag_can_skip_the_mac_check() -> None:
    source = Path(sops_module.__file__).read_text()
    assert "ignore-mac" not in source and "ignore_mac" not in source


# ------------------------------------------------------------------ metadata and skeletons


def test_metadata_needs_no_keys(encrypted: str, age_key: AgeKey) -> None:
    metadata = sops_metadata(encrypted, FILE)
    assert metadata.recipients == [age_key.recipient]
    assert metadata.has_mac
    assert metadata.encrypted_regex == REGEX
    assert metadata.last_modified


@pytest.mark.parametrize(
    "text",
    ["apiVersion: v1\nkind: Secret\n", "sops: 3\n", "sops: {mac: x}\n", "a: [\n"],
    ids=["no-block", "not-mapping", "no-recipients", "bad-yaml"],
)
def test_metadata_of_an_ill_formed_file_is_an_error(text: str) -> None:
    with pytest.raises(SopsError, match=FILE):
        sops_metadata(text, FILE)


def test_secret_manifest_is_a_value_free_skeleton(age_repo: Path, age_key: AgeKey) -> None:
    ciphertext = add_encrypted(
        age_repo, FILE, secret_yaml(string_data={"password": CANARY}, data={"token": "dG9r"}), age_key.keys()
    )
    skeleton = secret_manifest(ciphertext.decode(), FILE)
    assert skeleton == {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": "db",
            "namespace": "app",
            "labels": {"team": "db"},
            "annotations": {ANNOTATION_SECRET_SOURCE: f"sops:{FILE}"},
        },
        "type": "Opaque",
        "data": {"password": "", "token": ""},
    }
    assert "ENC[" not in repr(skeleton)


def test_encrypted_metadata_is_refused_with_the_fix(tmp_path: Path, age_key: AgeKey) -> None:
    root = tmp_path / "repo"
    write_sops_config(root, [age_rule(age_key.recipient, regex=None)])
    ciphertext = encrypt(secret_yaml(string_data={"password": CANARY}), FILE, root, SopsKeys())
    with pytest.raises(SopsError) as refused:
        secret_manifest(ciphertext.decode(), FILE)
    message = str(refused.value)
    assert FILE in message and "encrypted_regex" in message and REGEX in message and ".sops.yaml" in message


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({"kind": "ConfigMap"}, "kind Secret"),
        ({"metadata": {"name": "db"}}, "namespace"),
        ({"metadata": {"namespace": "app"}}, "metadata.name"),
        ({"spec": {}}, "unexpected top-level"),
    ],
)
def test_secret_manifest_validates_the_secret(
    age_repo: Path, age_key: AgeKey, change: dict[str, Any], complaint: str
) -> None:
    document = yaml.safe_load(secret_yaml(string_data={"password": CANARY}))
    document.update(change)
    ciphertext = encrypt(yaml.safe_dump(document).encode(), FILE, age_repo, age_key.keys())
    with pytest.raises(SopsError, match=complaint):
        secret_manifest(ciphertext.decode(), FILE)


def test_plaintext_file_is_not_a_manifest() -> None:
    with pytest.raises(SopsError, match="not SOPS-encrypted"):
        secret_manifest(secret_yaml(string_data={"password": CANARY}).decode(), FILE)


def test_parse_errors_never_quote_the_text() -> None:
    broken = f"stringData:\n  password: {CANARY}\n   bad: [\n"
    with pytest.raises(SopsError) as refused:
        sops_metadata(broken, FILE)
    _assert_clean(str(refused.value))


# ------------------------------------------------------------------ plaintext never on disk


def test_decrypt_writes_nothing_and_passes_data_through_pipes_only(
    encrypted: str, age_key: AgeKey, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty_tmp = tmp_path / "tmp"
    empty_tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(empty_tmp))
    calls: list[dict[str, Any]] = []
    real_run = subprocess.run

    def spy(args: list[str], **kwargs: Any) -> Any:
        calls.append({"args": list(args), **kwargs})
        return real_run(args, **kwargs)

    monkeypatch.setattr(sops_module.subprocess, "run", spy)
    plaintext = decrypt(encrypted.encode(), FILE, age_key.keys())
    assert CANARY.encode() in plaintext

    assert list(empty_tmp.iterdir()) == []
    [call] = calls
    assert call["env"]["TMPDIR"] == str(empty_tmp)
    assert call["input"] == encrypted.encode()
    assert call["capture_output"] is True
    assert call["args"][1:] == ["decrypt", "--input-type", "yaml", "--output-type", "yaml"]
    assert not any(CANARY in str(value) for value in call["env"].values())
    assert not {"--output", "--in-place", "-i"} & set(call["args"])
