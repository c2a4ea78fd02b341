"""Signed commits, verified with real gpg keys against configured fingerprints, and what the policy does with them."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from fleet.source import GitSource, SignatureCheck, decide_move, verify_commit
from fleet.source.signing import split_signed_commit
from tests.fixtures.gitrepo import FleetRepo
from tests.fixtures.gpg import GpgKey
from tests.source.conftest import SourceFactory, export_public, import_public, write_program

KeyMaker = Callable[..., GpgKey]


@pytest.fixture
def keyring(verifier_home: Path, gpg_key: GpgKey, untrusted_gpg_key: GpgKey) -> Path:
    """The hub's keyring: knows both public keys; only `gpg_key` is configured as trusted."""
    import_public(verifier_home, export_public(gpg_key))
    import_public(verifier_home, export_public(untrusted_gpg_key))
    return verifier_home


def _fetched(repo: FleetRepo, make_source: SourceFactory) -> GitSource:
    source = make_source(repo.url)
    source.fetch()
    return source


def test_commit_signed_by_the_trusted_key_is_verified(
    origin: FleetRepo, make_source: SourceFactory, keyring: Path, gpg_key: GpgKey
) -> None:
    sha = origin.commit({"clusters/b.yaml": "name: b\n"}, sign_with=gpg_key)
    source = _fetched(origin, make_source)
    check = verify_commit(source.repo_path, sha, [gpg_key.fingerprint], keyring)

    assert (check.sha, check.signed, check.valid, check.trusted) == (sha, True, True, True)
    assert check.verified
    assert check.fingerprint == gpg_key.fingerprint
    assert check.signer is not None and "trusted@fleet.test" in check.signer
    # Fingerprints may be configured in lower case or with spaces.
    spaced = " ".join(gpg_key.fingerprint[i : i + 4] for i in range(0, 40, 4)).lower()
    assert verify_commit(source.repo_path, sha, [spaced], keyring).trusted


def test_commit_signed_by_another_known_key_is_valid_but_not_trusted(
    origin: FleetRepo, make_source: SourceFactory, keyring: Path, gpg_key: GpgKey, untrusted_gpg_key: GpgKey
) -> None:
    sha = origin.commit(sign_with=untrusted_gpg_key)
    check = verify_commit(_fetched(origin, make_source).repo_path, sha, [gpg_key.fingerprint], keyring)
    assert (check.signed, check.valid, check.trusted) == (True, True, False)
    assert check.fingerprint == untrusted_gpg_key.fingerprint
    assert "not among the trusted keys" in check.reason


def test_short_key_ids_are_not_accepted_as_trusted(
    origin: FleetRepo, make_source: SourceFactory, keyring: Path, gpg_key: GpgKey
) -> None:
    sha = origin.commit(sign_with=gpg_key)
    check = verify_commit(_fetched(origin, make_source).repo_path, sha, [gpg_key.fingerprint[-16:]], keyring)
    assert check.valid and not check.trusted


def test_unsigned_commit_is_not_signed(
    origin: FleetRepo, make_source: SourceFactory, keyring: Path, gpg_key: GpgKey
) -> None:
    sha = origin.commit({"x.yaml": "x\n"})
    check = verify_commit(_fetched(origin, make_source).repo_path, sha, [gpg_key.fingerprint], keyring)
    assert (check.signed, check.valid, check.trusted, check.fingerprint) == (False, False, False, None)


def test_signature_of_an_unknown_key_is_not_valid(
    origin: FleetRepo, make_source: SourceFactory, verifier_home: Path, gpg_key: GpgKey
) -> None:
    sha = origin.commit(sign_with=gpg_key)
    check = verify_commit(_fetched(origin, make_source).repo_path, sha, [gpg_key.fingerprint], verifier_home)
    assert (check.signed, check.valid, check.trusted) == (True, False, False)
    assert "no public key" in check.reason


