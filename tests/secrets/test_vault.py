"""VaultClient against a real OpenBao dev server: KV v2, AppRole renewal, sealed and stopped servers."""

from __future__ import annotations

import logging
import secrets
import threading
import time

import hvac
import hvac.exceptions
import pytest

from fleet.inventory.models import VaultAuth
from fleet.secrets.errors import VaultRefError, VaultUnavailable
from fleet.secrets.refs import VaultRef, parse_vault_ref
from fleet.secrets.vault import VaultClient
from tests.fixtures.vault import BaoServer
from tests.secrets.conftest import CANARY

READ_SHARED = """
path "kv/data/shared/*" { capabilities = ["read"] }
path "kv/metadata/shared/*" { capabilities = ["read"] }
"""


def _path() -> str:
    return f"shared/t-{secrets.token_hex(4)}"


def _root_client(server: BaoServer, **kwargs: float) -> VaultClient:
    return VaultClient(server.addr, VaultAuth(method="token"), env={"VAULT_TOKEN": server.root_token}, **kwargs)


def _approle_client(server: BaoServer, role_id: str, secret_id: str, **kwargs: object) -> VaultClient:
    env = {"VAULT_ROLE_ID": role_id, "VAULT_SECRET_ID": secret_id}
    return VaultClient(server.addr, VaultAuth(method="approle"), env=env, **kwargs)  # type: ignore[arg-type]


def test_read_current_and_pinned_versions(vault_server: BaoServer) -> None:
    client = _root_client(vault_server)
    path = _path()
    assert client.write("kv", path, {"password": "first-" + CANARY, "user": "app"}) == 1
    assert client.write("kv", path, {"password": "second-" + CANARY}) == 2

    assert client.read(parse_vault_ref(f"vault:kv/{path}#password")) == (b"second-" + CANARY.encode(), 2)
    assert client.read(parse_vault_ref(f"vault:kv/{path}#password?version=1")) == (b"first-" + CANARY.encode(), 1)
    # Patch semantics: the second write kept the key it did not mention.
    assert client.read(parse_vault_ref(f"vault:kv/{path}#user")) == (b"app", 2)
    assert client.current_version("kv", path) == 2


def test_write_to_a_new_path_and_non_string_values(vault_server: BaoServer) -> None:
    client = _root_client(vault_server)
    path = _path()
    vault_server.client().secrets.kv.v2.create_or_update_secret(path, {"port": 5432}, mount_point="kv")
    assert client.read(VaultRef("kv", path, "port")) == (b"5432", 1)


def test_destroyed_version_can_no_longer_be_read(vault_server: BaoServer) -> None:
    client = _root_client(vault_server)
    path = _path()
    client.write("kv", path, {"password": CANARY})
    client.write("kv", path, {"password": "newer"})
    client.destroy_versions("kv", path, [1])

    with pytest.raises(VaultRefError) as refused:
        client.read(VaultRef("kv", path, "password", version=1))
    assert CANARY not in str(refused.value)
    assert client.read(VaultRef("kv", path, "password")) == (b"newer", 2)
    raw = vault_server.client().secrets.kv.v2.read_secret_metadata(path, mount_point="kv")
    assert raw["data"]["versions"]["1"]["destroyed"] is True


def test_missing_key_and_missing_path_are_reference_errors(vault_server: BaoServer) -> None:
    client = _root_client(vault_server)
    path = _path()
    client.write("kv", path, {"password": CANARY})
    with pytest.raises(VaultRefError, match="no key 'nope'") as missing_key:
        client.read(VaultRef("kv", path, "nope"))
    assert CANARY not in str(missing_key.value)
    with pytest.raises(VaultRefError, match="not found"):
        client.read(VaultRef("kv", "shared/does-not-exist", "password"))
    with pytest.raises(VaultRefError):
        client.current_version("kv", "shared/does-not-exist")


def test_denied_read_is_unavailable_without_values(vault_server: BaoServer) -> None:
    path = _path()
    _root_client(vault_server).write("kv", path, {"password": CANARY})
    token = vault_server.token('path "kv/data/clusters/*" { capabilities = ["read"] }')
    client = VaultClient(vault_server.addr, VaultAuth(), env={"VAULT_TOKEN": token})
    with pytest.raises(VaultUnavailable, match="denied") as refused:
        client.read(VaultRef("kv", path, "password"))
    assert CANARY not in str(refused.value) and token not in str(refused.value)
    assert refused.value.__cause__ is None and refused.value.__suppress_context__


