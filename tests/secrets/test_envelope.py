"""Sealing to an agent's age key: round trip, isolation between clusters, filling placeholders."""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import pyrage
import pytest

from fleet.protocol import ANNOTATION_SECRET_SOURCE, SealedSecrets, object_key
from fleet.secrets.envelope import fill_secret_objects, generate_identity, open_sealed, recipient_of, seal
from fleet.secrets.errors import SecretError
from tests.secrets.conftest import CANARY

B64 = base64.b64encode(CANARY.encode()).decode()
VALUES = {"/Secret/app/db": {"password": B64, "user": base64.b64encode(b"app").decode()}}


def test_identity_pair() -> None:
    identity, recipient = generate_identity()
    assert identity.startswith("AGE-SECRET-KEY-1") and recipient.startswith("age1")
    assert recipient_of(identity) == recipient
    assert generate_identity() != (identity, recipient)


def test_seal_and_open_round_trip() -> None:
    identity, recipient = generate_identity()
    sealed = seal(VALUES, recipient)
    assert sealed.recipient == recipient
    assert CANARY not in sealed.model_dump_json() and B64 not in sealed.model_dump_json()
    assert open_sealed(sealed, identity) == VALUES
    # The wire format is the documented one: age ciphertext of {objectKey: {"data": {...}}}.
    raw = pyrage.decrypt(base64.b64decode(sealed.ciphertext), [pyrage.x25519.Identity.from_str(identity)])
    assert json.loads(raw) == {"/Secret/app/db": {"data": VALUES["/Secret/app/db"]}}


def test_one_clusters_agent_cannot_open_another_clusters_bundle() -> None:
    identity_a, recipient_a = generate_identity()
    identity_b, _ = generate_identity()
    sealed_for_a = seal(VALUES, recipient_a)
    assert open_sealed(sealed_for_a, identity_a) == VALUES
    with pytest.raises(SecretError, match="sealed for") as refused:
        open_sealed(sealed_for_a, identity_b)
    assert CANARY not in str(refused.value)
    # Relabelling the bundle with b's recipient does not help: the ciphertext is still a's.
    relabelled = SealedSecrets(recipient=recipient_of(identity_b), ciphertext=sealed_for_a.ciphertext)
    with pytest.raises(SecretError, match="could not be opened"):
        open_sealed(relabelled, identity_b)
    assert identity_b not in str(refused.value)


def test_bad_inputs_are_refused_without_echoing_keys() -> None:
    identity, recipient = generate_identity()
    with pytest.raises(SecretError, match="not an age recipient"):
        seal(VALUES, "age1nope")
    with pytest.raises(SecretError, match="not valid base64"):
        seal({"/Secret/app/db": {"password": CANARY + "!"}}, recipient)
    with pytest.raises(SecretError, match="malformed") as refused:
        open_sealed(seal(VALUES, recipient), identity[:-3] + "QQQ")
    assert identity[:-3] not in str(refused.value)
    with pytest.raises(SecretError):
        open_sealed(SealedSecrets(recipient=recipient, ciphertext="!!!"), identity)


def _placeholder(source: str, **fields: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "db", "namespace": "app", "annotations": {ANNOTATION_SECRET_SOURCE: source}},
        "type": "Opaque",
        **fields,
    }


def test_fill_sops_and_vault_placeholders() -> None:
    sops_secret = _placeholder("sops:secrets/common/db.yaml", data={"password": "", "user": ""})
    vault_secret = _placeholder(
        "vault",
        stringData={"password": "vault:kv/shared/db#password", "user": "app", "host": "db"},
        data={"token": "vault:kv/shared/db#token", "ca": "Y2E="},
    )
    vault_secret["metadata"]["name"] = "api"
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "app"}}
    objects = [config, sops_secret, vault_secret]
    before = copy.deepcopy(objects)
    values = {
        object_key(sops_secret): {"password": B64, "user": "YXBw"},
        object_key(vault_secret): {"password": B64, "token": "dG9r"},
    }

    filled = fill_secret_objects(objects, values)
    assert objects == before  # pure: the inputs are untouched
    assert filled[0] == config
    assert filled[1]["data"] == {"password": B64, "user": "YXBw"} and "stringData" not in filled[1]
    assert filled[2]["data"] == {"ca": "Y2E=", "password": B64, "token": "dG9r"}
    assert filled[2]["stringData"] == {"user": "app", "host": "db"}
    assert "vault:" not in json.dumps(filled)


def test_placeholder_without_values_is_an_error() -> None:
    placeholder = _placeholder("vault", stringData={"password": "vault:kv/shared/db#password"})
    with pytest.raises(SecretError, match="no sealed values"):
        fill_secret_objects([placeholder], {})