def test_tampered_commit_fails_verification(
    origin: FleetRepo, make_source: SourceFactory, keyring: Path, gpg_key: GpgKey
) -> None:
    signed = origin.commit({"clusters/b.yaml": "name: b\n"}, message="signed change", sign_with=gpg_key)
    raw = subprocess.run(
        ["git", "-C", str(origin.work_path), "cat-file", "commit", signed], capture_output=True, check=True
    ).stdout
    assert b"gpgsig" in raw
    forged_raw = raw.replace(b"signed change", b"forged change")
    forged = (
        subprocess.run(
            ["git", "-C", str(origin.work_path), "hash-object", "-t", "commit", "-w", "--stdin"],
            input=forged_raw,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .strip()
    )
    subprocess.run(
        ["git", "-C", str(origin.work_path), "push", "--force", "origin", f"{forged}:refs/heads/main"],
        capture_output=True,
        check=True,
    )

    source = _fetched(origin, make_source)
    assert source.head() == forged
    check = verify_commit(source.repo_path, forged, [gpg_key.fingerprint], keyring)
    assert (check.signed, check.valid, check.trusted) == (True, False, False)
    assert "bad" in check.reason
    # The original, in the author's clone, still verifies: only the payload changed.
    assert verify_commit(origin.work_path, signed, [gpg_key.fingerprint], keyring).verified


def test_commit_signed_by_an_expired_key_is_not_trusted(
    origin: FleetRepo, make_source: SourceFactory, verifier_home: Path, ed25519_keys: KeyMaker, tmp_path: Path
) -> None:
    # Created and used in January 2020, expired a day later.
    key = ed25519_keys("expired@fleet.test", expire="1d", faked_time="20200101T000000")
    wrapper = write_program(
        tmp_path / "gpg-2020", '#!/bin/sh\nexec gpg --faked-system-time 20200101T120000 "$@"\n'
    )
    with origin.repo.config_writer() as cfg:
        cfg.set_value("gpg", "program", str(wrapper))
    sha = origin.commit(sign_with=key)
    import_public(verifier_home, export_public(key))

    check = verify_commit(_fetched(origin, make_source).repo_path, sha, [key.fingerprint], verifier_home)
    assert (check.signed, check.trusted) == (True, False)
    assert "expired" in check.reason


def test_commit_signed_by_a_revoked_key_is_not_trusted(
    origin: FleetRepo, make_source: SourceFactory, verifier_home: Path, ed25519_keys: KeyMaker
) -> None:
    key = ed25519_keys("revoked@fleet.test")
    sha = origin.commit(sign_with=key)
    import_public(verifier_home, export_public(key))
    assert verify_commit(
        _fetched(origin, make_source).repo_path, sha, [key.fingerprint], verifier_home
    ).trusted

    # gpg writes a revocation certificate at key creation; its armor line is
    # prefixed with ':' so it cannot be imported by accident.
    certificate = (key.home / "openpgp-revocs.d" / f"{key.fingerprint}.rev").read_text()
    import_public(verifier_home, certificate.replace(":-----BEGIN", "-----BEGIN"))

    check = verify_commit(make_source(origin.url).repo_path, sha, [key.fingerprint], verifier_home)
    assert (check.signed, check.trusted) == (True, False)
    assert "revoked" in check.reason


def test_signature_by_a_signing_subkey_is_trusted_by_primary_or_subkey_fingerprint(
    origin: FleetRepo, make_source: SourceFactory, verifier_home: Path, ed25519_keys: KeyMaker
) -> None:
    key = ed25519_keys("subkey@fleet.test")
    subprocess.run(
        ["gpg", "--homedir", str(key.home), "--batch", "--pinentry-mode", "loopback", "--passphrase", "",
         "--quick-add-key", key.fingerprint, "ed25519", "sign", "0"],
        check=True, capture_output=True,
    )  # fmt: skip
    listing = subprocess.run(
        ["gpg", "--homedir", str(key.home), "--with-colons", "--list-keys", key.fingerprint],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    subkey = [line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:")][1]
    # Sign explicitly with the subkey ('!' forces it), as a key with several signing subkeys would.
    sha = origin.commit(sign_with=GpgKey(home=key.home, fingerprint=f"{subkey}!", email=key.email))
    import_public(verifier_home, export_public(key))
    repo_path = _fetched(origin, make_source).repo_path

    by_primary = verify_commit(repo_path, sha, [key.fingerprint], verifier_home)
    assert by_primary.verified
    assert by_primary.fingerprint == key.fingerprint
    assert verify_commit(repo_path, sha, [subkey], verifier_home).verified


def test_unknown_commit_is_an_error(origin: FleetRepo, make_source: SourceFactory, keyring: Path) -> None:
    from fleet.source import SourceError

    with pytest.raises(SourceError, match="unknown commit"):
        verify_commit(_fetched(origin, make_source).repo_path, "0" * 40, [], keyring)


# ---------------------------------------------------------------- policy with real checks


def test_enforce_stays_on_the_last_verified_commit(
    origin: FleetRepo, make_source: SourceFactory, keyring: Path, gpg_key: GpgKey, untrusted_gpg_key: GpgKey
) -> None:
    trusted = [gpg_key.fingerprint]
    source = make_source(origin.url)

    first = origin.commit({"a.yaml": "1\n"}, sign_with=gpg_key)
    head = source.fetch().sha
    decision = decide_move(
        None, head, is_fast_forward=True, accepted=frozenset(), signing_mode="enforce",
        signature=verify_commit(source.repo_path, head, trusted, keyring),
    )  # fmt: skip
    assert (decision.action, decision.sha) == ("advance", first)
    current = decision.sha

    unsigned = {"a.yaml": "2\n"}, None
    untrusted = {"a.yaml": "3\n"}, untrusted_gpg_key
    for files, signer in (unsigned, untrusted):
        bad = origin.commit(files, sign_with=signer)
        head = source.fetch().sha
        assert head == bad
        decision = decide_move(
            current, head, is_fast_forward=source.is_ancestor(current, head), accepted=frozenset(),
            signing_mode="enforce", signature=verify_commit(source.repo_path, head, trusted, keyring),
        )  # fmt: skip
        assert decision.action == "stay"
        assert decision.event is not None
        assert f"staying on {current[:12]}" in decision.event

    fixed = origin.commit({"a.yaml": "4\n"}, sign_with=gpg_key)
    head = source.fetch().sha
    decision = decide_move(
        current, head, is_fast_forward=source.is_ancestor(current, head), accepted=frozenset(),
        signing_mode="enforce", signature=verify_commit(source.repo_path, head, trusted, keyring),
    )  # fmt: skip
    assert (decision.action, decision.sha) == ("advance", fixed)


def test_warn_advances_with_an_event(
    origin: FleetRepo, make_source: SourceFactory, keyring: Path, gpg_key: GpgKey, untrusted_gpg_key: GpgKey
) -> None:
    source = make_source(origin.url)
    current = source.fetch().sha
    head = origin.commit(sign_with=untrusted_gpg_key)
    assert source.fetch().sha == head
    check = verify_commit(source.repo_path, head, [gpg_key.fingerprint], keyring)
    decision = decide_move(
        current, head, is_fast_forward=True, accepted=frozenset(), signing_mode="warn", signature=check
    )
    assert (decision.action, decision.sha) == ("advance", head)
    assert decision.event is not None and "not signed by a trusted key" in decision.event


# ---------------------------------------------------------------- payload extraction


def test_split_signed_commit_removes_only_signature_headers() -> None:
    raw = (
        b"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n"
        b"parent 1111111111111111111111111111111111111111\n"
        b"author A <a@x> 1700000000 +0000\n"
        b"committer A <a@x> 1700000000 +0000\n"
        b"mergetag object 2222222222222222222222222222222222222222\n"
        b" type commit\n"
        b" \n"
        b" -----BEGIN PGP SIGNATURE-----\n"
        b" tagsig\n"
        b" -----END PGP SIGNATURE-----\n"
        b"gpgsig -----BEGIN PGP SIGNATURE-----\n"
        b" \n"
        b" c2ln\n"
        b" -----END PGP SIGNATURE-----\n"
        b"gpgsig-sha256 -----BEGIN PGP SIGNATURE-----\n"
        b" other\n"
        b" -----END PGP SIGNATURE-----\n"
        b"\n"
        b"subject\n\nbody with gpgsig word\n"
    )
    payload, signature, count = split_signed_commit(raw)
    assert count == 1
    assert signature == b"-----BEGIN PGP SIGNATURE-----\n\nc2ln\n-----END PGP SIGNATURE-----\n"
    assert payload == (
        b"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n"
        b"parent 1111111111111111111111111111111111111111\n"
        b"author A <a@x> 1700000000 +0000\n"
        b"committer A <a@x> 1700000000 +0000\n"
        b"mergetag object 2222222222222222222222222222222222222222\n"
        b" type commit\n"
        b" \n"
        b" -----BEGIN PGP SIGNATURE-----\n"
        b" tagsig\n"
        b" -----END PGP SIGNATURE-----\n"
        b"\n"
        b"subject\n\nbody with gpgsig word\n"
    )


def test_split_unsigned_commit() -> None:
    raw = b"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\nauthor A <a@x> 1 +0000\n\nmsg\n"
    assert split_signed_commit(raw) == (raw, None, 0)


def test_signature_check_dataclass_is_frozen() -> None:
    check = SignatureCheck("a" * 40, False, False, False, None, None, "commit is not signed")
    with pytest.raises(AttributeError):
        check.valid = True  # type: ignore[misc]