def test_missing_token_says_which_variable(vault_server: BaoServer) -> None:
    client = VaultClient(vault_server.addr, VaultAuth(tokenEnv="FLEET_VAULT_TOKEN"), env={})
    with pytest.raises(VaultUnavailable, match="FLEET_VAULT_TOKEN"):
        client.read(VaultRef("kv", "shared/x", "k"))


def test_sealed_vault_is_unavailable(vault_server: BaoServer) -> None:
    client = _root_client(vault_server)
    path = _path()
    client.write("kv", path, {"password": CANARY})
    assert client.health() == "ok"
    with vault_server.sealed():
        assert client.health() == "sealed"
        with pytest.raises(VaultUnavailable, match="sealed") as refused:
            client.read(VaultRef("kv", path, "password"))
        assert CANARY not in str(refused.value)
        with pytest.raises(VaultUnavailable):
            client.current_version("kv", path)
    assert client.read(VaultRef("kv", path, "password")) == (CANARY.encode(), 1)


def test_stopped_vault_is_unavailable(disposable_vault: BaoServer) -> None:
    client = _root_client(disposable_vault, timeout=2.0)
    client.write("kv", "shared/db", {"password": CANARY})
    disposable_vault.stop()
    assert client.health() == "unreachable"
    with pytest.raises(VaultUnavailable, match="unreachable") as refused:
        client.read(VaultRef("kv", "shared/db", "password"))
    assert CANARY not in str(refused.value)
    assert refused.value.__cause__ is None


def test_approle_token_is_kept_alive_past_its_ttl(vault_server: BaoServer, caplog: pytest.LogCaptureFixture) -> None:
    """A 2 s token with a 4 s max TTL: reads keep working for 6 s through renewals and re-logins."""
    caplog.set_level(logging.DEBUG, logger="fleet.secrets")
    path = _path()
    _root_client(vault_server).write("kv", path, {"password": CANARY})
    role_id, secret_id = vault_server.approle(READ_SHARED, token_ttl="2s", token_max_ttl="4s")
    client = _approle_client(vault_server, role_id, secret_id)
    ref = VaultRef("kv", path, "password")

    assert client.read(ref) == (CANARY.encode(), 1)
    first_token = client._client.token
    tokens = {first_token}
    deadline = time.monotonic() + 6
    while time.monotonic() < deadline:
        time.sleep(0.4)
        assert client.read(ref)[1] == 1
        tokens.add(client._client.token)

    # The first token really expired (the test can fail), and the client moved on to a fresh login.
    stale = hvac.Client(url=vault_server.addr, token=first_token)
    with pytest.raises(hvac.exceptions.Forbidden):
        stale.secrets.kv.v2.read_secret_version(path, mount_point="kv", raise_on_deleted_version=True)
    assert len(tokens) >= 2
    # Renewal was proactive: no read ever had its token rejected first.
    assert "rejected the AppRole token" not in caplog.text
    assert "renewed Vault token" in caplog.text


def test_maintain_renews_when_due_by_the_injected_clock(vault_server: BaoServer) -> None:
    role_id, secret_id = vault_server.approle(READ_SHARED, token_ttl="1h", token_max_ttl="24h")
    now = [1000.0]
    client = _approle_client(vault_server, role_id, secret_id, clock=lambda: now[0])
    client.maintain()
    token = client._client.token
    assert client.token_expires_in() == pytest.approx(3600)

    now[0] += 1000  # not yet two thirds of the TTL: nothing happens
    client.maintain()
    assert client.token_expires_in() == pytest.approx(2600)

    now[0] += 1500  # past two thirds: renewed in place (same token, full TTL again)
    client.maintain()
    assert client._client.token == token
    assert client.token_expires_in() == pytest.approx(3600, abs=5)
    lookup = vault_server.client().auth.token.lookup(token)["data"]
    assert lookup["ttl"] > 3500


def test_concurrent_reads_share_one_login(vault_server: BaoServer) -> None:
    path = _path()
    _root_client(vault_server).write("kv", path, {"password": CANARY})
    role_id, secret_id = vault_server.approle(READ_SHARED, secret_id_num_uses=1)
    client = _approle_client(vault_server, role_id, secret_id)
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            for _ in range(5):
                client.read(VaultRef("kv", path, "password"))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # A single-use secret id: a second login would have failed.
    assert errors == []
