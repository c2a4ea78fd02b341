"""SecretResolver end to end: a SOPS file and a Vault reference, resolved, digested and sealed."""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from fleet.inventory.models import ClusterSpec, SecretScope, VaultAuth
from fleet.protocol import ANNOTATION_SECRET_SOURCE, object_key
from fleet.secrets.envelope import generate_identity, open_sealed
from fleet.secrets.errors import SecretError, VaultRefError, VaultUnavailable
from fleet.secrets.redact import REDACTED, Redactor
from fleet.secrets.resolver import SecretResolver, SecretSource, secret_sources
from fleet.secrets.sops import secret_manifest
from fleet.secrets.vault import VaultClient
from tests.fixtures.vault import BaoServer
from tests.secrets.conftest import CANARY, AgeKey, add_encrypted, secret_yaml

CLUSTER = "prod-a"
FILE = "secrets/common/db.yaml"
VAULT_CANARY = "vault-" + CANARY
TOKEN_VALUE = "token-value-Q7xkW2"
PREFIXES = ["kv/clusters/{cluster}/", "kv/shared/"]
HUB_KEY = b"h" * 32


def _b64(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


def _forms(value: str) -> list[str]:
    return [value, _b64(value)]


@dataclass
class Setup:
    repo: Path
    age_key: AgeKey
    vault: VaultClient
    server: BaoServer
    vault_path: str
    objects: list[dict[str, Any]]

    def resolver(self, vault: VaultClient | None = None, hub_key: bytes = HUB_KEY, **kwargs: Any) -> SecretResolver:
        return SecretResolver(self.repo, self.age_key.keys(), vault or self.vault, hub_key, PREFIXES, **kwargs)

    @property
    def ref(self) -> str:
        return f"vault:kv/{self.vault_path}#password"


def vault_placeholder(ref: str, name: str = "api") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": "app", "annotations": {ANNOTATION_SECRET_SOURCE: "vault"}},
        "stringData": {"password": ref, "user": "app"},
    }


@pytest.fixture
def setup(age_repo: Path, age_key: AgeKey, vault_server: BaoServer) -> Setup:
    ciphertext = add_encrypted(
        age_repo, FILE, secret_yaml(string_data={"password": CANARY}, data={"token": _b64(TOKEN_VALUE)}), age_key.keys()
    )
    vault = VaultClient(vault_server.addr, VaultAuth(), env={"VAULT_TOKEN": vault_server.root_token})
    path = f"shared/r-{secrets.token_hex(4)}/db"
    vault.write("kv", path, {"password": VAULT_CANARY})
    objects = [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "app"}},
        secret_manifest(ciphertext.decode(), FILE),
        vault_placeholder(f"vault:kv/{path}#password"),
    ]
    return Setup(age_repo, age_key, vault, vault_server, path, objects)


SOPS_KEY = "/Secret/app/db"
VAULT_KEY = "/Secret/app/api"


def test_secret_sources(setup: Setup) -> None:
    assert secret_sources(setup.objects) == [
        SecretSource(SOPS_KEY, "sops", FILE, {}),
        SecretSource(VAULT_KEY, "vault", None, {"password": setup.ref}),
    ]
    with pytest.raises(SecretError, match="must be 'sops:<file>' or 'vault'"):
        secret_sources([{**setup.objects[2], "metadata": {"name": "x", "annotations": {ANNOTATION_SECRET_SOURCE: "s3"}}}])
    with pytest.raises(VaultRefError, match="no vault: references"):
        secret_sources([{**vault_placeholder("x"), "stringData": {"user": "app"}}])


def test_versions_read_no_values(setup: Setup) -> None:
    sources = secret_sources(setup.objects)
    expected_sops = "sops:sha256:" + hashlib.sha256((setup.repo / FILE).read_bytes()).hexdigest()
    assert setup.resolver().versions(CLUSTER, sources) == {
        FILE: expected_sops,
        setup.ref: f"vault:kv/{setup.vault_path}@1",
    }
    setup.vault.write("kv", setup.vault_path, {"password": "rotated"})
    assert setup.resolver().versions(CLUSTER, sources)[setup.ref] == f"vault:kv/{setup.vault_path}@2"

    # A token that may read metadata but no data still gets versions: they never touch a value.
    token = setup.server.token('path "kv/metadata/shared/*" { capabilities = ["read"] }')
    metadata_only = VaultClient(setup.server.addr, VaultAuth(), env={"VAULT_TOKEN": token})
    assert setup.resolver(metadata_only).versions(CLUSTER, sources)[setup.ref] == f"vault:kv/{setup.vault_path}@2"
    with pytest.raises(VaultUnavailable):
        setup.resolver(metadata_only).digests(CLUSTER, sources)


