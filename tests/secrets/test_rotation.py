"""Rotation primitives against a real OpenBao: new versions, rollout state, destroying the old one."""

from __future__ import annotations

import logging
import re
import secrets

import pytest

from fleet.inventory.models import VaultAuth
from fleet.secrets.errors import SecretError, VaultRefError
from fleet.secrets.refs import parse_vault_ref
from fleet.secrets.rotation import RolloutState, destroy_old, generate_value, rollout_state, rotate
from fleet.secrets.vault import VaultClient
from tests.fixtures.vault import BaoServer


@pytest.fixture
def vault(vault_server: BaoServer) -> VaultClient:
    return VaultClient(vault_server.addr, VaultAuth(), env={"VAULT_TOKEN": vault_server.root_token})


def test_generate_value() -> None:
    value = generate_value(40)
    assert len(value) == 40 and re.fullmatch(r"[A-Za-z0-9_-]+", value)
    assert generate_value(40) != value
    with pytest.raises(SecretError):
        generate_value(4)


def test_rotate_writes_a_new_version_and_never_logs_it(vault: VaultClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    path = f"shared/rot-{secrets.token_hex(4)}"
    vault.write("kv", path, {"password": "old-value", "user": "app"})
    ref = parse_vault_ref(f"vault:kv/{path}#password")
    new_value = generate_value(32)

    result = rotate(vault, ref, new_value)
    assert (result.old_version, result.new_version) == (1, 2)
    assert result.fingerprint == f"vault:kv/{path}@2"
    assert vault.read(ref) == (new_value.encode(), 2)
    assert vault.read(parse_vault_ref(f"vault:kv/{path}#user")) == (b"app", 2)
    assert new_value not in repr(result) and new_value not in caplog.text


def test_rotate_creates_a_missing_path_and_refuses_pinned_refs(vault: VaultClient) -> None:
    path = f"shared/rot-{secrets.token_hex(4)}"
    result = rotate(vault, parse_vault_ref(f"vault:kv/{path}#password"), generate_value(16))
    assert (result.old_version, result.new_version) == (None, 1)
    with pytest.raises(VaultRefError, match="pinned"):
        rotate(vault, parse_vault_ref(f"vault:kv/{path}#password?version=1"), generate_value(16))


def test_rollout_state() -> None:
    applied = {"a": "vault:kv/x@2", "b": "vault:kv/x@1", "c": None, "d": "vault:kv/x@2"}
    healthy = {"a": True, "b": True, "c": True, "d": False}
    state = rollout_state("vault:kv/x@2", applied, healthy)
    assert state == RolloutState(current="vault:kv/x@2", on_version=["a"], behind=["b", "c", "d"], complete=False)
    done = rollout_state("vault:kv/x@2", {"a": "vault:kv/x@2", "d": "vault:kv/x@2"}, {"a": True, "d": True})
    assert done.complete and done.behind == []
    # A cluster without a health report is not counted as done.
    assert not rollout_state("vault:kv/x@2", {"a": "vault:kv/x@2"}, {}).complete


def test_destroy_old_only_when_complete(vault: VaultClient) -> None:
    path = f"shared/rot-{secrets.token_hex(4)}"
    ref = parse_vault_ref(f"vault:kv/{path}#password")
    vault.write("kv", path, {"password": "v1"})
    result = rotate(vault, ref, generate_value(16))
    old = parse_vault_ref(f"vault:kv/{path}#password?version=1")

    behind = rollout_state(result.fingerprint, {"a": result.fingerprint, "b": f"vault:kv/{path}@1"}, {"a": True, "b": True})
    with pytest.raises(SecretError, match="clusters still behind: b"):
        destroy_old(vault, ref, 1, behind)
    assert vault.read(old) == (b"v1", 1)

    other = rollout_state("vault:kv/elsewhere@2", {"a": "vault:kv/elsewhere@2"}, {"a": True})
    with pytest.raises(SecretError, match="not this path"):
        destroy_old(vault, ref, 1, other)
    complete = rollout_state(result.fingerprint, {"a": result.fingerprint}, {"a": True})
    with pytest.raises(SecretError, match="not older"):
        destroy_old(vault, ref, 2, complete)

    destroy_old(vault, ref, 1, complete)
    with pytest.raises(VaultRefError):
        vault.read(old)
    assert vault.read(ref)[1] == 2
