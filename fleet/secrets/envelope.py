"""Sealing a cluster's secret values to its agent's age key, and opening them on the agent.

The hub seals at serve time and keeps nothing; only the agent holding the
matching identity can open the bundle. The payload is JSON
`{objectKey: {"data": {key: base64value}}}` (see fleet.protocol.SealedSecrets).
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
from collections.abc import Mapping
from typing import Any

import pyrage

from fleet.protocol import ANNOTATION_SECRET_SOURCE, SealedSecrets, object_key
from fleet.secrets.errors import SecretError
from fleet.secrets.refs import is_vault_ref


def generate_identity() -> tuple[str, str]:
    """A new age key pair: (private identity "AGE-SECRET-KEY-1...", public recipient "age1...")."""
    identity = pyrage.x25519.Identity.generate()
    return str(identity), str(identity.to_public())


def recipient_of(identity: str) -> str:
    return str(_parse_identity(identity).to_public())


def _parse_identity(identity: str) -> pyrage.x25519.Identity:
    try:
        return pyrage.x25519.Identity.from_str(identity.strip())
    except Exception:  # pyrage raises a bare ValueError-like IdentityError; never echo the key
        raise SecretError("the agent's age identity is malformed") from None


def _parse_recipient(recipient: str) -> pyrage.x25519.Recipient:
    try:
        return pyrage.x25519.Recipient.from_str(recipient.strip())
    except Exception:
        raise SecretError(f"{recipient!r} is not an age recipient (age1...)") from None


def _check_values(values: Mapping[str, Mapping[str, str]]) -> dict[str, dict[str, dict[str, str]]]:
    payload: dict[str, dict[str, dict[str, str]]] = {}
    for key, data in values.items():
        if not isinstance(data, Mapping):
            raise SecretError(f"{key}: secret data must be a mapping of key to base64 value")
        checked: dict[str, str] = {}
        for data_key, value in data.items():
            if not isinstance(value, str):
                raise SecretError(f"{key}: value of {data_key!r} must be a base64 string")
            try:
                base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                raise SecretError(f"{key}: value of {data_key!r} is not valid base64") from None
            checked[str(data_key)] = value
        payload[str(key)] = {"data": checked}
    return payload


def seal(values: Mapping[str, Mapping[str, str]], recipient: str) -> SealedSecrets:
    """Encrypt `{objectKey: {dataKey: base64}}` to one age recipient."""
    target = _parse_recipient(recipient)
    plaintext = json.dumps(_check_values(values), sort_keys=True, separators=(",", ":")).encode()
    ciphertext = pyrage.encrypt(plaintext, [target])
    return SealedSecrets(recipient=str(target), ciphertext=base64.b64encode(ciphertext).decode("ascii"))


def open_sealed(sealed: SealedSecrets, identity: str) -> dict[str, dict[str, str]]:
    """Decrypt a bundle's secrets with this agent's identity; SecretError if it was sealed for someone else."""
    own = _parse_identity(identity)
    own_recipient = str(own.to_public())
    if sealed.recipient != own_recipient:
        raise SecretError(f"these secrets are sealed for {sealed.recipient}, not for this agent ({own_recipient})")
    try:
        ciphertext = base64.b64decode(sealed.ciphertext, validate=True)
    except (binascii.Error, ValueError):
        raise SecretError("sealed secrets: ciphertext is not valid base64") from None
    try:
        plaintext = pyrage.decrypt(ciphertext, [own])
    except Exception:
        raise SecretError(f"sealed secrets could not be opened with the identity of {own_recipient}") from None
    try:
        payload = json.loads(plaintext)
    except ValueError:
        raise SecretError("sealed secrets: payload is not JSON") from None
    if not isinstance(payload, dict):
        raise SecretError("sealed secrets: payload is not an object")
    opened: dict[str, dict[str, str]] = {}
    for key, entry in payload.items():
        data = entry.get("data") if isinstance(entry, dict) else None
        if not isinstance(data, dict):
            raise SecretError(f"sealed secrets: {key} has no data mapping")
        opened[key] = _check_values({key: data})[key]["data"]
    return opened


def fill_secret_objects(objects: list[dict[str, Any]], values: Mapping[str, Mapping[str, str]]) -> list[dict[str, Any]]:
    """New objects with each placeholder Secret's `data` filled from `values[object_key]`.

    A SOPS placeholder's data is replaced wholesale (its skeleton only lists key
    names); a Vault placeholder keeps its literal entries and loses its `vault:`
    ones. A placeholder without values raises: applying it would blank the Secret.
    """
    filled: list[dict[str, Any]] = []
    for obj in objects:
        annotations = (obj.get("metadata") or {}).get("annotations") or {}
        source = annotations.get(ANNOTATION_SECRET_SOURCE)
        if source is None or obj.get("kind") != "Secret":
            filled.append(obj)
            continue
        key = object_key(obj)
        if key not in values:
            raise SecretError(f"{key}: no sealed values for this secret placeholder ({ANNOTATION_SECRET_SOURCE}: {source})")
        result = copy.deepcopy(obj)
        if str(source).startswith("sops:"):
            data: dict[str, str] = {}
            string_data: dict[str, Any] = {}
        else:
            data = {k: v for k, v in (obj.get("data") or {}).items() if not is_vault_ref(v)}
            string_data = {k: v for k, v in (obj.get("stringData") or {}).items() if not is_vault_ref(v)}
        data.update(values[key])
        # stringData wins over data on the API server: drop literal entries the sealed values replace.
        string_data = {k: v for k, v in string_data.items() if k not in values[key]}
        result["data"] = data
        result.pop("stringData", None)
        if string_data:
            result["stringData"] = string_data
        filled.append(result)
    return filled