def test_pinned_reference_version(setup: Setup) -> None:
    setup.vault.write("kv", setup.vault_path, {"password": "rotated"})
    pinned = vault_placeholder(setup.ref + "?version=1")
    sources = secret_sources([pinned])
    assert setup.resolver().versions(CLUSTER, sources) == {setup.ref + "?version=1": f"vault:kv/{setup.vault_path}@1"}
    identity, recipient = generate_identity()
    opened = open_sealed(setup.resolver().seal_for(CLUSTER, sources, recipient), identity)
    assert opened == {VAULT_KEY: {"password": _b64(VAULT_CANARY)}}


def test_digests_follow_values(setup: Setup) -> None:
    sources = secret_sources(setup.objects)
    first = setup.resolver().digests(CLUSTER, sources)
    assert set(first) == {SOPS_KEY, VAULT_KEY}
    assert all(value.startswith("hmac-sha256:") for value in first.values())
    assert setup.resolver().digests(CLUSTER, sources) == first
    assert setup.resolver(hub_key=b"x" * 32).digests(CLUSTER, sources) != first

    setup.vault.write("kv", setup.vault_path, {"password": "rotated"})
    second = setup.resolver().digests(CLUSTER, sources)
    assert second[SOPS_KEY] == first[SOPS_KEY] and second[VAULT_KEY] != first[VAULT_KEY]

    add_encrypted(setup.repo, FILE, secret_yaml(string_data={"password": "changed"}), setup.age_key.keys())
    assert setup.resolver().digests(CLUSTER, sources)[SOPS_KEY] != first[SOPS_KEY]


def test_seal_for_reaches_only_the_agent(setup: Setup) -> None:
    sources = secret_sources(setup.objects)
    identity, recipient = generate_identity()
    other_identity, _ = generate_identity()
    sealed, versions = setup.resolver().seal_with_versions(CLUSTER, sources, recipient)
    assert versions == setup.resolver().versions(CLUSTER, sources)
    assert open_sealed(sealed, identity) == {
        SOPS_KEY: {"password": _b64(CANARY), "token": _b64(TOKEN_VALUE)},
        VAULT_KEY: {"password": _b64(VAULT_CANARY)},
    }
    with pytest.raises(SecretError):
        open_sealed(sealed, other_identity)
    assert setup.resolver().seal_for(CLUSTER, sources, recipient).recipient == recipient


def test_files_outside_the_clusters_scope_are_refused(setup: Setup) -> None:
    theirs = "secrets/clusters/prod-b/db.yaml"
    add_encrypted(setup.repo, theirs, secret_yaml(string_data={"password": CANARY}), setup.age_key.keys())
    source = SecretSource(SOPS_KEY, "sops", theirs, {})
    with pytest.raises(SecretError, match="never sent to 'prod-a'"):
        setup.resolver().seal_for(CLUSTER, [source], generate_identity()[1])
    for bad in ("secrets/common/../../../etc/passwd", "/etc/passwd", "apps/x/secret.yaml"):
        with pytest.raises(SecretError, match="plain path under secrets/"):
            setup.resolver().digests(CLUSTER, [SecretSource(SOPS_KEY, "sops", bad, {})])
    (setup.repo / "secrets/common/link.yaml").symlink_to("/etc/hostname")
    with pytest.raises(SecretError, match="outside the repository"):
        setup.resolver().versions(CLUSTER, [SecretSource(SOPS_KEY, "sops", "secrets/common/link.yaml", {})])


def test_optional_inventory_scope_check(setup: Setup) -> None:
    scoped = "secrets/prod/db.yaml"
    add_encrypted(setup.repo, scoped, secret_yaml(string_data={"password": CANARY}), setup.age_key.keys())
    source = SecretSource(SOPS_KEY, "sops", scoped, {})
    scopes = [SecretScope.model_validate({"path": "secrets/prod", "clusterSelector": {"matchLabels": {"env": "prod"}}})]

    def spec(name: str, env: str) -> ClusterSpec:
        return ClusterSpec.model_validate({"name": name, "provider": {"type": "kubeconfig", "context": name}, "labels": {"env": env}})

    clusters = {"prod-a": spec("prod-a", "prod"), "dev-a": spec("dev-a", "dev")}
    resolver = setup.resolver(clusters=clusters, scopes=scopes)
    assert SOPS_KEY in resolver.digests("prod-a", [source])
    with pytest.raises(SecretError, match="not in scope for cluster 'dev-a'"):
        resolver.digests("dev-a", [source])
    with pytest.raises(SecretError, match="not in scope"):
        resolver.digests("unknown", [source])


def test_vault_reference_outside_the_clusters_prefixes(setup: Setup) -> None:
    sources = secret_sources([vault_placeholder("vault:kv/clusters/prod-b/db#password")])
    for call in (
        lambda r: r.versions(CLUSTER, sources),
        lambda r: r.digests(CLUSTER, sources),
        lambda r: r.seal_for(CLUSTER, sources, generate_identity()[1]),
    ):
        with pytest.raises(VaultRefError, match="not allowed for cluster 'prod-a'"):
            call(setup.resolver())


