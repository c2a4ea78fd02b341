"""`vault:` references: grammar, canonical form, per-cluster prefixes."""

from __future__ import annotations

import pytest

from fleet.secrets.errors import VaultRefError
from fleet.secrets.refs import VaultRef, check_allowed, find_vault_refs, is_vault_ref, parse_vault_ref

DEFAULT_PREFIXES = ["kv/clusters/{cluster}/", "kv/shared/"]


def test_parse_and_canonical_form() -> None:
    ref = parse_vault_ref("vault:kv/shared/db#password")
    assert ref == VaultRef(mount="kv", path="shared/db", key="password", version=None)
    assert str(ref) == "vault:kv/shared/db#password"
    pinned = parse_vault_ref("vault:kv/clusters/prod-a/app/db#pass_word.1?version=7")
    assert pinned == VaultRef("kv", "clusters/prod-a/app/db", "pass_word.1", 7)
    assert str(pinned) == "vault:kv/clusters/prod-a/app/db#pass_word.1?version=7"
    assert parse_vault_ref(str(pinned)) == pinned
    assert pinned.location == "kv/clusters/prod-a/app/db"


@pytest.mark.parametrize(
    "text",
    [
        "kv/shared/db#password",  # no scheme
        "vault:kv#password",  # no path below the mount
        "vault:kv/shared/db",  # no key
        "vault:kv/shared/db#",  # empty key
        "vault:kv/shared/db#a#b",
        "vault:kv/shared/../clusters/b/db#password",
        "vault:kv/shared/..#password",
        "vault:kv/./shared#password",
        "vault:kv//shared/db#password",
        "vault:/kv/shared/db#password",
        "vault:kv/shared/db/#password",
        "vault:kv/shared/%2e%2e/db#password",
        "vault:kv/shared/db%23x#password",
        "vault:kv/shared\\db#password",
        "vault:kv/shared/d b#password",
        "vault:kv/shared/db#password?version=0",
        "vault:kv/shared/db#password?version=-1",
        "vault:kv/shared/db#password?version=2&x=1",
        "vault:kv/shared/db#password?v=2",
        "vault:kv/shared/db?version=2#password",
    ],
)
def test_malformed_references_are_refused(text: str) -> None:
    with pytest.raises(VaultRefError):
        parse_vault_ref(text)


def test_is_vault_ref() -> None:
    assert is_vault_ref("vault:kv/shared/db#password")
    assert is_vault_ref("vault:broken")  # claims to be one: parsing then reports the problem
    assert not is_vault_ref("hunter2")
    assert not is_vault_ref(None)
    assert not is_vault_ref(b"vault:kv/a#b")


def test_prefixes_with_cluster_substitution() -> None:
    check_allowed(parse_vault_ref("vault:kv/clusters/prod-a/db#password"), "prod-a", DEFAULT_PREFIXES)
    check_allowed(parse_vault_ref("vault:kv/shared/db#password"), "prod-a", DEFAULT_PREFIXES)
    for text in (
        "vault:kv/clusters/prod-b/db#password",  # another cluster's path
        "vault:kv/clusters/prod-ab/db#password",  # a name that merely starts with ours
        "vault:kv/clusters/prod-a#password",  # the prefix directory itself is not a secret under it
        "vault:kv/sharedstuff/db#password",
        "vault:secret/shared/db#password",
    ):
        with pytest.raises(VaultRefError, match="not allowed for cluster 'prod-a'"):
            check_allowed(parse_vault_ref(text), "prod-a", DEFAULT_PREFIXES)


def test_prefix_without_trailing_slash_still_ends_at_a_segment() -> None:
    check_allowed(parse_vault_ref("vault:kv/shared/db#k"), "a", ["kv/shared"])
    with pytest.raises(VaultRefError):
        check_allowed(parse_vault_ref("vault:kv/sharedx/db#k"), "a", ["kv/shared"])


def test_hand_built_ref_gets_the_same_checks() -> None:
    with pytest.raises(VaultRefError):
        check_allowed(VaultRef("kv", "shared/../clusters/b/db", "k"), "a", DEFAULT_PREFIXES)


def test_malformed_prefix_is_refused() -> None:
    with pytest.raises(VaultRefError, match="malformed"):
        check_allowed(parse_vault_ref("vault:kv/shared/db#k"), "a", ["kv/../"])


def test_find_vault_refs_in_a_secret() -> None:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "db", "namespace": "app"},
        "stringData": {"password": "vault:kv/shared/db#password", "user": "app"},
        "data": {"token": "vault:kv/shared/db#token?version=2", "plain": "dmFsdWU="},
    }
    assert find_vault_refs(secret) == [
        ("stringData.password", VaultRef("kv", "shared/db", "password")),
        ("data.token", VaultRef("kv", "shared/db", "token", 2)),
    ]
    assert find_vault_refs({**secret, "kind": "ConfigMap"}) == []
    with pytest.raises(VaultRefError, match=r"stringData\.password"):
        find_vault_refs({**secret, "stringData": {"password": "vault:kv/../x#y"}})
