"""Verify the OpenPGP signature of a fleet repo commit against configured key fingerprints.

The signed payload and the signature are taken from the raw commit object, as
git itself does it (the `gpgsig` header is cut out of the object), and checked
with python-gnupg. Trust comes only from the configured full fingerprints, not
from the GnuPG web of trust; an expired, revoked or unknown key is never trusted.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import git
import gnupg
from gitdb.exc import BadName, BadObject

from fleet.source.errors import SourceError

SIGNATURE_HEADERS = (b"gpgsig", b"gpgsig-sha256")
PGP_ARMOR = b"-----BEGIN PGP SIGNATURE-----"
_FINGERPRINT = re.compile(r"^[0-9A-F]{40}([0-9A-F]{24})?$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class SignatureCheck:
    sha: str
    signed: bool
    valid: bool  # the signature verifies over this commit, by a key that is neither expired nor revoked
    trusted: bool  # valid, and made by one of the configured fingerprints
    fingerprint: str | None  # primary key fingerprint when known, else the signing (sub)key's
    signer: str | None  # user id of the signing key, as gpg reports it
    reason: str

    @property
    def verified(self) -> bool:
        return self.signed and self.valid and self.trusted


@dataclass(frozen=True)
class GpgVerdict:
    """What gpg said about one detached signature."""

    valid: bool
    status: str | None
    key_status: str | None
    key_id: str | None
    signing_fingerprint: str | None
    primary_fingerprint: str | None
    user_id: str | None
    signature_count: int


def split_signed_commit(raw: bytes, header: bytes = b"gpgsig") -> tuple[bytes, bytes | None, int]:
    """Split a raw commit into (signed payload, signature, number of `header` headers).

    The payload is the object without any signature header (git strips all of
    them, for every hash algorithm); continuation lines start with one space.
    """
    head, blank, body = raw.partition(b"\n\n")
    lines = head.split(b"\n")
    kept: list[bytes] = []
    signature_lines: list[bytes] = []
    count = 0
    in_signature = False
    skipping = False
    for line in lines:
        if line.startswith(b" ") and (in_signature or skipping):
            if in_signature:
                signature_lines.append(line[1:])
            continue
        name = line.split(b" ", 1)[0]
        in_signature = skipping = False
        if name in SIGNATURE_HEADERS:
            if name == header:
                count += 1
                if count == 1:
                    in_signature = True
                    signature_lines.append(line[len(name) + 1 :])
                else:
                    skipping = True
            else:
                skipping = True
            continue
        kept.append(line)
    payload = b"\n".join(kept) + blank + body
    signature = b"\n".join(signature_lines) + b"\n" if signature_lines else None
    return payload, signature, count


def _normalise(fingerprint: str) -> str:
    return fingerprint.replace(" ", "").upper()


def judge(sha: str, verdict: GpgVerdict, trusted_fingerprints: Sequence[str]) -> SignatureCheck:
    """Turn gpg's verdict into a SignatureCheck; pure."""
    trusted_set = {_normalise(f) for f in trusted_fingerprints if _FINGERPRINT.match(_normalise(f))}
    primary = verdict.primary_fingerprint or verdict.signing_fingerprint
    signer = _CONTROL.sub("", verdict.user_id) if verdict.user_id else None

    def check(valid: bool, trusted: bool, reason: str) -> SignatureCheck:
        return SignatureCheck(
            sha=sha,
            signed=True,
            valid=valid,
            trusted=trusted,
            fingerprint=primary,
            signer=signer,
            reason=reason,
        )

    if verdict.signature_count > 1:
        return check(False, False, "the commit carries more than one signature; refused")
    if verdict.key_status:
        return check(False, False, f"{verdict.key_status} ({primary or verdict.key_id})")
    if not verdict.valid:
        if verdict.status == "no public key":
            return check(False, False, f"no public key for key id {verdict.key_id} in the keyring")
        return check(False, False, verdict.status or "signature could not be verified")
    candidates = {_normalise(f) for f in (verdict.signing_fingerprint, verdict.primary_fingerprint) if f}
    if candidates & trusted_set:
        return check(True, True, f"good signature by trusted key {primary}")
    return check(True, False, f"good signature, but key {primary} is not among the trusted keys")


def _verdict(result: gnupg.Verify) -> GpgVerdict:
    status_lines = str(getattr(result, "stderr", "") or "")
    return GpgVerdict(
        valid=bool(result.valid),
        status=result.status,
        key_status=result.key_status,
        key_id=result.key_id,
        signing_fingerprint=result.fingerprint,
        primary_fingerprint=result.pubkey_fingerprint,
        user_id=result.username,
        signature_count=status_lines.count("[GNUPG:] NEWSIG"),
    )


def verify_commit(
    repo_path: Path, sha: str, trusted_fingerprints: Sequence[str], gnupghome: Path | None
) -> SignatureCheck:
    """Check the signature of commit `sha` in `repo_path` with the public keys in `gnupghome`."""
    try:
        with git.Repo(repo_path) as repo:
            commit = repo.commit(sha)
            full_sha = commit.hexsha
            raw = repo.odb.stream(commit.binsha).read()
    except (git.InvalidGitRepositoryError, git.NoSuchPathError) as exc:
        raise SourceError(f"{repo_path} is not a git repository") from exc
    except (BadName, BadObject, ValueError, git.GitCommandError) as exc:
        raise SourceError(f"unknown commit {sha}") from exc

    header = b"gpgsig-sha256" if len(full_sha) == 64 else b"gpgsig"
    payload, signature, count = split_signed_commit(raw, header)
    if signature is None:
        return SignatureCheck(
            sha=full_sha, signed=False, valid=False, trusted=False, fingerprint=None, signer=None,
            reason="commit is not signed",
        )  # fmt: skip
    if count > 1:
        return SignatureCheck(
            sha=full_sha, signed=True, valid=False, trusted=False, fingerprint=None, signer=None,
            reason="the commit carries more than one signature header; refused",
        )  # fmt: skip
    if not signature.lstrip().startswith(PGP_ARMOR):
        return SignatureCheck(
            sha=full_sha, signed=True, valid=False, trusted=False, fingerprint=None, signer=None,
            reason="unsupported signature format (only OpenPGP signatures are checked)",
        )  # fmt: skip

    try:
        gpg = gnupg.GPG(gnupghome=str(gnupghome) if gnupghome is not None else None)
    except (OSError, ValueError) as exc:
        raise SourceError(f"cannot run gpg to verify commit signatures: {exc}") from exc
    with tempfile.NamedTemporaryFile(prefix="fleet-sig-", suffix=".asc") as sig_file:
        sig_file.write(signature)
        sig_file.flush()
        result = gpg.verify_data(sig_file.name, payload, extra_args=["--no-auto-key-retrieve"])
    return judge(full_sha, _verdict(result), trusted_fingerprints)