def test_placeholder_must_match_the_decrypted_secret(setup: Setup) -> None:
    source = SecretSource("/Secret/app/other", "sops", FILE, {})
    with pytest.raises(SecretError, match="decrypts to /Secret/app/db"):
        setup.resolver().digests(CLUSTER, [source])


def test_vault_source_without_vault(setup: Setup) -> None:
    resolver = SecretResolver(setup.repo, setup.age_key.keys(), None, HUB_KEY, PREFIXES)
    with pytest.raises(SecretError, match="no Vault is configured"):
        resolver.digests(CLUSTER, secret_sources(setup.objects))


def test_no_value_leaks_into_logs_errors_or_reprs(
    setup: Setup, caplog: pytest.LogCaptureFixture, other_age_key: AgeKey
) -> None:
    caplog.set_level(logging.DEBUG)
    sources = secret_sources(setup.objects)
    identity, recipient = generate_identity()
    resolver = setup.resolver()
    produced: list[Any] = [resolver, sources, setup.vault, setup.age_key.keys()]
    produced.append(resolver.versions(CLUSTER, sources))
    produced.append(resolver.digests(CLUSTER, sources))
    sealed, versions = resolver.seal_with_versions(CLUSTER, sources, recipient)
    produced += [sealed, versions, resolver.seal_for(CLUSTER, sources, recipient)]

    failures: list[BaseException] = []

    def expect_failure(call: Any) -> None:
        with pytest.raises(SecretError) as caught:
            call()
        failures.append(caught.value)

    # Tampered file, wrong key, mismatched placeholder, Vault sealed, reference out of bounds.
    text = (setup.repo / FILE).read_text()
    (setup.repo / "secrets/common/tampered.yaml").write_text(text.replace("name: db", "name: dbx"))
    expect_failure(lambda: resolver.digests(CLUSTER, [SecretSource("/Secret/app/dbx", "sops", "secrets/common/tampered.yaml", {})]))
    wrong_key = SecretResolver(setup.repo, other_age_key.keys(), setup.vault, HUB_KEY, PREFIXES)
    expect_failure(lambda: wrong_key.seal_for(CLUSTER, sources, recipient))
    expect_failure(lambda: resolver.digests(CLUSTER, [SecretSource("/Secret/app/x", "sops", FILE, {})]))
    with setup.server.sealed():
        expect_failure(lambda: resolver.seal_for(CLUSTER, sources, recipient))
        expect_failure(lambda: resolver.versions(CLUSTER, sources))
    expect_failure(lambda: resolver.digests("prod-b", secret_sources([vault_placeholder("vault:kv/clusters/prod-a/x#y")])))

    haystacks = [repr(item) for item in produced] + [str(item) for item in produced]
    for failure in failures:
        haystacks += [str(failure), repr(failure), repr(failure.__cause__), repr(failure.__context__)]
    haystacks.append(caplog.text)
    haystacks += [record.getMessage() for record in caplog.records]
    for forbidden in _forms(CANARY) + _forms(VAULT_CANARY) + _forms(TOKEN_VALUE):
        for haystack in haystacks:
            assert forbidden not in haystack, (forbidden, haystack[:200])
    # ...while the agent's decryption does hold them: the checks above were looking in the right place.
    opened = open_sealed(sealed, identity)
    assert opened[SOPS_KEY]["password"] == _b64(CANARY) and opened[VAULT_KEY]["password"] == _b64(VAULT_CANARY)
    assert opened[SOPS_KEY]["token"] == _b64(TOKEN_VALUE) and object_key(setup.objects[1]) == SOPS_KEY


def test_resolver_teaches_a_redactor_the_values_it_resolves(setup: Setup) -> None:
    redactor = Redactor()
    setup.resolver(redactor=redactor).digests(CLUSTER, secret_sources(setup.objects))
    line = f"oops: {CANARY} / {_b64(VAULT_CANARY)} / {TOKEN_VALUE} / harmless"
    assert redactor.redact(line) == f"oops: {REDACTED} / {REDACTED} / {REDACTED} / harmless"


def test_a_shared_sops_file_is_decrypted_once_per_resolver(setup: Setup, monkeypatch: pytest.MonkeyPatch) -> None:
    import fleet.secrets.resolver as resolver_module

    calls: list[str] = []
    real = resolver_module.decrypt

    def counting(text: bytes, file: str, keys: Any) -> bytes:
        calls.append(file)
        return real(text, file, keys)

    monkeypatch.setattr(resolver_module, "decrypt", counting)
    sops_only = [s for s in secret_sources(setup.objects) if s.kind == "sops"]
    resolver = setup.resolver()
    first = resolver.digests("east", sops_only)
    second = resolver.digests("west", sops_only)
    assert first == second and calls == [FILE]
    assert setup.resolver().digests("east", sops_only) == first and calls == [FILE, FILE]  # a new resolver decrypts again
